"""The dialogue commands of ``dialogllm``: ``run``, ``resume``, ``transcript``,
``graphs`` and ``threads list/show``.

Each is a thin layer over :class:`~dialogllm.core.DialogueRunner`, the graph registry
and the checkpointer; this module owns their arguments, the live display of a dialogue
(turns on stdout, a progress line on a terminal's stderr) and asking the person at the
terminal when a dialogue pauses for one. Exit codes: :mod:`dialogllm.cli.exit_codes`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.prompt import Prompt
from rich.status import Status
from rich.table import Table

from dialogllm.cli import output
from dialogllm.cli.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_LLM,
    EXIT_OK,
    EXIT_REDIS,
    EXIT_THREAD,
    EXIT_WAITING,
    exit_code_for,
)
from dialogllm.errors import DialogueLLMError

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from dialogllm.checkpoint import AsyncRedisSaver
    from dialogllm.core import (
        DialogueEvent,
        DialogueResult,
        DialogueRunner,
        InterruptEvent,
        ResolvedGraph,
    )
    from dialogllm.models import TranscriptEntry

__all__ = [
    "dialogue_input",
    "graphs",
    "print_entry",
    "resume",
    "run",
    "threads_app",
    "transcript",
]

#: Starts a dialogue's event stream on a runner (a new run, or a resume); a resume
#: sets the progress line's turn count to the turns the thread already has.
Start = Callable[["DialogueRunner", "_Progress"], AsyncIterator["DialogueEvent"]]

GraphOpt = Annotated[
    str | None, typer.Option(help="The graph (default: the one the thread used).")
]
InteractiveOpt = Annotated[
    bool, typer.Option(help="Ask the person at the terminal when the dialogue pauses.")
]


class TranscriptFormat(StrEnum):
    """Formats of ``dialogllm transcript``."""

    json = "json"
    md = "md"


def run(
    ctx: typer.Context,
    graph: Annotated[
        str, typer.Argument(help="Name, path/to/file.py:attr or package.module:attr.")
    ],
    topic: Annotated[
        str | None, typer.Option(help="Sets the graph's topic (or motion).")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option("--input", metavar="JSON", help="Input as a JSON object."),
    ] = None,
    thread: Annotated[
        str | None, typer.Option(help="Thread id (default: a new random one).")
    ] = None,
    interactive: InteractiveOpt = True,
) -> None:
    """Run a dialogue graph, streaming each turn as it happens. Every field of the
    graph's input is an option too (--max-turns 6, --rounds 2; see dialogllm graphs).

    Example: dialogllm run directed_dialogue --topic "Should we rewrite it in Rust?"
    """
    resolved, payload = dialogue_input(graph, input, topic, ctx.args)
    thread_id = thread or _new_thread_id()

    def start(runner: DialogueRunner, _: _Progress) -> AsyncIterator[DialogueEvent]:
        return runner.stream(resolved, payload, thread_id=thread_id)

    _execute(start, thread_id, interactive=interactive)


def dialogue_input(
    graph: str,
    input: str | None,
    topic: str | None,
    field_options: Sequence[str] = (),
) -> tuple[ResolvedGraph, dict[str, Any]]:
    """The graph and the input a dialogue starts with, for ``run`` and ``submit``
    alike: ``--input`` (a JSON object) with ``--topic`` set on the graph's topic-like
    field (``topic``, else ``motion``), checked against the graph's input schema by
    :func:`~dialogllm.core.validate_input` (what the runner checks) before anything
    is written. Bad input ends the command with exit 2, as does a ``--topic`` that
    would override the same field given in ``--input``.
    """
    from dialogllm.core import resolve_graph, topic_field, validate_input

    payload = output.parse_json_object(input, "--input") if input else {}
    resolved = output.guard(lambda: resolve_graph(graph))
    for key, value in _field_options(resolved, field_options).items():
        if key in payload:
            output.fail(
                EXIT_BAD_INPUT,
                f"--{key.replace('_', '-')} sets {key!r}, which --input gives too: "
                "give one of them",
            )
        payload[key] = value
    if topic is not None:
        key = topic_field(resolved.graph)
        if key in payload:
            output.fail(
                EXIT_BAD_INPUT,
                f"--topic sets {key!r}, which --input gives too: give one of them",
            )
        payload[key] = topic
    output.guard(lambda: validate_input(resolved.graph, payload))
    return resolved, payload


def _field_options(resolved: ResolvedGraph, args: Sequence[str]) -> dict[str, Any]:
    """``--max-turns 6`` / ``--max-turns=6`` options as input fields of the graph;
    a value is read as JSON when it is JSON (6, true, ["a"]), else as text."""
    props = resolved.graph.get_input_jsonschema().get("properties", {}) if args else {}
    fields: dict[str, Any] = {}
    rest = list(args)
    while rest:
        option = rest.pop(0)
        if not option.startswith("--") or len(option) < 3:
            output.fail(EXIT_BAD_INPUT, f"unexpected argument {option!r}")
        name, sep, value = option[2:].partition("=")
        key = name.replace("-", "_")
        if key not in props:
            known = ", ".join(f"--{k.replace('_', '-')}" for k in props) or "none"
            output.fail(
                EXIT_BAD_INPUT,
                f"no option {option.split('=')[0]!r} for graph {resolved.name!r}; "
                f"its input fields: {known}",
            )
        if not sep:
            if not rest:
                output.fail(EXIT_BAD_INPUT, f"{option} needs a value")
            value = rest.pop(0)
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


def resume(
    thread: Annotated[str, typer.Argument(help="The thread to continue.")],
    answer: Annotated[
        str | None, typer.Option(help="The person's answer, when it waits for one.")
    ] = None,
    value: Annotated[
        str | None,
        typer.Option(metavar="JSON", help="A resume value as JSON (not --answer)."),
    ] = None,
    graph: GraphOpt = None,
    interactive: InteractiveOpt = True,
) -> None:
    """Continue a thread after a crash, Ctrl-C, or with a person's answer.

    Example: dialogllm resume 4f1c... --answer "I would start with the tests."
    """
    from dialogllm.core import NOT_GIVEN

    if answer is not None and value is not None:
        output.fail(EXIT_BAD_INPUT, "give --answer or --value, not both")
    resume_value: object = NOT_GIVEN
    if answer is not None:
        resume_value = answer
    elif value is not None:
        try:
            resume_value = json.loads(value)
        except ValueError as exc:
            output.fail(EXIT_BAD_INPUT, f"--value is not valid JSON: {exc}")

    ask_person = interactive and _stdin_is_terminal()

    async def start(
        runner: DialogueRunner, progress: _Progress
    ) -> AsyncIterator[DialogueEvent]:
        now = await runner.state(thread, graph=graph)
        # the progress line goes on counting from what the thread already has
        progress.turns = len(now.transcript.turns)
        progress.tokens = now.tokens
        chosen = resume_value
        if chosen is NOT_GIVEN and ask_person and now.status == "interrupted":
            # A thread waiting for a person: show the question and ask it here.
            request = now.request
            if request is not None and request.prompt:
                asker = request.asked_by or "Question"
                output.out.print(
                    f"[bold]{_clean(asker)}[/bold]: {_clean(request.prompt)}"
                )
            chosen = await _ask(request.speaker if request else "a person")
        async for event in runner.stream_resume(thread, chosen, graph=graph):
            yield event

    _execute(start, thread, interactive=interactive)


def transcript(
    thread: Annotated[str, typer.Argument(help="The thread to export.")],
    format: Annotated[
        TranscriptFormat, typer.Option("--format", "-f", help="json or md.")
    ] = TranscriptFormat.md,
    graph: GraphOpt = None,
) -> None:
    """Print a thread's transcript as Markdown or JSON.

    Example: dialogllm transcript 4f1c... --format json > dialogue.json
    """
    from dialogllm.core import DialogueRunner

    async def export() -> str:
        async with DialogueRunner() as runner:
            found = await runner.transcript(thread, graph=graph)
        if format is TranscriptFormat.json:
            return found.to_json()
        return found.to_markdown()

    text = output.run_async(export, stopped="stopped")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def graphs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the graphs this directory knows (langgraph.json, registrations), each
    with its input schema.

    Example: dialogllm graphs --json
    """
    from dialogllm.core import default_registry, resolve_graph

    listed: list[dict[str, Any]] = []
    for name, ref in output.guard(default_registry.names).items():
        try:
            schema = resolve_graph(name).graph.get_input_jsonschema()
        except Exception as exc:  # one broken user graph must not hide the others
            detail = str(exc).splitlines()[0] if str(exc) else ""
            schema = {"error": f"{type(exc).__name__}: {detail}"}
        listed.append({"name": name, "ref": ref, "input_schema": schema})
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    for item in listed:
        output.out.print(f"{escape(item['name'])}  [dim]{escape(item['ref'])}[/dim]")
        if "error" in item["input_schema"]:
            problem = escape(str(item["input_schema"]["error"]))
            output.out.print(f"    [red]cannot load:[/red] {problem}")
            continue
        props = item["input_schema"].get("properties", {})
        required = set(item["input_schema"].get("required", []))
        for field_name, spec in props.items():
            kind = spec.get("type", "any")
            mark = "" if field_name in required else "?"
            output.out.print(f"    {escape(field_name)}{mark}: {escape(str(kind))}")


# --- threads ---------------------------------------------------------------------

threads_app = typer.Typer(help="Inspect dialogue threads.", no_args_is_help=True)


@asynccontextmanager
async def _saver() -> AsyncIterator[AsyncRedisSaver]:
    """A checkpointer on the configured Redis and key prefix, closed afterwards."""
    from dialogllm.checkpoint import AsyncRedisSaver
    from dialogllm.config import get_settings
    from dialogllm.redis import async_client

    client = async_client(decode=False)
    try:
        yield AsyncRedisSaver(client, key_prefix=get_settings().key_prefix)
    finally:
        await client.aclose()


@threads_app.command("list")
def threads_list(
    limit: Annotated[int, typer.Option(help="At most this many threads.")] = 50,
    as_json: output.JsonOpt = False,
) -> None:
    """Threads with checkpoints (a SCAN: admin use).

    Example: dialogllm threads list
    """

    async def go() -> int:
        async with _saver() as saver:
            rows = [
                await _thread_row(saver, thread_id)
                for thread_id in await saver.alist_threads(limit=limit)
            ]
        if as_json:
            output.print_json(rows)
            return EXIT_OK
        table = Table()
        table.add_column("thread", no_wrap=True)
        for name in ("graph", "topic", "step", "last checkpoint"):
            table.add_column(name, overflow="fold")
        columns = ("thread_id", "graph", "topic", "step", "updated")
        for row in rows:
            if "error" in row:  # a thread that cannot be read: say why, go on
                row["topic"] = f"unreadable: {row['error']}"
        output.print_table(table, ([row[k] for k in columns] for row in rows))
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


async def _thread_row(saver: AsyncRedisSaver, thread_id: str) -> dict[str, Any]:
    """One row of ``threads list``; a thread that cannot be read says why and does
    not hide the others."""
    from dialogllm.loader import META_GRAPH

    row: dict[str, Any] = {"thread_id": thread_id, "graph": None, "topic": None}
    try:
        tup = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
    except DialogueLLMError as exc:
        return {**row, "step": None, "updated": None, "error": str(exc)}
    if tup is None:
        return {**row, "step": None, "updated": None}
    values = tup.checkpoint.get("channel_values") or {}
    topic = values.get("topic") or values.get("motion")
    return {
        **row,
        "graph": tup.metadata.get(META_GRAPH) or tup.metadata.get("graph"),
        "topic": str(topic)[:60] if topic else None,
        "step": tup.metadata.get("step"),
        "updated": tup.checkpoint["ts"],
    }


@threads_app.command("show")
def threads_show(thread_id: str, as_json: output.JsonOpt = False) -> None:
    """A thread's latest checkpoint, channels and history length.

    Example: dialogllm threads show t-42
    """

    async def go() -> int:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        async with _saver() as saver:
            tup = await saver.aget_tuple(config)
            history = 0
            async for _ in saver.alist(config):
                history += 1
        if tup is None:
            output.fail(EXIT_THREAD, f"no checkpoints for thread {thread_id!r}")
        info = {
            "thread_id": thread_id,
            "checkpoint_id": tup.checkpoint["id"],
            "step": tup.metadata.get("step"),
            "checkpoints": history,
            "channels": sorted(tup.checkpoint["channel_values"]),
            "pending_writes": len(tup.pending_writes or []),
            "metadata": tup.metadata,
        }
        if as_json:
            output.print_json(info)
        else:
            for key, value in info.items():
                output.out.print(f"{key:>15}: {value}")
        return EXIT_OK

    raise typer.Exit(output.run_async(go))


# --- helpers --------------------------------------------------------------------


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _new_thread_id() -> str:
    import uuid

    return uuid.uuid4().hex  # the library's format (DialogueRunner), one format


def _clean(text: str) -> str:
    from dialogllm.llm import sanitize_text

    return escape(sanitize_text(text))


def _execute(start: Start, thread_id: str, *, interactive: bool) -> NoReturn:
    """Drive a dialogue to its end or first pause and exit with what happened; on a
    failure after steps were saved, say how to continue."""
    ask_person = interactive and _stdin_is_terminal()
    output.guard(output.setup_logging)
    progress = _Progress(piped=interactive and not ask_person)
    try:
        code = asyncio.run(_drive(start, thread_id, ask_person, progress))
    except KeyboardInterrupt:
        output.stop(
            f"\n[yellow]Stopped.[/yellow] Every finished step is saved; continue with:"
            f"\n  {output.command()} resume {escape(thread_id)}"
        )
    except DialogueLLMError as exc:
        code = exit_code_for(exc)
        # Hint only at a thread that exists: a run that failed before its first
        # checkpoint (Redis down) left nothing to resume.
        if code in (EXIT_LLM, EXIT_REDIS, EXIT_FAILED) and progress.saved:
            output.fail(
                code,
                f"{exc}\nEvery finished step is saved; once fixed, continue with:\n"
                f"  {output.command()} resume {thread_id}",
            )
        output.fail(code, str(exc))
    raise typer.Exit(code)


@dataclass
class _Progress:
    """What the live progress line shows."""

    began: float = field(default_factory=time.monotonic)
    turns: int = 0
    tokens: int = 0
    #: Whether the thread has a checkpoint (known after a failure): resumable.
    saved: bool = False
    #: Answers come from a piped standard input, one line per question.
    piped: bool = False

    def line(self) -> str:
        elapsed = time.monotonic() - self.began
        return f"turn {self.turns} · {self.tokens} tokens · {elapsed:.1f}s"


async def _tick(status: Status, progress: _Progress) -> None:
    """Keep the progress line's clock running while a turn is being generated."""
    while True:
        status.update(progress.line())
        await asyncio.sleep(0.5)


async def _drive(
    start: Start, thread_id: str, ask_person: bool, progress: _Progress
) -> int:
    from dialogllm.core import DialogueRunner

    async with DialogueRunner() as runner:
        try:
            return await _converse(runner, start, thread_id, ask_person, progress)
        except DialogueLLMError:
            progress.saved = await _has_checkpoint(runner, thread_id)
            raise


async def _has_checkpoint(runner: DialogueRunner, thread_id: str) -> bool:
    """Whether ``thread_id`` has a checkpoint; ``False`` when that cannot be told
    (Redis still down) within a few seconds."""
    root: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    try:
        found = await asyncio.wait_for(runner.checkpointer.aget_tuple(root), 3)
    except Exception:  # unknown counts as "no": never hint at a ghost
        return False
    return found is not None


async def _converse(
    runner: DialogueRunner,
    start: Start,
    thread_id: str,
    ask_person: bool,
    progress: _Progress,
) -> int:
    """Show the dialogue's turns until it ends or waits for a person who is not
    at this terminal; ask the one who is."""
    events = start(runner, progress)
    output.out.print(f"[dim]thread {escape(thread_id)}[/dim]")
    status = Status("starting…", console=output.err) if output.err.is_terminal else None
    ticker = asyncio.create_task(_tick(status, progress)) if status else None
    try:
        while True:
            waiting, result = await _show(events, progress, status)
            output.err.print(f"[dim]{progress.line()}[/dim]")
            if waiting is None:
                _print_outcome(result.values if result else {})
                output.out.print(
                    f"[green]done.[/green] transcript: "
                    f"{output.command()} transcript {escape(thread_id)} --format md"
                )
                return EXIT_OK
            request = waiting.request
            who = request.speaker if request else "a person"
            if ask_person:
                answer: str | None = await _ask(who)
            else:
                answer = await _piped_answer() if progress.piped else None
            if answer is None:
                output.out.print(
                    f"[yellow]waiting for {escape(who)}.[/yellow] answer with:\n"
                    f'  {output.command()} resume {escape(thread_id)} --answer "..."'
                )
                return EXIT_WAITING
            events = runner.stream_resume(thread_id, answer)
    finally:
        if ticker is not None:
            ticker.cancel()


async def _piped_answer() -> str | None:
    """The next non-empty line of a piped standard input (``printf 'a\\nb\\n' |
    dialogllm run interview``): one line per question; ``None`` at its end."""
    while True:
        line: str = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return None
        if line.strip():
            return line.rstrip("\n")


#: What the person just typed at the prompt: a terminal shows it already, so its turn
#: is not printed a second time.
_typed: ContextVar[str | None] = ContextVar("dialogllm_typed_answer", default=None)


async def _ask(who: str) -> str:
    """Ask the person at the terminal (again on an empty answer).

    The prompt blocks the event loop on purpose: nothing else runs while the
    dialogue waits for this person, and Ctrl-C then interrupts the prompt itself
    (in a worker thread, the first Ctrl-C was lost until Enter)."""
    # asyncio.run's own SIGINT handler only cancels the task, which cannot happen
    # while input() blocks: at the prompt, Ctrl-C raises KeyboardInterrupt at once
    main = threading.current_thread() is threading.main_thread()
    previous = (
        signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
    )
    try:
        answer = ""
        while not answer.strip():
            answer = Prompt.ask(f"[bold]{escape(who)}[/bold]", console=output.out)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    _typed.set(answer)
    return answer


async def _show(
    events: AsyncIterator[DialogueEvent], progress: _Progress, status: Status | None
) -> tuple[InterruptEvent | None, DialogueResult | None]:
    """Print the turns of one stream; return its interrupt (if any) and result."""
    from dialogllm.core import DoneEvent, InterruptEvent, TurnEvent

    waiting: InterruptEvent | None = None
    result: DialogueResult | None = None
    if status is not None:
        status.start()
    try:
        async for event in events:
            if isinstance(event, TurnEvent):
                entry = event.entry
                progress.turns += int(entry.is_turn)
                progress.tokens += entry.tokens
                if status is not None:
                    status.stop()
                if entry.kind == "human" and entry.text == _typed.get():
                    _typed.set(None)  # already on screen, after the prompt
                else:
                    print_entry(entry)
                if status is not None:
                    status.start()
            elif isinstance(event, InterruptEvent):
                waiting = event
            elif isinstance(event, DoneEvent):
                result = event.result
                progress.tokens = result.tokens  # with calls that wrote no entry
    finally:
        if status is not None:
            status.stop()
    return waiting, result


def print_entry(entry: TranscriptEntry) -> None:
    """Show one transcript entry on stdout as a dialogue goes (``Speaker: text``;
    entries that are not turns, such as a moderator's notes, in italics)."""
    style = "bold" if entry.is_turn else "italic"
    who = _clean(entry.speaker)
    output.out.print(f"[{style}]{who}[/{style}]: {_clean(entry.text)}")


def _print_outcome(values: dict[str, Any]) -> None:
    for key in ("conclusion", "verdict", "analysis", "stop_reason"):
        value = values.get(key)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            output.out.print(f"[bold]{key}:[/bold] {_clean(text)}")
