"""``dialogllm serve`` refuses a port another server listens on, and takes one that
only holds closed connections (TIME_WAIT, after a crash or a stop) as a restart
must."""

from __future__ import annotations

import socket

from dialogllm.cli.serve import _port_taken


def _listening() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_a_port_another_server_listens_on_is_taken() -> None:
    with _listening() as server:
        assert _port_taken("127.0.0.1", server.getsockname()[1])


def test_a_port_left_with_closed_connections_is_free_for_a_restart() -> None:
    server = _listening()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end waits in TIME_WAIT
    server.close()
    client.close()

    assert not _port_taken("127.0.0.1", port)
