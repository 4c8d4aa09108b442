"""``dialogllm serve``: LangGraph's HTTP API for the graphs of a ``langgraph.json``.

With nothing configured it serves ``./langgraph.json`` on 127.0.0.1:2024 (the port
``langgraph dev`` uses), on the embedded Redis, with a worker in the same process.
``--no-worker`` serves the API only, for deployments that run ``dialogllm worker``
elsewhere on the same Redis.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape

from dialogllm.cli import output
from dialogllm.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK

__all__ = ["serve"]

DEFAULT_PORT = 2024


def _port_taken(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as uvicorn binds: connections of a server that just stopped or crashed
        # (TIME_WAIT) do not hold the port, a listening server does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_config(config: Path) -> None:
    """Refuse, before serving, a ``langgraph.json`` the server would fail on:
    one ``error:`` line naming the key, exit 2, instead of a start-up traceback."""
    from dialogllm.errors import ConfigError, GraphNotFoundError
    from dialogllm.loader import LangGraphConfig
    from dialogllm.server.webhooks import WebhookConfig

    try:
        WebhookConfig.from_config(LangGraphConfig.read(config).webhooks)
    except (ConfigError, GraphNotFoundError) as exc:
        output.fail(EXIT_BAD_INPUT, str(exc))


def serve(
    config: Annotated[
        Path,
        typer.Option(metavar="FILE", help="The langgraph.json whose graphs to serve."),
    ] = Path("langgraph.json"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    worker: Annotated[
        bool, typer.Option(help="Run a worker in this process (like langgraph dev).")
    ] = True,
    concurrency: Annotated[int, typer.Option(help="Runs at once (worker).")] = 4,
    queue: Annotated[str, typer.Option(help="The queue runs go to.")] = "default",
) -> None:
    """Serve LangGraph's HTTP API (langgraph-sdk, RemoteGraph, agent UIs).

    Set DIALOGLLM_SERVER_API_KEY to require the header x-api-key.

    Example: dialogllm serve --port 2024
    """
    if not config.is_file():
        output.fail(EXIT_BAD_INPUT, f"no graphs to serve: {config} does not exist")
    _check_config(config)
    if not 0 < port < 65536:
        output.fail(EXIT_BAD_INPUT, f"--port must be 1 to 65535, got {port}")
    if concurrency < 1:
        output.fail(EXIT_BAD_INPUT, "--concurrency must be >= 1")
    if _port_taken(host, port):
        output.fail(
            EXIT_BAD_INPUT,
            f"port {port} on {host} is taken (another server?); choose one with --port",
        )
    api_key = os.environ.get("DIALOGLLM_SERVER_API_KEY") or None
    output.guard(output.setup_logging)

    import uvicorn

    from dialogllm.server import create_app

    app = create_app(
        config, queue=queue, worker=worker, concurrency=concurrency, api_key=api_key
    )
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    output.err.print(f"serving {escape(str(config))} at {url}")
    output.err.print(f"watch and join dialogues: open {url}/ in a browser")
    output.err.print(f"API docs: {url}/docs")
    output.err.print(
        f'connect: from langgraph_sdk import get_client; get_client(url="{url}")'
    )
    if not api_key and not _is_loopback(host):
        output.err.print(
            "[yellow]warning:[/yellow] listening beyond this machine without "
            "DIALOGLLM_SERVER_API_KEY: anyone who can reach it can run graphs"
        )
    server = _graceful_server()(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    output.guard(server.run, stopped=None)
    raise typer.Exit(EXIT_OK)


def _graceful_server() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, ending with exit 0 after a graceful shutdown on SIGINT or
        SIGTERM (as ``dialogllm worker`` does) instead of raising the signal again."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return GracefulServer
