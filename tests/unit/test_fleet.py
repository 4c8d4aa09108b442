"""Fleet status logic: error grouping and alert thresholds (no Redis needed)."""

from __future__ import annotations

import time
from pathlib import Path

import prometheus_client as prom

from dialogllm.config import Settings
from dialogllm.llm.metrics import _collectors_for
from dialogllm.queue import RunRecord, RunStatus
from dialogllm.queue.fleet import (
    FleetExporter,
    FleetStatus,
    WorkerInfo,
    _error_kind,
    _group_errors,
    evaluate_alerts,
)


def _status(**overrides: object) -> FleetStatus:
    base: dict[str, object] = dict(
        queue="default",
        queue_depth=0,
        delayed=0,
        dead_letters=0,
        oldest_ready_age_s=None,
        runs_by_status={"pending": 0, "running": 0, "success": 10, "error": 0,
                        "dead": 0, "interrupted": 0, "cancelled": 0},
        runs_capped=False,
        workers=[],
        llm={},
        errors=[],
        error_rate=0.0,
    )  # fmt: skip
    base.update(overrides)
    return FleetStatus(**base)  # type: ignore[arg-type]


def _worker(alive: bool) -> WorkerInfo:
    now = time.time()
    return WorkerInfo("w", "h", 1, "default", 2, now, now, alive)


def test_error_kind_reads_the_last_error_of_a_retried_run() -> None:
    assert (
        _error_kind("failed 3 times; last error: RuntimeError: boom") == "RuntimeError"
    )
    assert _error_kind("ValueError: bad") == "ValueError"
    assert _error_kind("something went wrong") == "Error"
    assert _error_kind(None) == "unknown"


def _failed(
    run_id: str, graph: str, error: str, node: str | None, at: float | None
) -> RunRecord:
    return RunRecord(
        run_id, graph, "t", RunStatus.ERROR, error=error, error_node=node,
        finished_at=at,
    )  # fmt: skip


def test_errors_are_grouped_by_kind_graph_and_node_with_latest_example() -> None:
    records = [
        _failed(f"r{i}", "g", f"KeyError: {i}", "judge", float(i)) for i in range(3)
    ]
    records += [
        _failed("x", "h", "OSError: x", None, None),
        _failed("y", "g", "KeyError: y", "persona", 5.0),
    ]
    groups = _group_errors(records)
    assert [(g.kind, g.graph, g.node, g.count) for g in groups] == [
        ("KeyError", "g", "judge", 3),
        ("OSError", "h", "", 1),
        ("KeyError", "g", "persona", 1),
    ]
    assert groups[0].example_run_id == "r2" and groups[0].first_seen == 0.0
    assert groups[1].last_seen is None


def test_quiet_healthy_fleet_raises_no_alert() -> None:
    assert evaluate_alerts(_status(workers=[_worker(True)]), Settings()) == []


def test_each_threshold_raises_its_alert() -> None:
    settings = Settings(alert_error_rate=0.1, alert_queue_age_seconds=60)
    status = _status(
        dead_letters=2,
        error_rate=0.5,
        oldest_ready_age_s=120.0,
        queue_depth=3,
        workers=[_worker(False)],
    )
    names = [a.name for a in evaluate_alerts(status, settings)]
    assert names == ["dead_letters", "error_rate", "queue_age", "no_live_workers"]
    quiet = Settings(alert_no_workers=False, alert_dead_letters=5)
    assert [a.name for a in evaluate_alerts(status, quiet)] == ["error_rate"]


def test_status_as_dict_counts_live_workers() -> None:
    status = _status(workers=[_worker(True), _worker(False)])
    data = status.as_dict()
    assert data["live_workers"] == 1 and data["queue"] == "default"


def test_the_status_screen_shows_errors_by_node_and_recovery() -> None:
    from rich.console import Console

    from dialogllm.cli.operations import _render_status

    errors = _group_errors([_failed("r1", "debate", "KeyError: k", "judge", 1.0)])
    status = _status(
        errors=errors,
        reclaims=3,
        recovery_p50_s=1.25,
        recovery_max_s=2.5,
        last_reclaim_at=time.time() - 10,
        run_duration_p50_s=4.0,
        retries=2,
    )
    console = Console(width=160, record=True)
    console.print(_render_status(status))
    screen = console.export_text()
    assert "judge" in screen and "KeyError" in screen
    assert "3 reclaim(s)" in screen and "p50 1.2s, max 2.5s" in screen
    assert "p50 4.0s, p95 —" in screen and "retries 2" in screen

    quiet = Console(width=160, record=True)
    quiet.print(_render_status(_status()))
    assert "no reclaims" in quiet.export_text()


def test_submit_progress_counts_the_tokens_of_transcript_entries() -> None:
    from dialogllm.cli.operations import _tokens_in

    update = {
        "Ada": {"transcript": [{"prompt_tokens": 30, "completion_tokens": 12}]},
        "judge": {"verdict": "ok"},
        "Bo": {"transcript": [{"text": "hi"}, "not an entry"]},
    }
    assert _tokens_in(update) == 42
    assert _tokens_in(["not", "a", "dict"]) == 0
    # the director's choice writes no entry: its spent_tokens count too
    chose = {
        "choose": {"next_speaker": "Bo", "spent_tokens": 9},
        "x": {"spent_tokens": "?"},
    }
    assert _tokens_in({**update, **chose}) == 51


def test_a_quantile_no_longer_known_stops_being_exported() -> None:
    import prometheus_client as prom

    from dialogllm.queue.fleet import _set_quantiles

    registry = prom.CollectorRegistry()
    gauge = prom.Gauge("g_seconds", "x", ["queue", "quantile"], registry=registry)
    _set_quantiles(gauge, "default", {"0.5": 1.5, "1": 3.0})
    assert registry.get_sample_value("g_seconds", {"queue": "default", "quantile": "1"})
    _set_quantiles(gauge, "default", {"0.5": 1.0, "1": None})
    sample = {"queue": "default", "quantile": "1"}
    assert registry.get_sample_value("g_seconds", sample) is None
    assert (
        registry.get_sample_value("g_seconds", {"queue": "default", "quantile": "0.5"})
        == 1.0
    )
    _set_quantiles(gauge, "default", {"1": None})  # dropping twice is fine


def test_bad_records_raise_an_alert_naming_the_first() -> None:
    from dialogllm.queue.fleet import BadRecord

    bad = [BadRecord("p:run:1", "status: not a run status: 'x'")] * 2
    alerts = evaluate_alerts(_status(bad_records=bad), Settings())
    assert [a.name for a in alerts] == ["bad_records"]
    assert "2 stored record(s)" in alerts[0].message
    assert "p:run:1: status: not a run status" in alerts[0].message
    assert evaluate_alerts(_status(), Settings()) == []


def test_every_exported_metric_keeps_its_documented_name_and_labels() -> None:
    """The Prometheus names are an interface (dashboards, alerts): each collector the
    worker's endpoint exports is named in the docs, with the labels they promise."""
    registry = prom.CollectorRegistry()
    FleetExporter(registry)
    _collectors_for(registry)
    declared = {
        min(names, key=len): tuple(collector._labelnames)
        for collector, names in registry._collector_to_names.items()
    }
    docs = "".join(
        (Path(__file__).parents[2] / "docs" / page).read_text()
        for page in ("operations.md", "llm.md")
    )
    assert len(declared) == 24
    assert [name for name in declared if name not in docs] == []
    assert declared["dialogllm_queue_depth"] == ("queue",)
    assert declared["dialogllm_runs"] == ("queue", "status")
    assert declared["dialogllm_recovery_seconds"] == ("queue", "quantile")
    assert declared["dialogllm_crons"] == ("queue", "state")
    assert declared["dialogllm_cron_ticks"] == ("queue", "outcome")
    assert declared["dialogllm_llm_errors"] == ("model", "kind")
    assert declared["dialogllm_llm_latency_seconds"] == ("model",)
    assert declared["dialogllm_redis_rtt_seconds"] == ()
