"""Fleet status logic: error grouping and alert thresholds (no Redis needed)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from dialogllm.config import Settings
from dialogllm.fleet import (
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


def test_errors_are_grouped_by_kind_and_graph_with_latest_example() -> None:
    records = [
        SimpleNamespace(
            run_id=f"r{i}", graph="g", error=f"KeyError: {i}", finished_at=float(i)
        )
        for i in range(3)
    ] + [SimpleNamespace(run_id="x", graph="h", error="OSError: x", finished_at=None)]
    groups = _group_errors(records)
    assert [(g.kind, g.graph, g.count) for g in groups] == [
        ("KeyError", "g", 3),
        ("OSError", "h", 1),
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
