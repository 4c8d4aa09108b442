"""The web page's own server side: which paths need no key, the fleet timeline."""

from __future__ import annotations

from dialogllm.queue.models import RunRecord, RunStatus
from dialogllm.server.auth import is_open
from dialogllm.server.page import STATIC, timeline


def test_the_page_and_its_assets_are_open_and_every_api_path_is_not() -> None:
    assert is_open("/") and is_open("/ui/app.js") and is_open("/ok")
    for path in ("/threads", "/dialogllm/fleet", "/ui", "/uix/app.js", "/assistants"):
        assert not is_open(path), path


def test_the_page_ships_its_files_in_the_package() -> None:
    shipped = {p.name for p in STATIC.iterdir()}
    assert {"index.html", "app.js", "api.js", "style.css"} <= shipped


def test_the_timeline_counts_each_minute_of_the_last_hour() -> None:
    now = 100 * 60 + 30.0
    runs = [
        RunRecord(
            "a", "g", "t", RunStatus.SUCCESS, started_at=now - 5, finished_at=now - 1
        ),
        RunRecord(
            "b", "g", "t", RunStatus.ERROR, started_at=now - 3, finished_at=now - 2
        ),
        RunRecord(
            "c",
            "g",
            "t",
            RunStatus.SUCCESS,
            started_at=now - 700,
            finished_at=now - 600,
        ),
        RunRecord("d", "g", "t", RunStatus.SUCCESS, finished_at=now - 7200),  # too old
        RunRecord("e", "g", "t", RunStatus.RUNNING, started_at=now - 1),  # not over
    ]
    llm = [{"calls": 0, "latency_s": None, "tokens": 0}] * 59
    llm.append({"calls": 4, "latency_s": 0.25, "tokens": 80})

    minutes = timeline(runs, llm, now)

    assert len(minutes) == 60 and minutes[-1]["minute"] == 100
    last = minutes[-1]
    assert (last["runs"], last["errors"]) == (2, 1)
    assert last["run_duration_p50_s"] == 4.0
    assert (last["llm_calls"], last["llm_latency_s"], last["llm_tokens"]) == (
        4,
        0.25,
        80,
    )
    assert minutes[-11]["runs"] == 1
    assert sum(m["runs"] for m in minutes) == 3
    assert minutes[0]["run_duration_p50_s"] is None


def test_the_timeline_stands_without_llm_metrics() -> None:
    minutes = timeline([], [], now=3600.0)
    assert all(m["llm_calls"] == 0 and m["llm_latency_s"] is None for m in minutes)
