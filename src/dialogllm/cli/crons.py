"""``dialogllm cron``: add, list and delete the queue's crons from the terminal.

A cron added here is the same as one created through the API
(:class:`~dialogllm.queue.Crons`): every worker's scheduler fires it, each tick once.
The graph and input are checked as ``submit`` checks them before anything is
written; a bad schedule, timezone or end time ends the command with exit 2, an
unknown cron id with exit 3.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from dialogllm.cli import output
from dialogllm.cli.dialogue import dialogue_input
from dialogllm.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from dialogllm.cli.operations import QueueOpt
from dialogllm.config import get_settings
from dialogllm.queue import CronRecord, Crons, Queue
from dialogllm.queue.crons import validate_schedule

__all__ = ["cron_add", "cron_app", "cron_delete", "cron_list"]

cron_app = typer.Typer(help="Runs on a schedule.", no_args_is_help=True)


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _end_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        output.fail(
            EXIT_BAD_INPUT,
            f"--end-time {text!r} is not an ISO 8601 time (2027-01-31T18:00:00+01:00)",
        )
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _cron_json(cron: CronRecord) -> dict[str, object]:
    return asdict(cron)


def _queue(name: str) -> Queue:
    from dialogllm.redis import resolve_url

    return Queue.from_url(
        resolve_url(), key_prefix=get_settings().key_prefix, queue=name
    )


@cron_app.command("add")
def cron_add(
    graph: Annotated[str, typer.Argument(help="Graph name or module:attr reference.")],
    schedule: Annotated[
        str,
        typer.Argument(
            help="Cron expression: 5 fields, or 6 with seconds last ('* * * * * */5')."
        ),
    ],
    input: Annotated[
        str | None, typer.Option("--input", metavar="JSON", help="Input JSON.")
    ] = None,
    thread: Annotated[
        str | None, typer.Option(help="Run on this thread (default: a new one).")
    ] = None,
    tz: Annotated[
        str | None, typer.Option("--tz", help="IANA timezone (default UTC).")
    ] = None,
    end_time: Annotated[
        str | None, typer.Option(help="Stop after this ISO 8601 time.")
    ] = None,
    catch_up: Annotated[
        bool, typer.Option(help="After downtime, fire every missed tick.")
    ] = False,
    keep_threads: Annotated[
        bool, typer.Option(help="Keep each firing's new thread.")
    ] = False,
    queue: QueueOpt = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """Add a cron: a run of a graph at every tick of a schedule (in --tz, default
    UTC). Workers fire it.

    Example: dialogllm cron add debate "0 9 * * *" --input '{"motion": "Tea?"}'
    """
    output.guard(lambda: validate_schedule(schedule, tz))
    _, payload = dialogue_input(graph, input, None)
    end = _end_time(end_time)

    async def go() -> int:
        async with _queue(queue) as q:
            cron = await Crons(q).create(
                graph,
                schedule,
                input=payload,
                thread_id=thread,
                timezone=tz,
                end_time=end,
                catch_up=catch_up,
                on_run_completed="keep" if keep_threads else "delete",
            )
        if as_json:
            output.print_json(_cron_json(cron))
        else:
            output.out.print(
                f"cron {cron.cron_id}: next run {_when(cron.next_ms)}", markup=False
            )
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


@cron_app.command("list")
def cron_list(queue: QueueOpt = "default", as_json: output.JsonOpt = False) -> None:
    """List the crons, newest first. Example: dialogllm cron list"""

    async def go() -> int:
        async with _queue(queue) as q:
            found = await Crons(q).search(limit=100_000)
        if as_json:
            output.print_json([_cron_json(c) for c in found])
            return EXIT_OK
        # ids are copied into other commands: never cut them, fold the rest
        table = Table()
        table.add_column("cron", no_wrap=True, min_width=36)
        table.add_column("schedule", no_wrap=True)
        table.add_column("graph", overflow="fold")
        table.add_column("thread", overflow="fold")
        table.add_column("next run", no_wrap=True)
        table.add_column("fired", no_wrap=True)
        rows = (
            (
                c.cron_id,
                c.spec.schedule + (f" ({c.spec.timezone})" if c.spec.timezone else ""),
                c.spec.graph,
                c.spec.thread_id or "new each run",
                _when(c.next_ms),
                c.fired,
            )
            for c in found
        )
        output.print_table(table, rows)
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


@cron_app.command("delete")
def cron_delete(
    cron_id: Annotated[str, typer.Argument(help="The cron's id (see cron list).")],
    queue: QueueOpt = "default",
) -> None:
    """Delete a cron; runs it queued already go on.

    Example: dialogllm cron delete CRON_ID
    """

    async def go() -> int:
        async with _queue(queue) as q:
            await Crons(q).delete(cron_id)
        output.out.print(f"cron {cron_id}: deleted", markup=False)
        return EXIT_OK

    raise typer.Exit(output.run_async(go))
