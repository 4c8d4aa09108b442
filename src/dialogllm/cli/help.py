"""How ``dialogllm`` prints its help and its usage errors: plain text, as a person
reads it on a terminal, in a pipe or in docs/cli.md.

Every command and group of the app is built from :class:`Command` and :class:`Group`
(:func:`use_plain_help` sets them on a Typer app and its sub-apps). The usage names
each argument (``dialogllm run [OPTIONS] GRAPH``), an option shows the kind of value
it takes (``--topic TEXT``), a flag its two forms (``--wait/--no-wait``), and a group
lists each command with its first sentence, whole. ``run`` and ``submit`` are
:class:`GraphCommand`: given a graph (``dialogllm run debate --help``), their help
lists the graph's input fields as the options they are (``--rounds INTEGER``). A
usage error (an unknown option, a missing argument) is one ``error:`` line, exit 2.

The rule: no help text is cut at a character count or shows a placeholder of the
help machinery (``{graph}``, ``<bool>``); what a person reads is what they type.

>>> from dialogllm.cli.help import first_sentence
>>> first_sentence("Cancel a run. Example: dialogllm cancel RUN_ID")
'Cancel a run.'
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any, NoReturn, get_args, get_origin

import typer
from rich.markup import escape
from typer._click.core import Context, Parameter  # typer 0.29 vendors click
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from dialogllm.cli import output
from dialogllm.cli.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED

__all__ = ["Command", "GraphCommand", "Group", "first_sentence", "use_plain_help"]

#: Where :class:`GraphCommand` keeps the graph named on a ``--help`` command line.
_GRAPH_KEY = "dialogllm.help.graph"
_SENTENCE = re.compile(r"^(.*?[.!?])(?=\s|$)", re.DOTALL)
_METAVARS: dict[object, str] = {str: "TEXT", int: "INTEGER", float: "NUMBER"}
_JSON_METAVARS = {"string": "TEXT", "integer": "INTEGER", "number": "NUMBER"}


def first_sentence(text: str | None) -> str:
    """The first sentence of ``text``'s first paragraph, on one line and whole (the
    whole paragraph when it has no sentence end): what a group lists a command by.

    >>> first_sentence("List the graphs this directory knows (langgraph.json),\\n"
    ...                "each with its input schema.\\n\\nExample: dialogllm graphs")
    'List the graphs this directory knows (langgraph.json), each with its input schema.'
    """
    paragraph = (text or "").strip().split("\n\n")[0]
    line = " ".join(paragraph.split())
    found = _SENTENCE.match(line)
    return found.group(1) if found else line


def _metavar(param: TyperArgument | TyperOption) -> str:
    """What a person types for ``param``'s value: its own ``metavar``, the choices
    (``[json|md]``) or the kind of value (``TEXT``, ``INTEGER``, ``NUMBER``)."""
    if param.metavar:
        return param.metavar
    descriptor = param.type_descriptor
    if descriptor.choices is not None:
        values = (c.value if isinstance(c, Enum) else c for c in descriptor.choices)
        return "[" + "|".join(str(v) for v in values) + "]"
    annotation: object = descriptor.annotation
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    return _METAVARS.get(annotation, "VALUE")


def _argument_name(param: Parameter) -> str:
    name = param.metavar or str(param.name).upper()
    return name if param.required else f"[{name}]"


def _option_name(param: TyperOption) -> str:
    """``--topic TEXT``, ``--format, -f [json|md]``, ``--wait/--no-wait``."""
    names = ", ".join(param.opts)
    if param.secondary_opts:
        return f"{names}/{', '.join(param.secondary_opts)}"
    if param.is_flag or param.count:
        return names
    return f"{names} {_metavar(param)}"


def _option_help(param: TyperOption) -> str:
    """The option's help, then its default (a flag pair: the form that is on)."""
    text = param.help or ""
    default: Any = param.default
    if param.required:
        return f"{text}  [required]".strip()
    if param.secondary_opts:
        shown = param.opts[0] if default else param.secondary_opts[0]
        return f"{text}  [default: {shown}]".strip()
    if param.is_flag or default is None or callable(default) or default == []:
        return text
    value = default.value if isinstance(default, Enum) else default
    return f"{text}  [default: {value}]".strip()


def _write_params(
    command: TyperCommand | TyperGroup, ctx: Context, formatter: HelpFormatter
) -> None:
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, TyperArgument):
            arguments.append((_argument_name(param), param.help or ""))
        elif isinstance(param, TyperOption):
            options.append((_option_name(param), _option_help(param)))
        else:  # the help option click adds itself
            names = ", ".join(param.opts)
            options.append((names, "Show this message and exit."))
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    if options:
        with formatter.section("Options"):
            formatter.write_dl(options)


def _write_paragraphs(text: str | None, formatter: HelpFormatter) -> None:
    for paragraph in inspect.cleandoc(text or "").split("\n\n"):
        if not paragraph.strip():
            continue
        formatter.write_paragraph()
        with formatter.indentation():
            if paragraph.startswith("Example:"):
                for line in paragraph.splitlines():
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")
            else:
                formatter.write_text(paragraph)


class Command(TyperCommand):
    """A command whose help reads as the docs show it (see the module)."""

    def __init__(self, name: str | None, **attrs: Any) -> None:
        attrs["rich_markup_mode"] = None
        super().__init__(name, **attrs)
        if not self.short_help:
            self.short_help = first_sentence(self.help)
        for param in self.params:  # errors name it as the usage does: 'GRAPH'
            if isinstance(param, TyperArgument) and not param.metavar:
                param.metavar = str(param.name).upper()

    def format_help_text(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The help's paragraphs, wrapped to the terminal; an ``Example:`` one as
        written, so that the command in it can be copied whole."""
        _write_paragraphs(self.help, formatter)

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """``[OPTIONS] GRAPH``: the arguments by name, as a person types them."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_argument_name(param))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The arguments and the options, each with what it takes."""
        _write_params(self, ctx, formatter)


class GraphCommand(Command):
    """``run`` and ``submit``: every input field of the graph is an option too, and
    the help given a graph (``dialogllm run debate --help``) lists them."""

    def __init__(self, name: str | None, **attrs: Any) -> None:
        settings = dict(attrs.get("context_settings") or {})
        settings.update(allow_extra_args=True, ignore_unknown_options=True)
        attrs["context_settings"] = settings
        super().__init__(name, **attrs)

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """``[OPTIONS] GRAPH [--FIELD VALUE]...``"""
        return [*super().collect_usage_pieces(ctx), "[--FIELD VALUE]..."]

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """Note the graph of a command line that asks for help (``--help`` before
        or after it), so that the help can list its fields."""
        if any(arg in ctx.help_option_names for arg in args):
            try:
                opts, _, _ = self.make_parser(ctx).parse_args(args=list(args))
            except UsageError:
                opts = {}
            ctx.meta[_GRAPH_KEY] = opts.get("graph")
        return super().parse_args(ctx, args)

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The command's options, then the fields of the graph named (if any)."""
        super().format_options(ctx, formatter)
        graph = ctx.meta.get(_GRAPH_KEY)
        if not isinstance(graph, str):
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(
                    "Each graph's input fields are options too; "
                    f"'{ctx.command_path} GRAPH --help' lists them."
                )
            return
        title, rows = graph_field_options(graph)
        with formatter.section(title):
            formatter.write_dl(rows)


def graph_field_options(graph: str) -> tuple[str, list[tuple[str, str]]]:
    """A help section for ``graph``'s input fields: its title and one row per
    field (``--rounds INTEGER``, its description, bounds and default); when the
    graph cannot be loaded, one row that says why.

    >>> graph_field_options("debate")[1][0]                    # doctest: +SKIP
    ('--motion TEXT', '3 to 300 characters; --topic sets it  [required]')
    """
    from dialogllm.core import resolve_graph, topic_field

    try:
        resolved = resolve_graph(graph)
        schema = resolved.graph.get_input_jsonschema()
        topic = topic_field(resolved.graph)
    except Exception as exc:  # a broken user graph: say why, as `graphs` does
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"Fields of graph {graph!r}", [("(cannot load)", detail)]
    required = set(schema.get("required", []))
    rows: list[tuple[str, str]] = []
    for key, spec in schema.get("properties", {}).items():
        kind = _JSON_METAVARS.get(str(spec.get("type")), "JSON")
        notes = [_bounds(spec)] if _bounds(spec) else []
        if "enum" in spec:
            kind = "[" + "|".join(str(v) for v in spec["enum"]) + "]"
        if key == topic and key != "topic":
            notes.append("--topic sets it")
        described = str(spec.get("description") or "").strip().rstrip(".")
        text = "; ".join(notes)
        if described:
            text = f"{described} ({text})" if text else described
        if key in required:
            text += "  [required]"
        elif spec.get("default") is not None:
            text += f"  [default: {spec['default']}]"
        rows.append((f"--{key.replace('_', '-')} {kind}", text.strip()))
    return f"Fields of graph {resolved.name!r}", rows


def _bounds(spec: dict[str, Any]) -> str:
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None and high is not None:
        return f"{low} to {high}"
    shortest, longest = spec.get("minLength"), spec.get("maxLength")
    if shortest is not None and longest is not None:
        return f"{shortest} to {longest} characters"
    return ""


class Group(TyperGroup):
    """A group whose help lists each command by its first sentence; as the app's
    root, it prints a usage error as one ``error:`` line and exits 2."""

    def __init__(self, **attrs: Any) -> None:
        attrs["rich_markup_mode"] = None
        super().__init__(**attrs)
        if not self.short_help:
            self.short_help = first_sentence(self.help)

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """``[OPTIONS] COMMAND [ARGS]...``"""
        pieces = [self.options_metavar] if self.options_metavar else []
        return [*pieces, self.subcommand_metavar]

    def format_help_text(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The group's help, as :meth:`Command.format_help_text` writes it."""
        _write_paragraphs(self.help, formatter)

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The group's options, then its commands."""
        _write_params(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; in standalone mode, end the process with the
        command's exit code, a usage error as one ``error:`` line and exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except NoArgsIsHelpError as exc:  # `dialogllm` alone: its help
            typer.echo(exc.format_message())
            sys.exit(0)
        except UsageError as exc:
            _usage_error(exc)
        except typer.Abort:
            output.err.print("aborted")
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: UsageError) -> NoReturn:
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
    output.err.print(f"[bold red]error:[/bold red] {escape(message + where)}")
    sys.exit(EXIT_BAD_INPUT)


def use_plain_help(app: typer.Typer) -> None:
    """Build every command of ``app`` and of its sub-apps with :class:`Command`
    (unless given another class) and every group with :class:`Group`."""
    app.info.cls = Group
    app.rich_markup_mode = None
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):  # typer's default
            command.cls = Command
    for group in app.registered_groups:
        group.cls = Group
        if group.typer_instance is not None:
            use_plain_help(group.typer_instance)
