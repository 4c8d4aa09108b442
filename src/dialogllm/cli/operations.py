"""The operator's commands of ``dialogllm``: queue, workers, fleet status, Redis.

``submit``, ``worker``, ``status``, ``cancel``, ``runs``, ``dlq`` and ``redis``. Each
is a thin layer over the Python API (:mod:`dialogllm.queue`,
:mod:`dialogllm.queue.fleet`, :mod:`dialogllm.redis`); every one takes ``--json`` for
scripts and exits with the codes of :mod:`dialogllm.cli.exit_codes`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from dialogllm.cli import output
from dialogllm.cli.dialogue import dialogue_input, print_entry
from dialogllm.cli.exit_codes import (
    EXIT_ALERT,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REDIS,
    EXIT_WAITING,
)
from dialogllm.config import get_settings
from dialogllm.errors import DialogueLLMError
from dialogllm.logging import mask_url

if TYPE_CHECKING:
    from dialogllm.queue import Queue, RunStatus
    from dialogllm.queue.fleet import FleetStatus
    from dialogllm.queue.models import Multitask, RunRecord
    from dialogllm.redis import EmbeddedRedis

__all__ = [
    "cancel",
    "dlq_app",
    "redis_app",
    "runs_app",
    "status",
    "submit",
    "worker",
]

QueueOpt = Annotated[str, typer.Option("--queue", help="Queue name.")]


def _url() -> str:
    from dialogllm.redis import resolve_url

    return resolve_url()


def _queue(name: str) -> Queue:
    from dialogllm.queue import Queue

    url = _url()
    return Queue.from_url(url, key_prefix=get_settings().key_prefix, queue=name)


def _ago(ts: float | None) -> str:
    return "—" if not ts else f"{max(0.0, time.time() - ts):.0f}s ago"


# --- submit ---------------------------------------------------------------------------


def submit(
    ctx: typer.Context,
    graph: Annotated[str, typer.Argument(help="Graph name or module:attr reference.")],
    topic: Annotated[
        str | None, typer.Option(help="Sets the graph's topic (or motion).")
    ] = None,
    input: Annotated[
        str | None, typer.Option("--input", metavar="JSON", help="Input JSON.")
    ] = None,
    thread: Annotated[str | None, typer.Option(help="Thread id.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Same key, same run.")
    ] = None,
    multitask: Annotated[
        str, typer.Option(help="reject | enqueue | interrupt | rollback")
    ] = "enqueue",
    delay: Annotated[float | None, typer.Option(help="Start after N s.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run to its end.")] = False,
    timeout: Annotated[float | None, typer.Option(help="--wait at most N s.")] = None,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """Enqueue a run of a graph for the workers. Every field of the graph's input is
    an option too (--rounds 2; see dialogllm graphs).

    Example: dialogllm submit debate --topic "Tabs or spaces?" --wait
    """
    if multitask not in ("reject", "enqueue", "interrupt", "rollback"):
        output.fail(EXIT_BAD_INPUT, f"unknown --multitask {multitask!r}")
    if delay is not None and not delay >= 0:
        output.fail(EXIT_BAD_INPUT, f"--delay must be >= 0 seconds, got {delay}")
    if timeout is not None and not timeout > 0:
        output.fail(EXIT_BAD_INPUT, f"--timeout must be > 0 seconds, got {timeout}")
    how = cast("Multitask", multitask)
    # The same graph and input check as `run`: nothing is queued that would fail.
    _, payload = dialogue_input(graph, input, topic, ctx.args)

    async def go() -> int:
        async with _queue(queue) as q:
            run_id = await q.enqueue(
                graph,
                payload,
                thread_id=thread,
                idempotency_key=idempotency_key,
                multitask=how,
                delay=delay,
            )
            if not wait:
                record = await q.get(run_id)
                if as_json:
                    output.print_json(asdict(record))
                else:
                    output.out.print(
                        f"run {run_id} on thread {record.thread_id}: queued"
                    )
                    _print_transcript_hint(record.thread_id)
                return EXIT_OK
            return await _follow(q, run_id, timeout, as_json)

    raise typer.Exit(output.run_async(go))


def _run_row(r: RunRecord) -> tuple[str, ...]:
    """A run as ``runs list`` shows it (``runs show`` says why a record is bad)."""
    state = r.status.value
    if r.problems:
        state += f" (bad record: {', '.join(r.problems)})"
    attempts = f"{r.attempts}/{r.max_attempts}"
    return (r.run_id, state, r.graph, r.thread_id, attempts, _ago(r.created_at))


def _entry_dicts(update: object) -> Iterator[dict[str, Any]]:
    """The transcript entries in a node update (``{node: {"transcript": [...]}}``)."""
    for value in update.values() if isinstance(update, dict) else ():
        entries = value.get("transcript") if isinstance(value, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict):
                yield entry


def _tokens_in(update: object) -> int:
    """LLM tokens a node update (``{node: {...}}``) records: its transcript entries',
    and its ``spent_tokens`` (calls that wrote no entry, e.g. the director's choice)."""
    total = 0
    for entry in _entry_dicts(update):
        total += int(entry.get("prompt_tokens") or 0)
        total += int(entry.get("completion_tokens") or 0)
    for value in update.values() if isinstance(update, dict) else ():
        spent = value.get("spent_tokens") if isinstance(value, dict) else None
        total += spent if isinstance(spent, int) else 0
    return total


def _print_entries(update: object) -> None:
    """Show the transcript entries of a node update as ``run`` shows them."""
    from pydantic import ValidationError

    from dialogllm.models import TranscriptEntry

    for data in _entry_dicts(update):
        try:
            entry = TranscriptEntry.model_validate(data)
        except ValidationError:
            continue
        print_entry(entry)


def _print_transcript_hint(thread_id: str) -> None:
    """Where the dialogue of a submitted run can be read (its thread's id)."""
    output.out.print(
        f"thread {escape(thread_id)}; transcript: "
        f"{output.command()} transcript {escape(thread_id)} --format md"
    )


async def _follow(q: Queue, run_id: str, timeout: float | None, as_json: bool) -> int:
    """Show a run's progress until it ends (or ``timeout``), then its outcome; the
    exit code says how it ended."""
    from dialogllm.queue import TERMINAL_STATUSES, RunStatus

    started = time.monotonic()
    turns = tokens = 0
    # stdout is for the turns (not redirected into the live line on stderr).
    with Live(
        console=output.err,
        transient=True,
        refresh_per_second=4,
        redirect_stdout=False,
    ) as live:

        async def watch() -> None:
            nonlocal turns, tokens
            async for event in q.events(run_id, follow=True, timeout=timeout):
                if event.kind == "updates":
                    turns += 1
                    tokens += _tokens_in(event.data)
                    if not as_json and any(_entry_dicts(event.data)):
                        live.stop()  # the turns go above the live line
                        _print_entries(event.data)
                        live.start()
                live.update(
                    f"run {run_id}: {event.status or 'running'} · {turns} step(s) · "
                    f"{tokens} tokens · {time.monotonic() - started:.0f}s"
                )
                if event.status in TERMINAL_STATUSES:
                    return

        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(watch(), timeout)
    record = await q.get(run_id)
    if as_json:
        output.print_json(asdict(record))
    else:
        output.out.print(f"run {run_id}: {record.status.value} after {turns} step(s)")
        if record.error:
            where = f" (in node {record.error_node})" if record.error_node else ""
            output.out.print(f"  error{where}: {record.error}")
        _print_transcript_hint(record.thread_id)
    if record.status is RunStatus.SUCCESS:
        return EXIT_OK
    if record.status is RunStatus.INTERRUPTED:
        return EXIT_WAITING
    return EXIT_FAILED  # error, dead, cancelled, or still going after --timeout


# --- worker ---------------------------------------------------------------------------


def worker(
    concurrency: Annotated[int, typer.Option(help="Runs at once.")] = 4,
    queues: Annotated[
        list[str] | None, typer.Option("--queues", help="Queue(s) to serve.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    lease_ttl: Annotated[float, typer.Option(help="Lease seconds.")] = 30.0,
    grace: Annotated[float, typer.Option(help="Shutdown grace seconds.")] = 30.0,
) -> None:
    """Run a worker until SIGTERM/SIGINT (graceful: running runs are handed back).

    Example: dialogllm worker --concurrency 8 --metrics-port 9100
    """
    if concurrency < 1:
        output.fail(EXIT_BAD_INPUT, "--concurrency must be >= 1")
    if not lease_ttl > 0:
        output.fail(EXIT_BAD_INPUT, f"--lease-ttl must be > 0 seconds, got {lease_ttl}")
    if not grace >= 0:
        output.fail(EXIT_BAD_INPUT, f"--grace must be >= 0 seconds, got {grace}")
    names = queues or ["default"]

    async def go() -> int:
        from dialogllm.core import resolve_graph
        from dialogllm.queue import Worker
        from dialogllm.queue.fleet import FleetExporter, WorkerPresence

        settings = get_settings()
        url = _url()
        workers = [
            Worker(
                url,
                key_prefix=settings.key_prefix,
                queue=name,
                concurrency=concurrency,
                resolve=lambda ref: resolve_graph(ref).graph,
                lease_ttl=lease_ttl,
                grace=grace,
                checkpoint_ttl=settings.checkpoint_ttl_seconds,
            )
            for name in names
        ]
        loop = asyncio.get_running_loop()

        def stop_all() -> None:
            for w in workers:
                w.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_all)
        queue_objs = [_queue(name) for name in names]
        presences = [
            WorkerPresence(
                q.client,
                prefix=settings.key_prefix,
                name=w.name,
                queue=w.queue,
                concurrency=concurrency,
                ready=functools.partial(getattr, w, "ready"),
            )
            for q, w in zip(queue_objs, workers, strict=True)
        ]
        for p in presences:
            p.start()
        exporter_task = None
        if metrics_port is not None:
            import prometheus_client

            prometheus_client.start_http_server(metrics_port, addr="0.0.0.0")
            exporter = FleetExporter()

            async def export() -> None:
                while True:
                    ready = all(w.ready for w in workers)
                    for q in queue_objs:
                        with suppress(Exception):
                            await exporter.refresh(q.client, q, ready=ready)
                    await asyncio.sleep(5)

            exporter_task = loop.create_task(export())
        output.err.print(
            f"worker(s) {', '.join(w.name for w in workers)} serving "
            f"{', '.join(names)} at {mask_url(url)}"
        )
        try:
            await asyncio.gather(
                *(w.run(install_signal_handlers=False) for w in workers)
            )
        finally:
            if exporter_task is not None:
                exporter_task.cancel()
            for p in presences:
                await p.stop()
            for q in queue_objs:
                await q.aclose()
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


# --- status ---------------------------------------------------------------------------


def status(
    watch: Annotated[bool, typer.Option(help="Refresh every 2 s.")] = False,
    check: Annotated[
        bool, typer.Option(help="Exit 6 when an alert threshold is crossed.")
    ] = False,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """One screen: queue depth, runs by status, workers, LLM figures, errors, alerts.

    Example: dialogllm status --watch      (cron/probe: dialogllm status --check)
    """
    from dialogllm.queue.fleet import fleet_status

    async def snapshot(q: Queue) -> FleetStatus:
        return await fleet_status(q.client, q)

    async def go() -> int:
        async with _queue(queue) as q:
            if watch and not as_json and output.out.is_terminal:
                with Live(console=output.out, refresh_per_second=1) as live:
                    while True:
                        live.update(_render_status(await snapshot(q)))
                        await asyncio.sleep(2)
            if watch and not as_json:  # a pipe or a file: one screen every 2 s
                while True:
                    output.out.print(_render_status(await snapshot(q)))
                    output.out.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim]")
                    output.out.file.flush()
                    await asyncio.sleep(2)
            current = await snapshot(q)
        if as_json:
            output.print_json(current.as_dict())
        else:
            output.out.print(_render_status(current))
        return EXIT_ALERT if check and current.alerts else EXIT_OK

    raise typer.Exit(output.run_async(go))


def _render_status(s: FleetStatus) -> Table:
    grid = Table.grid(padding=(0, 2))
    runs = ", ".join(f"{k} {v}" for k, v in s.runs_by_status.items() if v) or "none"
    age = "—" if s.oldest_ready_age_s is None else f"{s.oldest_ready_age_s:.0f}s"
    grid.add_row("queue", f"{escape(s.queue)}: depth {s.queue_depth}, "
                 f"delayed {s.delayed}, dead letters {s.dead_letters}, "
                 f"oldest {age}")  # fmt: skip
    grid.add_row("runs", runs + (" (capped)" if s.runs_capped else ""))
    p50 = "—" if s.run_duration_p50_s is None else f"{s.run_duration_p50_s:.1f}s"
    p95 = "—" if s.run_duration_p95_s is None else f"{s.run_duration_p95_s:.1f}s"
    grid.add_row("error rate", f"{s.error_rate:.0%}, retries {s.retries}")
    grid.add_row("run duration", f"p50 {p50}, p95 {p95}")
    if s.reclaims:
        down = f"p50 {s.recovery_p50_s or 0:.1f}s, max {s.recovery_max_s or 0:.1f}s"
        last = _ago(s.last_reclaim_at)
        grid.add_row("recovery", f"{s.reclaims} reclaim(s), last {last}; "
                     f"death to resume {down}")  # fmt: skip
    else:
        grid.add_row("recovery", "no reclaims")
    c = s.crons
    if c.crons:
        grid.add_row("crons", f"{c.crons} ({c.scheduled} scheduled, {c.overdue} "
                     f"overdue); ticks fired {c.fired}, busy {c.busy}, "
                     f"skipped {c.skipped}")  # fmt: skip
    workers = Table(
        "worker", "host", "pid", "queue", "conc.", "heartbeat", "alive", "ready"
    )
    for w in s.workers:
        workers.add_row(escape(w.name), escape(w.host), str(w.pid), escape(w.queue),
                        str(w.concurrency),
                        _ago(w.last_seen), "yes" if w.alive else "NO",
                        "yes" if w.ready else "no")  # fmt: skip
    grid.add_row(f"workers ({s.live_workers} alive)", workers)
    llm = Table("model", "calls", "p50", "p95", "tokens in/out", "errors", "parse fail")
    for name, m in s.llm.items():
        llm.add_row(
            escape(name), str(m.calls),
            "—" if m.latency_p50_s is None else f"{m.latency_p50_s:.2f}s",
            "—" if m.latency_p95_s is None else f"{m.latency_p95_s:.2f}s",
            f"{m.prompt_tokens}/{m.completion_tokens}",
            str(m.error_total), str(m.structured_failures),
        )  # fmt: skip
    grid.add_row("LLM (last hour)", llm)
    if s.errors:
        errors = Table("kind", "graph", "node", "count", "last", "example")
        for g in s.errors[:10]:
            example = escape(f"{g.example_run_id}: {g.example_message[:80]}")
            errors.add_row(escape(g.kind), escape(g.graph), escape(g.node or "—"),
                           str(g.count), _ago(g.last_seen), example)  # fmt: skip
        grid.add_row("errors", errors)
    if s.bad_records:
        bad = Table("key", "why it cannot be read")
        for r in s.bad_records[:10]:
            bad.add_row(escape(r.key), escape(r.reason))
        more = len(s.bad_records) - 10
        if more > 0:
            bad.add_row(f"... and {more} more", "see `dialogllm status --json`")
        grid.add_row("bad records", bad)
    alerts = "\n".join(
        f"[bold red]ALERT[/] {a.name}: {escape(a.message)}" for a in s.alerts
    )
    grid.add_row("alerts", alerts or "[green]none[/]")
    return grid


# --- runs, cancel, dlq ----------------------------------------------------------------

runs_app = typer.Typer(help="Inspect runs.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter stream.", no_args_is_help=True)
redis_app = typer.Typer(help="The embedded Redis.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    status_: Annotated[
        str | None,
        typer.Option("--status", help="Only runs in this status (pending, dead…)."),
    ] = None,
    graph: Annotated[str | None, typer.Option(help="Only runs of this graph.")] = None,
    thread: Annotated[
        str | None, typer.Option(help="Only runs on this thread.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """List runs, newest first. Example: dialogllm runs list --status dead"""

    async def go() -> int:
        async with _queue(queue) as q:
            try:
                records = await q.list(
                    status=status_, graph=graph, thread_id=thread, limit=limit
                )
            except ValueError:
                output.fail(EXIT_BAD_INPUT, f"unknown --status {status_!r}")
        if as_json:
            output.print_json([asdict(r) for r in records])
            return EXIT_OK
        # ids are copied into other commands: never cut them, fold the rest
        table = Table()
        table.add_column("run", no_wrap=True, min_width=36)
        table.add_column("status", overflow="fold")
        table.add_column("graph", overflow="fold")
        table.add_column("thread", overflow="fold")
        table.add_column("attempts", no_wrap=True)
        table.add_column("created", no_wrap=True)
        output.print_table(table, (_run_row(r) for r in records))
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


@runs_app.command("show")
def runs_show(
    run_id: str, queue: QueueOpt = "default", as_json: output.JsonOpt = False
) -> None:
    """A run's record and its events. Example: dialogllm runs show RUN_ID"""

    async def go() -> int:
        async with _queue(queue) as q:
            record = await q.get(run_id)
            events = [e async for e in q.events(run_id, follow=False)]
        if as_json:
            output.print_json(
                {"run": asdict(record), "events": [asdict(e) for e in events]}
            )
        else:
            # stored data is printed as it is, never read as markup; times as
            # dates, structured values as indented JSON (--json for machines)
            for key, value in asdict(record).items():
                shown = _readable(key, value)
                output.out.print(f"{key:>16}: {shown}", markup=False)
            output.out.print(f"{'events':>16}: {len(events)}")
            for event in events:
                if event.problem is not None:
                    output.out.print(
                        f"{'bad event':>16}: {event.id}: {event.problem}", markup=False
                    )
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


def _readable(key: str, value: object) -> str:
    """A record field for people: epoch seconds as a UTC date, JSON as JSON."""
    if key.endswith("_at") and isinstance(value, int | float) and value > 0:
        moment = datetime.fromtimestamp(float(value), tz=UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, dict | list) and value:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        return text.replace("\n", "\n" + " " * 18)
    return str(value)


def _change_run(
    run_id: str,
    queue: str,
    as_json: bool,
    change: Callable[[Queue, str], Awaitable[RunStatus]],
) -> NoReturn:
    """Apply ``change`` (cancel, retry) to a run, show its new status and exit."""

    async def go() -> int:
        async with _queue(queue) as q:
            result = await change(q, run_id)
        if as_json:
            output.print_json({"run_id": run_id, "status": result.value})
        else:
            output.out.print(f"run {run_id}: {result.value}")
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


def cancel(
    run_id: str,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """Cancel a pending or running run. Example: dialogllm cancel RUN_ID"""
    _change_run(run_id, queue, as_json, lambda q, run: q.cancel(run))


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """Dead-lettered runs with their reason. Example: dialogllm dlq list"""

    async def go() -> int:
        async with _queue(queue) as q:
            letters = await q.dlq_list(limit=limit)
        if as_json:
            output.print_json([asdict(d) for d in letters])
            return EXIT_OK
        # the run id is copied into `dlq retry RUN_ID`: never cut it, fold the rest
        table = Table()
        table.add_column("run", no_wrap=True, min_width=36)
        for name in ("graph", "thread", "attempts", "reason"):
            table.add_column(name, overflow="fold")
        rows = ((d.run_id, d.graph, d.thread_id, d.attempts, d.reason) for d in letters)
        output.print_table(table, rows)
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


@dlq_app.command("retry")
def dlq_retry(
    run_id: str, queue: QueueOpt = "default", as_json: output.JsonOpt = False
) -> None:
    """Queue a dead run again. Example: dialogllm dlq retry RUN_ID"""
    _change_run(run_id, queue, as_json, lambda q, run: q.dlq_retry(run))


@dlq_app.command("purge")
def dlq_purge(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """Empty the dead-letter stream (the runs' records expire on their own).

    Example: dialogllm dlq purge --yes
    """
    if not yes and not typer.confirm("Delete every dead letter?", default=False):
        raise typer.Exit(EXIT_FAILED)

    async def go() -> int:
        async with _queue(queue) as q:
            removed = await q.dlq_purge()
        if as_json:
            output.print_json({"purged": removed})
        else:
            output.out.print(f"purged {removed} dead letter(s)")
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


# --- redis ----------------------------------------------------------------------------


def _embedded() -> EmbeddedRedis:
    from dialogllm.redis import EmbeddedRedis

    output.guard(output.setup_logging)
    return EmbeddedRedis(get_settings().data_dir)


@redis_app.command("start")
def redis_start(as_json: output.JsonOpt = False) -> None:
    """Start the embedded Redis (data dir's). Example: dialogllm redis start"""
    try:
        url = _embedded().ensure_running()
    except DialogueLLMError as exc:
        output.fail(EXIT_REDIS, str(exc))
    if as_json:
        output.print_json({"running": True, "url": url})
    else:
        output.out.print(f"embedded Redis running at {url}")


@redis_app.command("stop")
def redis_stop(as_json: output.JsonOpt = False) -> None:
    """Stop the embedded Redis (AOF flushed). Example: dialogllm redis stop"""
    stopped = _embedded().stop()
    if as_json:
        output.print_json({"stopped": stopped})
    else:
        output.out.print(
            "embedded Redis stopped" if stopped else "embedded Redis not running"
        )


@redis_app.command("status")
def redis_status(as_json: output.JsonOpt = False) -> None:
    """Whether the embedded Redis runs. Example: dialogllm redis status"""
    info = _embedded().status()
    data = {**asdict(info), "data_dir": str(info.data_dir)}
    if as_json:
        output.print_json(data)
    else:
        for key, value in data.items():
            output.out.print(f"{key:>18}: {value}")
    raise typer.Exit(EXIT_OK if info.running else EXIT_FAILED)
