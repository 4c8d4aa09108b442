"""A redis-server the test starts itself: on a free port, in a temp dir, killable."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` with AOF (``appendfsync always``) in ``workdir``; optionally
    TLS-only (``tls=(cert, key)``)."""

    def __init__(self, workdir: Path, *, tls: tuple[Path, Path] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=none"
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        args = [
            "redis-server",
            "--dir",
            str(self.workdir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--bind",
            "127.0.0.1",
        ]
        if self.tls:
            cert, key = self.tls
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            args += ["--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        return args

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_timeout=1)
                client.ping()
                client.close()
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, only what the AOF already holds survives."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
