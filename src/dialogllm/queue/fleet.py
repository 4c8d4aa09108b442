"""The health of a fleet of workers: presence, one status snapshot, alerts, metrics.

This module owns what ``dialogllm status`` shows and what a worker exports to
Prometheus. It is not imported by :mod:`dialogllm.queue` itself (it pulls in the LLM
layer and ``prometheus_client``): import it as ``dialogllm.queue.fleet``. Workers
announce themselves in one Redis hash (``P:fleet:workers``: worker name -> JSON with
host, pid, concurrency, start and last heartbeat); a worker whose last heartbeat is
older than three heartbeat periods counts as dead. The snapshot reads the queue's
counters and records, the workers, and the LLM layer's fleet-wide metrics, then marks
every alert threshold it crosses.

>>> snapshot = await fleet_status(redis, queue)           # doctest: +SKIP
>>> [a.name for a in snapshot.alerts]
['no_live_workers']
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import prometheus_client as prom
from redis import exceptions as redis_exceptions
from redis.client import NEVER_DECODE

from dialogllm.config import Settings, get_settings
from dialogllm.llm import ModelMetrics, read_llm_metrics
from dialogllm.logging import get_logger
from dialogllm.queue import keys
from dialogllm.queue.client import Queue
from dialogllm.queue.cron_store import CronStats
from dialogllm.queue.crons import Crons
from dialogllm.queue.keys import fleet_workers as workers_key
from dialogllm.queue.models import RunStatus

__all__ = [
    "HEARTBEAT_S",
    "Alert",
    "BadRecord",
    "ErrorGroup",
    "FleetExporter",
    "FleetStatus",
    "WorkerInfo",
    "WorkerPresence",
    "fleet_status",
    "workers_key",
]

HEARTBEAT_S = 5.0
_log = get_logger("dialogllm.queue.fleet")


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the fleet sees it: ``alive`` (liveness) when its heartbeat is
    recent, ``ready`` (readiness) when it is alive and its last read of the queue
    succeeded (not reconnecting, not shutting down)."""

    name: str
    host: str
    pid: int
    queue: str
    concurrency: int
    started_at: float
    last_seen: float
    alive: bool
    ready: bool = True


class WorkerPresence:
    """Announces one worker every ``HEARTBEAT_S`` seconds until stopped."""

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str,
        name: str,
        queue: str,
        concurrency: int,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.redis = redis
        self.ready = ready
        self.key = workers_key(prefix)
        self.name = name
        self.record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queue": queue,
            "concurrency": concurrency,
            "started_at": time.time(),
        }
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        """Write one heartbeat."""
        ready = self.ready() if self.ready is not None else True
        payload = json.dumps({**self.record, "last_seen": time.time(), "ready": ready})
        await self.redis.hset(self.key, self.name, payload)

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # Redis down: the next beat retries
                _log.warning("worker_heartbeat_failed", error=type(exc).__name__)
            await asyncio.sleep(HEARTBEAT_S)

    def start(self) -> None:
        """Beat on a task of its own."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop beating and leave the fleet."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.redis.hdel(self.key, self.name)
        except Exception as exc:  # leaving is best effort: a stale entry ages out
            _log.warning("worker_leave_failed", error=type(exc).__name__)


async def read_workers(
    redis: Any, prefix: str, now: float | None = None
) -> list[WorkerInfo]:
    """Every announced worker, alive or not (dead ones are dropped after an hour)."""
    now = now if now is not None else time.time()
    try:
        # raw bytes: an entry that is not UTF-8 is one bad entry, not a crash
        raw = await redis.execute_command(
            "HGETALL", workers_key(prefix), **{NEVER_DECODE: True}
        )
    except redis_exceptions.ResponseError as exc:  # the hash replaced by another type
        _log.warning("workers_unreadable", key=workers_key(prefix), error=str(exc))
        return []
    out: list[WorkerInfo] = []
    stale: list[str] = []
    for name, payload in raw.items():
        name_s = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        try:
            data = json.loads(payload)
            last = float(data.get("last_seen", 0))
            info = WorkerInfo(
                name=name_s,
                host=str(data.get("host", "?")),
                pid=int(data.get("pid", 0)),
                queue=str(data.get("queue", "")),
                concurrency=int(data.get("concurrency", 0)),
                started_at=float(data.get("started_at", 0)),
                last_seen=last,
                alive=now - last <= 3 * HEARTBEAT_S,
                ready=bool(data.get("ready", True)) and now - last <= 3 * HEARTBEAT_S,
            )
        except (TypeError, ValueError, AttributeError):  # not a worker's heartbeat
            _log.warning("worker_entry_unreadable", worker=name_s)
            stale.append(name_s)
            continue
        if now - last > 3600:
            stale.append(name_s)
            continue
        out.append(info)
    if stale:
        await redis.hdel(workers_key(prefix), *stale)
    return sorted(out, key=lambda w: w.name)


@dataclass(frozen=True)
class ErrorGroup:
    """Failed runs that share a kind, a graph and the node the error came from
    (``""`` when LangGraph named none, e.g. an error before the first node)."""

    kind: str
    graph: str
    node: str
    count: int
    first_seen: float | None
    last_seen: float | None
    example_run_id: str
    example_message: str


@dataclass(frozen=True)
class BadRecord:
    """Stored data the snapshot could not decode: the Redis ``key`` and why (the
    rest of the snapshot is read around it)."""

    key: str
    reason: str


@dataclass(frozen=True)
class Alert:
    """A threshold the fleet crosses now."""

    name: str
    message: str


@dataclass
class FleetStatus:
    """Everything ``dialogllm status`` shows, as data (``--json`` prints it)."""

    queue: str
    queue_depth: int
    delayed: int
    dead_letters: int
    oldest_ready_age_s: float | None
    runs_by_status: dict[str, int]
    runs_capped: bool
    workers: list[WorkerInfo]
    llm: dict[str, ModelMetrics]
    errors: list[ErrorGroup]
    error_rate: float
    retries: int = 0
    run_duration_p50_s: float | None = None
    run_duration_p95_s: float | None = None
    reclaims: int = 0
    recovery_p50_s: float | None = None
    recovery_max_s: float | None = None
    last_reclaim_at: float | None = None
    bad_records: list[BadRecord] = field(default_factory=list)
    crons: CronStats = field(default_factory=CronStats)
    alerts: list[Alert] = field(default_factory=list)

    @property
    def live_workers(self) -> int:
        """Workers whose heartbeat is recent."""
        return sum(1 for w in self.workers if w.alive)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        data = asdict(self)
        data["llm"] = {k: v.model_dump() for k, v in self.llm.items()}
        data["live_workers"] = self.live_workers
        return data


def _error_kind(message: str | None) -> str:
    text = (message or "unknown").strip()
    if "last error:" in text:  # "failed 3 times; last error: RuntimeError: ..."
        text = text.rsplit("last error:", 1)[1].strip()
    head = text.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) <= 60 else "Error"


def _group_errors(records: list[Any]) -> list[ErrorGroup]:
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for record in records:
        key = (_error_kind(record.error), record.graph, record.error_node or "")
        groups.setdefault(key, []).append(record)
    out = []
    for (kind, graph, node), members in groups.items():
        times = [m.finished_at for m in members if m.finished_at is not None]
        latest = max(members, key=lambda m: m.finished_at or 0)
        out.append(
            ErrorGroup(
                kind=kind,
                graph=graph,
                node=node,
                count=len(members),
                first_seen=min(times) if times else None,
                last_seen=max(times) if times else None,
                example_run_id=latest.run_id,
                example_message=(latest.error or "")[:300],
            )
        )
    return sorted(out, key=lambda g: -g.count)


async def fleet_status(
    redis: Any,
    queue: Queue,
    *,
    settings: Settings | None = None,
    count_limit: int = 2000,
    llm_window_s: int = 3600,
) -> FleetStatus:
    """Read the fleet's state and evaluate the alert thresholds."""
    settings = settings or get_settings()
    stats, unreadable = await queue.stats_report()
    oldest = await queue.oldest_ready_at()
    oldest_age = None if oldest is None else max(0.0, time.time() - oldest)
    records = await queue.list(limit=count_limit)
    bad = [
        BadRecord(
            keys.run_record(queue.prefix, queue.name, r.run_id),
            "; ".join(f"{name}: {why}" for name, why in r.problems.items()),
        )
        for r in records
        if r.problems
    ]
    # a run whose status cannot be read is not counted under a status it lacks
    counts = Counter(r.status.value for r in records if "status" not in r.problems)
    by_status = {s.value: counts.get(s.value, 0) for s in RunStatus}
    failed = [r for r in records if r.status in (RunStatus.ERROR, RunStatus.DEAD)]
    finished = sum(
        by_status[s] for s in ("success", "error", "dead", "interrupted", "cancelled")
    )
    error_rate = len(failed) / finished if finished else 0.0
    durations = sorted(
        r.finished_at - r.started_at
        for r in records
        if r.finished_at is not None and r.started_at is not None
    )
    retries = sum(max(0, r.attempts - 1) for r in records)
    recovery = await queue.recovery()
    bad += [BadRecord(key, reason) for key, reason in recovery.problems]
    bad += [BadRecord(key, reason) for key, reason in unreadable]
    downtimes = sorted(r.downtime_s for r in recovery.recent)
    workers = await read_workers(redis, queue.prefix)
    try:
        llm = await read_llm_metrics(redis, prefix=queue.prefix, window_s=llm_window_s)
    except Exception as exc:  # metrics are optional: never fail status for them
        _log.warning("llm_metrics_unreadable", error=type(exc).__name__)
        llm = {}
    status = FleetStatus(
        queue=queue.name,
        queue_depth=stats["ready"],
        delayed=stats["delayed"],
        dead_letters=stats["dead_letters"],
        oldest_ready_age_s=oldest_age,
        runs_by_status=by_status,
        runs_capped=len(records) >= count_limit,
        workers=workers,
        llm=llm,
        errors=_group_errors(failed),
        error_rate=error_rate,
        retries=retries,
        run_duration_p50_s=_quantile(durations, 0.5),
        run_duration_p95_s=_quantile(durations, 0.95),
        reclaims=recovery.reclaims,
        recovery_p50_s=_quantile(downtimes, 0.5),
        recovery_max_s=downtimes[-1] if downtimes else None,
        last_reclaim_at=recovery.recent[0].at if recovery.recent else None,
        bad_records=bad,
        crons=await Crons(queue).stats(),
    )
    status.alerts = evaluate_alerts(status, settings)
    return status


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def evaluate_alerts(status: FleetStatus, settings: Settings) -> list[Alert]:
    """The thresholds ``status`` crosses (configured by ``DIALOGLLM_ALERT_*``)."""
    alerts = []
    if status.dead_letters >= settings.alert_dead_letters:
        alerts.append(
            Alert(
                "dead_letters",
                f"{status.dead_letters} run(s) in the dead-letter stream "
                f"(threshold {settings.alert_dead_letters}); see `dialogllm dlq list`",
            )
        )
    finished = (
        sum(status.runs_by_status.values())
        - status.runs_by_status.get("pending", 0)
        - status.runs_by_status.get("running", 0)
    )
    if finished >= 5 and status.error_rate > settings.alert_error_rate:
        alerts.append(
            Alert(
                "error_rate",
                f"{status.error_rate:.0%} of finished runs failed (threshold "
                f"{settings.alert_error_rate:.0%})",
            )
        )
    if (
        status.oldest_ready_age_s is not None
        and status.oldest_ready_age_s > settings.alert_queue_age_seconds
    ):
        alerts.append(
            Alert(
                "queue_age",
                f"the oldest queued run has waited {status.oldest_ready_age_s:.0f} s "
                f"(threshold {settings.alert_queue_age_seconds:.0f} s)",
            )
        )
    if status.bad_records:
        first = status.bad_records[0]
        alerts.append(
            Alert(
                "bad_records",
                f"{len(status.bad_records)} stored record(s) cannot be decoded "
                f"(written by something other than DialogueLLM?), e.g. {first.key}: "
                f"{first.reason}",
            )
        )
    if status.crons.overdue:
        alerts.append(
            Alert(
                "crons_overdue",
                f"{status.crons.overdue} cron(s) overdue by over 10 s: no worker or "
                "API process is firing them",
            )
        )
    if (
        settings.alert_no_workers
        and status.live_workers == 0
        and (status.queue_depth or status.runs_by_status.get("pending"))
    ):
        alerts.append(
            Alert("no_live_workers", "runs are waiting and no worker is alive")
        )
    return alerts


class FleetExporter:
    """Prometheus gauges of the queue and this process, refreshed periodically.

    LLM metrics (latency, tokens, errors by model) are registered by the LLM layer in
    the same default registry, so one endpoint exports both.
    """

    def __init__(self, registry: prom.CollectorRegistry | None = None) -> None:
        reg = registry or prom.REGISTRY

        def gauge(name: str, doc: str, *labels: str) -> prom.Gauge:
            return prom.Gauge(f"dialogllm_{name}", doc, labels, registry=reg)

        q, quantile = "queue", "quantile"
        self.depth = gauge("queue_depth", "Runs in the stream (ready or in flight)", q)
        self.delayed = gauge("queue_delayed", "Delayed or backing-off runs", q)
        self.dead = gauge("dead_letters", "Runs in the dead-letter stream", q)
        self.runs = gauge("runs", "Retained runs by status", q, "status")
        self.oldest = gauge(
            "queue_oldest_age_seconds", "Age of the oldest queued run", q
        )
        self.live = gauge("live_workers", "Workers with a recent heartbeat", q)
        self.rtt = gauge("redis_rtt_seconds", "Round trip of a Redis PING")
        self.memory = gauge(
            "process_max_rss_bytes", "Peak resident memory of this process"
        )
        self.retries = gauge("run_retries", "Retries of the retained runs", q)
        self.duration = gauge(
            "run_duration_seconds",
            "Duration of retained finished runs (their last attempt)",
            q,
            quantile,
        )
        self.reclaims = gauge(
            "reclaims", "Runs taken over from dead or stalled workers, ever", q
        )
        self.recovery = gauge(
            "recovery_seconds",
            "From a reclaimed run's last heartbeat to its takeover (latest 200)",
            q,
            quantile,
        )
        self.ready = gauge(
            "worker_ready", "1 when this worker is connected and reading"
        )
        self.crons = gauge("crons", "Crons of the queue, by state", q, "state")
        self.cron_ticks = gauge(
            "cron_ticks",
            "Cron ticks, ever, by outcome (fired, busy, skipped)",
            q,
            "outcome",
        )

    async def refresh(self, redis: Any, queue: Queue, *, ready: bool = True) -> None:
        """Read the figures once and set the gauges; ``ready`` is this worker's
        readiness (see :attr:`dialogllm.queue.Worker.ready`)."""
        started = time.perf_counter()
        await redis.ping()
        self.rtt.set(time.perf_counter() - started)
        status = await fleet_status(redis, queue, count_limit=500, llm_window_s=300)
        name = status.queue
        self.depth.labels(name).set(status.queue_depth)
        self.delayed.labels(name).set(status.delayed)
        self.dead.labels(name).set(status.dead_letters)
        self.oldest.labels(name).set(status.oldest_ready_age_s or 0)
        self.live.labels(name).set(status.live_workers)
        self.retries.labels(name).set(status.retries)
        _set_quantiles(
            self.duration,
            name,
            {"0.5": status.run_duration_p50_s, "0.95": status.run_duration_p95_s},
        )
        self.reclaims.labels(name).set(status.reclaims)
        _set_quantiles(
            self.recovery,
            name,
            {"0.5": status.recovery_p50_s, "1": status.recovery_max_s},
        )
        for state, count in status.runs_by_status.items():
            self.runs.labels(name, state).set(count)
        c = status.crons
        self.crons.labels(name, "all").set(c.crons)
        self.crons.labels(name, "scheduled").set(c.scheduled)
        self.crons.labels(name, "overdue").set(c.overdue)
        self.cron_ticks.labels(name, "fired").set(c.fired)
        self.cron_ticks.labels(name, "busy").set(c.busy)
        self.cron_ticks.labels(name, "skipped").set(c.skipped)
        self.memory.set(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        self.ready.set(1 if ready else 0)


def _set_quantiles(
    gauge: prom.Gauge, queue: str, values: dict[str, float | None]
) -> None:
    """Set ``gauge{queue, quantile}`` for each known value; drop the series of a
    value no longer known (its runs expired), so no stale figure is exported."""
    for quantile, value in values.items():
        if value is not None:
            gauge.labels(queue, quantile).set(value)
        else:
            with contextlib.suppress(KeyError):
                gauge.remove(queue, quantile)
