"""Server benchmark: ``dialogllm serve`` against ``langgraph dev`` and Aegra.

The same one-node no-op graph, served by each server, driven by the real
``langgraph-sdk`` client (``get_client``), side by side in one run:

* ours: ``dialogllm serve`` (its in-process worker, concurrency 10) for one API
  process; ``dialogllm serve --no-worker`` x4 plus ``dialogllm worker`` x2 for four,
  on a private ``redis-server`` this script starts (free port, no persistence);
* ``langgraph dev`` (langgraph-api's in-memory runtime, one process only): from
  ``/work/lgdev/.venv`` or ``$LGDEV``, else a venv this script makes in
  ``benchmarks/.peers/lgdev``;
* Aegra (PyPI ``aegra-api``/``aegra-cli`` 0.11.0, Python 3.12) in
  ``benchmarks/.peers/aegra`` (made on first run), ``AUTH_TYPE=noop``, on the local
  PostgreSQL (127.0.0.1:5432, a database of its own, dropped at the end); one or
  four ``aegra serve`` processes on that database.

With four API processes each client talks to one of them (round robin over the
clients): there is no load balancer in between. A server that cannot be installed
or started is skipped, and the reason printed.

Measured per server: create-run latency p50/p99 (``runs.create`` on an existing
thread), create -> first SSE ``values`` event p50/p99 (``runs.stream``), no-op runs
completed per second with 50 concurrent clients (``threads.create`` +
``runs.wait``) with 1 and 4 API processes, the servers' memory (RSS) and their
store's growth after N ``threads.create`` (10,000; ``--quick``: 500), what each
leaves in its store at the end (nothing to expire for threads: they are kept), and
whether a thread survives a restart of the server.

    .venv/bin/python benchmarks/server_bench.py            # full
    .venv/bin/python benchmarks/server_bench.py --quick    # a few minutes

Prints a table, ratios to the best peer, and ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / ".peers"
AEGRA_VENV = PEERS / "aegra"
AEGRA_VERSION = "0.11.0"
LGDEV_VENV = PEERS / "lgdev"
LGDEV_PINS = ["langgraph-cli[inmem]==0.4.40", "langgraph-api==0.16.7"]
PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = f"aegra_bench_{os.getpid()}"
GRAPH = """
from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    n: int


def one(state: State) -> State:
    return {"n": state.get("n", 0) + 1}


builder = StateGraph(State)
builder.add_node("one", one)
builder.add_edge(START, "one")
builder.add_edge("one", END)
graph = builder.compile()
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Skip(Exception):
    """A server that cannot be installed or run here (the message says why)."""


# --- servers --------------------------------------------------------------------------


class Server:
    """One server under test: how to start n API processes, its store's size."""

    name = ""
    max_processes = 4
    health = "/ok"

    def __init__(self, app: Path) -> None:
        self.app = app
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs: list[Path] = []

    def prepare(self) -> None: ...

    def commands(self, processes: int) -> list[tuple[list[str], dict[str, str], bool]]:
        """(argv, env, is_api) per process; API processes get ``{port}``."""
        raise NotImplementedError

    def start(self, processes: int) -> None:
        self.stop()
        for argv, env, is_api in self.commands(processes):
            port = free_port()
            argv = [a.replace("{port}", str(port)) for a in argv]
            log = Path(tempfile.mkstemp(prefix=f"server-bench-{self.name}-")[1])
            self.logs.append(log)
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.app,
                    env={**os.environ, **env},
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.procs.append(proc)
            if is_api:
                url = f"http://127.0.0.1:{port}"
                self.urls.append(url)
                self._wait_ok(url, proc, log)  # one at a time: migrations, caches

    def _wait_ok(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:]
                raise Skip(f"{self.name} exited at start: {tail}")
            try:
                if httpx.get(f"{url}{self.health}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise Skip(f"{self.name} did not answer {self.health} within 180 s")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs, self.urls = [], []

    def rss_bytes(self) -> int:
        """Resident memory of every process of this server (children included)."""
        total = 0
        for proc in self.procs:
            try:
                parent = psutil.Process(proc.pid)
                for p in [parent, *parent.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def store_bytes(self) -> int | None:
        """Bytes in the server's store (None: it has none besides its memory)."""
        return None

    def store_items(self) -> str:
        return "-"

    def cleanup(self) -> None:
        self.stop()


class Ours(Server):
    name = "ours"

    def prepare(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.redis_servers import RedisServer

        self.workdir = Path(tempfile.mkdtemp(prefix="server-bench-redis-"))
        self.redis = RedisServer(self.workdir, aof=False)
        self.redis.start()
        self.env = {
            "DIALOGLLM_REDIS_URL": self.redis.url_for(0),
            "DIALOGLLM_KEY_PREFIX": "bench",
            "DIALOGLLM_LOG_LEVEL": "warning",
        }
        self.dialogllm = str(Path(sys.executable).with_name("dialogllm"))

    def commands(self, processes: int) -> list[tuple[list[str], dict[str, str], bool]]:
        serve = [self.dialogllm, "serve", "--config", "langgraph.json"]
        serve += ["--port", "{port}"]
        if processes == 1:
            return [([*serve, "--concurrency", "10"], self.env, True)]
        api = [([*serve, "--no-worker"], self.env, True)] * processes
        worker = [self.dialogllm, "worker", "--concurrency", "10"]
        return api + [(worker, self.env, False)] * 2

    def _client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis.url_for(0))

    def store_bytes(self) -> int | None:
        client = self._client()
        try:
            stats = client.memory_stats()
            return int(stats["total.allocated"]) - int(stats["clients.normal"])
        finally:
            client.close()

    def store_items(self) -> str:
        client = self._client()
        try:
            return f"{client.dbsize():,} keys"
        finally:
            client.close()

    def cleanup(self) -> None:
        super().cleanup()
        self.redis.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class OursApart(Ours):
    """Ours with one API process and its worker in a process of its own
    (``dialogllm serve --no-worker`` + ``dialogllm worker``): the graph's steps no
    longer share the API process's interpreter lock."""

    name = "ours, worker apart"
    max_processes = 1  # the 4-process figure is the ``ours`` row's

    def commands(self, processes: int) -> list[tuple[list[str], dict[str, str], bool]]:
        serve = [self.dialogllm, "serve", "--config", "langgraph.json"]
        serve += ["--port", "{port}", "--no-worker"]
        worker = [self.dialogllm, "worker", "--concurrency", "10"]
        return [(serve, self.env, True), (worker, self.env, False)]


class LangGraphDev(Server):
    name = "langgraph dev"
    max_processes = 1  # its in-memory runtime lives in one process

    def prepare(self) -> None:
        candidates = [os.environ.get("LGDEV"), "/work/lgdev/.venv", str(LGDEV_VENV)]
        for root in filter(None, candidates):
            if (Path(root) / "bin" / "langgraph").exists():
                self.binary = str(Path(root) / "bin" / "langgraph")
                return
        print(f"installing langgraph dev into {LGDEV_VENV} ...", file=sys.stderr)
        try:
            venv.create(LGDEV_VENV, with_pip=True)
            pip = [str(LGDEV_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, *LGDEV_PINS], check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            raise Skip(f"langgraph dev could not be installed: {exc}") from None
        self.binary = str(LGDEV_VENV / "bin" / "langgraph")

    def commands(self, processes: int) -> list[tuple[list[str], dict[str, str], bool]]:
        argv = [self.binary, "dev", "--port", "{port}", "--no-browser", "--no-reload"]
        env = {"LANGGRAPH_NO_VERSION_CHECK": "true", "LOG_LEVEL": "WARNING"}
        return [(argv, env, True)]


class Aegra(Server):
    name = "Aegra"
    health = "/health"  # Aegra has no /ok

    def prepare(self) -> None:
        python = AEGRA_VENV / "bin" / "python"
        if not (AEGRA_VENV / "bin" / "aegra").exists():
            # a pyenv shim named python3.12 may not run (3.12 not selected): the
            # first candidate that does
            candidates = [
                shutil.which("python3.12"),
                *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")),
            ]
            py312 = next(
                (
                    c
                    for c in candidates
                    if c
                    and subprocess.run(
                        [c, "-c", "pass"], capture_output=True, check=False
                    ).returncode
                    == 0
                ),
                None,
            )
            if py312 is None:
                raise Skip("Aegra needs Python 3.12, and there is none here")
            print(f"installing Aegra {AEGRA_VERSION} into {AEGRA_VENV} ...")
            try:
                subprocess.run([py312, "-m", "venv", str(AEGRA_VENV)], check=True)
                subprocess.run(
                    [
                        str(python),
                        *("-m", "pip", "install", "-q"),
                        f"aegra-api=={AEGRA_VERSION}",
                        f"aegra-cli=={AEGRA_VERSION}",
                    ],
                    check=True,
                )
            except (subprocess.CalledProcessError, OSError) as exc:
                raise Skip(f"Aegra could not be installed: {exc}") from None
        try:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {PG_DB}")
        except Exception as exc:
            raise Skip(f"no PostgreSQL for Aegra at {PG_DSN}: {exc}") from None
        (self.app / "aegra.json").write_text(
            json.dumps({"graphs": {"noop": "./graph.py:graph"}})
        )
        self.env = {
            "DATABASE_URL": PG_DSN.rsplit("/", 1)[0] + f"/{PG_DB}",
            "AUTH_TYPE": "noop",
            "LOG_LEVEL": "WARNING",
            "AEGRA_CONFIG": str(self.app / "aegra.json"),
        }
        self.binary = str(AEGRA_VENV / "bin" / "aegra")

    def commands(self, processes: int) -> list[tuple[list[str], dict[str, str], bool]]:
        argv = [self.binary, "serve", "--host", "127.0.0.1", "--port", "{port}"]
        argv += ["-c", str(self.app / "aegra.json")]
        return [(argv, self.env, True)] * processes

    def _query(self, sql: str) -> list[Any]:
        import psycopg

        dsn = PG_DSN.rsplit("/", 1)[0] + f"/{PG_DB}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())

    def store_bytes(self) -> int | None:
        return int(self._query(f"SELECT pg_database_size('{PG_DB}')")[0][0])

    def store_items(self) -> str:
        rows = self._query(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables "
            "WHERE n_live_tup > 0 ORDER BY n_live_tup DESC LIMIT 4"
        )
        return ", ".join(f"{n:,} {t}" for t, n in rows) or "0 rows"

    def cleanup(self) -> None:
        super().cleanup()
        try:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        except Exception as exc:  # pragma: no cover - reported, not fatal
            print(f"could not drop {PG_DB}: {exc}", file=sys.stderr)


SERVERS: dict[str, type[Server]] = {
    "ours": Ours,
    "ours-apart": OursApart,
    "lgdev": LangGraphDev,
    "aegra": Aegra,
}


# --- measurements ---------------------------------------------------------------------


async def latencies(url: str, samples: int) -> dict[str, float]:
    """create-run and create -> first ``values`` event, sequentially, ms."""
    from langgraph_sdk import get_client

    client = get_client(url=url)
    create: list[float] = []
    first: list[float] = []
    for i in range(samples + 3):  # three warm-up rounds
        thread = await client.threads.create()
        t = time.perf_counter()
        run = await client.runs.create(thread["thread_id"], "noop", input={"n": i})
        took = (time.perf_counter() - t) * 1000
        await client.runs.join(thread["thread_id"], run["run_id"])
        thread = await client.threads.create()
        t = time.perf_counter()
        seen = None
        async for part in client.runs.stream(
            thread["thread_id"], "noop", input={"n": i}, stream_mode="values"
        ):
            if part.event == "values" and seen is None:
                seen = (time.perf_counter() - t) * 1000
        if i >= 3:
            create.append(took)
            if seen is not None:
                first.append(seen)
    return {
        "create_p50_ms": pct(create, 0.5),
        "create_p99_ms": pct(create, 0.99),
        "first_values_p50_ms": pct(first, 0.5),
        "first_values_p99_ms": pct(first, 0.99),
    }


async def throughput(urls: list[str], runs: int, clients: int) -> float:
    """No-op runs completed per second: ``clients`` loops of threads.create +
    runs.wait, each client on one of ``urls``."""
    from langgraph_sdk import get_client

    sdk = [get_client(url=u) for u in urls]
    todo = iter(range(runs))
    done = 0

    async def loop(k: int) -> None:
        nonlocal done
        client = sdk[k % len(sdk)]
        for i in todo:
            thread = await client.threads.create()
            result = await client.runs.wait(thread["thread_id"], "noop", input={"n": i})
            if isinstance(result, dict) and result.get("n") == i + 1:
                done += 1

    warm = iter(range(len(sdk) * 4))  # every API process and worker warm first
    todo, real = warm, todo
    await asyncio.gather(*(loop(k) for k in range(len(sdk) * 4)))
    todo, done = real, 0
    t = time.perf_counter()
    await asyncio.gather(*(loop(k) for k in range(clients)))
    elapsed = time.perf_counter() - t
    if done != runs:
        raise RuntimeError(f"only {done} of {runs} runs answered their values")
    return runs / elapsed


async def many_threads(url: str, n: int) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=url)
    todo = iter(range(n))

    async def loop() -> None:
        for i in todo:
            await client.threads.create(metadata={"i": i})

    await asyncio.gather(*(loop() for _ in range(20)))


async def survives_restart(server: Server) -> bool:
    from langgraph_sdk import get_client

    thread = await get_client(url=server.urls[0]).threads.create()
    server.stop()
    server.start(1)
    try:
        await get_client(url=server.urls[0]).threads.get(thread["thread_id"])
        return True
    except Exception:
        return False


async def measure(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"server": server.name}
    server.start(1)
    print(f"  {server.name}: latencies ...", file=sys.stderr)
    out.update(await latencies(server.urls[0], args.samples))
    print(f"  {server.name}: throughput, 1 API process ...", file=sys.stderr)
    out["runs_per_s_1p"] = await throughput(server.urls, args.runs, args.clients)
    print(f"  {server.name}: {args.threads:,} threads ...", file=sys.stderr)
    rss0, store0 = server.rss_bytes(), server.store_bytes()
    await many_threads(server.urls[0], args.threads)
    await asyncio.sleep(2)
    rss1, store1 = server.rss_bytes(), server.store_bytes()
    out["rss_growth_bytes"] = rss1 - rss0
    out["rss_after_bytes"] = rss1
    out["store_growth_bytes"] = None if store0 is None else (store1 or 0) - store0
    out["survives_restart"] = await survives_restart(server)
    out["left_store_bytes"] = server.store_bytes()
    out["left_items"] = server.store_items()
    if server.max_processes >= 4:
        print(f"  {server.name}: throughput, 4 API processes ...", file=sys.stderr)
        server.start(4)
        out["runs_per_s_4p"] = await throughput(server.urls, args.runs, args.clients)
    server.stop()
    return out


# --- report ---------------------------------------------------------------------------

COLUMNS = [
    ("server", "server", "{}"),
    ("create_p50_ms", "create p50 ms", "{:.1f}"),
    ("create_p99_ms", "create p99 ms", "{:.1f}"),
    ("first_values_p50_ms", "first values p50 ms", "{:.1f}"),
    ("first_values_p99_ms", "first values p99 ms", "{:.1f}"),
    ("runs_per_s_1p", "runs/s 1 API", "{:,.1f}"),
    ("runs_per_s_4p", "runs/s 4 API", "{:,.1f}"),
    ("rss_after_bytes", "RSS after threads", "{:,}"),
    ("rss_growth_bytes", "RSS growth", "{:,}"),
    ("store_growth_bytes", "store growth", "{:,}"),
    ("left_items", "left in store", "{}"),
    ("survives_restart", "survives restart", "{}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(c[1] for c in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Ours / best peer per figure (latency: < 1 is better; runs/s: > 1 is better),
    for each of our rows (the ``ours, worker apart`` figures get that suffix)."""
    peers = [r for r in rows if not r["server"].startswith("ours") and "error" not in r]
    out: dict[str, float] = {}
    for ours in rows:
        if not ours["server"].startswith("ours") or "error" in ours or not peers:
            continue
        suffix = ours["server"][len("ours") :].replace(", ", "_").replace(" ", "_")
        for key in ("create_p50_ms", "create_p99_ms", "first_values_p50_ms"):
            best = min((p[key] for p in peers if p.get(key) is not None), default=None)
            if best and ours.get(key) is not None:
                out[key + suffix] = ours[key] / best
        for key in ("runs_per_s_1p", "runs_per_s_4p"):
            best = max((p[key] for p in peers if p.get(key) is not None), default=None)
            if best and ours.get(key):
                out[key + suffix] = ours[key] / best
    return out


async def run_all(args: argparse.Namespace) -> None:
    app = Path(tempfile.mkdtemp(prefix="server-bench-app-"))
    (app / "graph.py").write_text(GRAPH)
    (app / "langgraph.json").write_text(
        json.dumps({"dependencies": ["."], "graphs": {"noop": "./graph.py:graph"}})
    )
    rows: list[dict[str, Any]] = []
    try:
        for key in args.servers:
            server = SERVERS[key](app)
            print(f"measuring {server.name} ...", file=sys.stderr)
            try:
                server.prepare()
                rows.append(await measure(server, args))
            except Skip as exc:
                print(f"  skipped {server.name}: {exc}", file=sys.stderr)
                rows.append({"server": server.name, "error": str(exc)})
            finally:
                server.cleanup()
    finally:
        shutil.rmtree(app, ignore_errors=True)
    print(
        f"\nServer benchmark ({'quick' if args.quick else 'full'}; {args.samples} "
        f"latency samples, {args.runs} runs with {args.clients} clients, "
        f"{args.threads:,} threads)"
    )
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}"
    )
    print()
    print(table([r for r in rows if "error" not in r]))
    for row in rows:
        if "error" in row:
            print(f"\n{row['server']}: skipped: {row['error']}")
    found = ratios(rows)
    if found:
        print(
            "\nours / best peer: " + ", ".join(f"{k} {v:.2f}" for k, v in found.items())
        )
    print(
        json.dumps(
            {"bench": "server", "quick": args.quick, "servers": rows, "ratios": found}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--servers", nargs="+", default=list(SERVERS), choices=list(SERVERS)
    )
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    args.samples = args.samples or (30 if args.quick else 200)
    args.runs = args.runs or (200 if args.quick else 1000)
    args.threads = args.threads or (500 if args.quick else 10_000)
    asyncio.run(run_all(args))


if __name__ == "__main__":
    main()
