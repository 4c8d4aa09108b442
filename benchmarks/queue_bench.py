"""Queue benchmark: DialogueLLM's queue against arq, saq, rq and taskiq-redis.

Every system runs the same no-op job on the same private ``redis-server`` (started by
this script on a free port, no persistence; each system in a database of its own), with
its own worker CLI and defaults:

* ours: ``python -m dialogllm.queue`` (concurrency 10), the job a plain function,
* arq 0.28 (needs redis<6: installed on first run into ``benchmarks/.peers/arq``, its
  part runs as a subprocess of that virtual environment), ``arq`` CLI (max_jobs 10),
* saq: ``saq`` CLI (concurrency 10),
* rq: ``rq worker`` (one job at a time, a fork per job),
* taskiq-redis: ``RedisStreamBroker`` with the ``taskiq worker`` CLI.

Measured per system: enqueue latency p50/p99 (no worker running), enqueue->start
latency p50/p99 at a steady 100 jobs/s (one worker process), throughput of N queued
jobs with 1 and with 4 worker processes (first start to last finish), and what each
leaves in Redis after its queue drained (keys and bytes, bookkeeping of the benchmark
excluded). The job itself does one pipelined round trip to record its start.

Ours is measured twice more: the whole worker path with a one-node LangGraph graph
and the Redis checkpointer, against running the same graph in-process with the same
checkpointer (the overhead of going through the queue), and Redis memory after many
no-op runs once their retention passed (back to the baseline?).

    .venv/bin/python benchmarks/queue_bench.py           # full: 10,000 jobs
    .venv/bin/python benchmarks/queue_bench.py --quick   # ~2 minutes: 2,000 jobs

Prints a table and ends with one line of JSON.
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

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / ".peers"
ARQ_VENV = PEERS / "arq"
ARQ_VERSION = "0.28.0"
DBS = {"ours": 1, "arq": 2, "saq": 3, "rq": 4, "taskiq": 5}
BENCH = "bench"  # prefix of the benchmark's own bookkeeping keys
DONE, FIRST, LAST, LAT = (
    f"{BENCH}:done",
    f"{BENCH}:first",
    f"{BENCH}:last",
    f"{BENCH}:lat",
)

# --- the job (every system runs this) ------------------------------------------------

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def record(t0: float) -> None:
    """The no-op job: note when it started, one pipelined round trip."""
    now = time.time()
    pipe = _redis().pipeline(transaction=False)
    if t0 > 0:
        pipe.rpush(LAT, now - t0)
    pipe.set(FIRST, now, nx=True)
    pipe.incr(DONE)
    pipe.set(LAST, now)
    pipe.execute()


def ours_job(payload: dict[str, float]) -> None:
    record(payload["t0"])


async def arq_job(ctx: dict[str, Any], t0: float) -> None:
    record(t0)


async def saq_job(ctx: dict[str, Any], *, t0: float) -> None:
    record(t0)


def rq_job(t0: float) -> None:
    record(t0)


_lazy: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """Worker settings built on first use, so that importing this module needs no
    peer (the arq environment has none of the others, the main one has no arq)."""
    if name in _lazy:
        return _lazy[name]
    if name not in ("saq_settings", "taskiq_broker", "ArqSettings", "one_node"):
        raise AttributeError(name)
    url = os.environ["BENCH_REDIS_URL"]  # set by the benchmark, never a default
    if name == "saq_settings":
        from saq import Queue as SaqQueue

        value: Any = {"queue": SaqQueue.from_url(url), "functions": [saq_job]}
    elif name == "taskiq_broker":
        from taskiq_redis import RedisStreamBroker

        value = RedisStreamBroker(url, consumer_id="0")  # also jobs sent before
        _lazy["taskiq_task"] = value.task(task_name="job")(rq_job)
    elif name == "ArqSettings":
        from arq.connections import RedisSettings

        value = type(
            "ArqSettings",
            (),
            {"functions": [arq_job], "redis_settings": RedisSettings.from_dsn(url)},
        )
    elif name == "one_node":
        value = _one_node_graph()
    else:
        raise AttributeError(name)
    _lazy[name] = value
    return value


def _one_node_graph() -> Any:
    from typing import TypedDict

    from langgraph.graph import START, StateGraph

    class State(TypedDict):
        n: int

    builder = StateGraph(State)
    builder.add_node("one", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "one")
    return builder.compile()


# --- measuring helpers ----------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ours_worker(
    url: str, prefix: str, *, concurrency: int, retention: int | None = None
) -> list[str]:
    """The command line of one of our worker processes (`python -m dialogllm.queue`)."""
    cmd = [sys.executable, "-m", "dialogllm.queue", "--redis-url", url]
    cmd += ["--key-prefix", prefix, "--concurrency", str(concurrency)]
    if retention is not None:
        cmd += ["--retention", str(retention)]
    return cmd


class System:
    """One queue under test: how to enqueue, how to start its workers."""

    name = ""

    def __init__(self, url: str) -> None:
        self.url = url
        path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": path}

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, t0: float) -> None:
        raise NotImplementedError

    def worker_commands(self, processes: int) -> list[list[str]]:
        raise NotImplementedError

    def leftover_ignore(self) -> tuple[str, ...]:
        return (BENCH,)


class Ours(System):
    name = "ours"

    async def open(self) -> None:
        from dialogllm.queue import Queue

        self.queue = Queue.from_url(self.url, key_prefix="q", retention=600.0)

    async def close(self) -> None:
        await self.queue.aclose()

    async def enqueue(self, t0: float) -> None:
        await self.queue.enqueue(f"{HERE / 'queue_bench.py'}:ours_job", {"t0": t0})

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [ours_worker(self.url, "q", concurrency=10, retention=600)] * processes


class Saq(System):
    name = "saq"

    async def open(self) -> None:
        from saq import Queue as SaqQueue

        self.queue = SaqQueue.from_url(self.url)

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue(self, t0: float) -> None:
        await self.queue.enqueue("saq_job", t0=t0)

    def worker_commands(self, processes: int) -> list[list[str]]:
        saq = str(Path(sys.executable).with_name("saq"))
        return [[saq, "queue_bench.saq_settings", "--workers", str(processes)]]


class Rq(System):
    name = "rq"

    async def open(self) -> None:
        from rq import Queue as RqQueue

        self.conn = redis.Redis.from_url(self.url)
        self.queue = RqQueue(connection=self.conn)

    async def close(self) -> None:
        self.conn.close()

    async def enqueue(self, t0: float) -> None:
        from queue_bench import rq_job as job  # the importable name rq stores

        self.queue.enqueue(job, t0)

    def worker_commands(self, processes: int) -> list[list[str]]:
        rq = str(Path(sys.executable).with_name("rq"))
        return [[rq, "worker", "--url", self.url, "--quiet"]] * processes


class Taskiq(System):
    name = "taskiq"

    async def open(self) -> None:
        os.environ["BENCH_REDIS_URL"] = self.url  # the broker is built from it
        import queue_bench

        queue_bench._lazy.pop("taskiq_broker", None)
        self.broker = queue_bench.taskiq_broker
        self.task = queue_bench.taskiq_task
        await self.broker.startup()

    async def close(self) -> None:
        await self.broker.shutdown()

    async def enqueue(self, t0: float) -> None:
        await self.task.kiq(t0)

    def worker_commands(self, processes: int) -> list[list[str]]:
        taskiq = str(Path(sys.executable).with_name("taskiq"))
        return [
            [
                taskiq,
                "worker",
                "queue_bench:taskiq_broker",
                "--workers",
                str(processes),
                "--no-configure-logging",
            ]
        ]


class Arq(System):
    name = "arq"

    async def open(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.pool = await create_pool(RedisSettings.from_dsn(self.url))

    async def close(self) -> None:
        await self.pool.aclose()

    async def enqueue(self, t0: float) -> None:
        await self.pool.enqueue_job("arq_job", t0)

    def worker_commands(self, processes: int) -> list[list[str]]:
        arq = str(Path(sys.executable).with_name("arq"))
        return [[arq, "queue_bench.ArqSettings"]] * processes


SYSTEMS: dict[str, type[System]] = {
    "ours": Ours,
    "arq": Arq,
    "saq": Saq,
    "rq": Rq,
    "taskiq": Taskiq,
}


class Workers:
    def __init__(self, system: System, processes: int) -> None:
        self.procs = [
            subprocess.Popen(
                cmd,
                env=system.env,
                cwd=HERE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for cmd in system.worker_commands(processes)
        ]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def reset(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=f"{BENCH}:*"))
    if keys:
        client.delete(*keys)


async def wait_done(client: redis.Redis, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(client.get(DONE) or 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {client.get(DONE)} of {n} jobs done")
        await asyncio.sleep(0.02)


async def enqueue_many(system: System, n: int) -> None:
    for start in range(0, n, 50):
        await asyncio.gather(
            *(system.enqueue(0.0) for _ in range(start, min(n, start + 50)))
        )


async def measure(name: str, url: str, jobs: int, quick: bool) -> dict[str, Any]:
    system = SYSTEMS[name](url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    await system.open()
    out: dict[str, Any] = {"system": name}
    try:
        # 1. enqueue latency, nothing consuming
        samples = []
        for _ in range(500 if quick else 2000):
            t = time.perf_counter()
            await system.enqueue(0.0)
            samples.append((time.perf_counter() - t) * 1000)
        out["enqueue_p50_ms"], out["enqueue_p99_ms"] = (
            pct(samples, 0.5),
            pct(samples, 0.99),
        )
        client.flushdb()
        await system.close()
        await system.open()

        # 2. enqueue -> start at a steady 100 jobs/s, one worker process
        workers = Workers(system, 1)
        try:
            await system.enqueue(0.0)  # warm-up: the worker is up when it ran
            await wait_done(client, 1, 120)
            reset(client)
            count = 200 if quick else 500
            t_next = time.perf_counter()
            for _ in range(count):
                await system.enqueue(time.time())
                t_next += 0.01
                await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
            await wait_done(client, count, 120)
            lat = [float(x) * 1000 for x in client.lrange(LAT, 0, -1)]
            out["start_p50_ms"], out["start_p99_ms"] = pct(lat, 0.5), pct(lat, 0.99)
        finally:
            workers.stop()
        client.flushdb()

        # 3. throughput of queued jobs, 1 and 4 worker processes
        for processes in (1, 4):
            n = min(jobs, 2000) if name == "rq" else jobs
            await enqueue_many(system, n)
            reset(client)
            workers = Workers(system, processes)
            try:
                await wait_done(client, n, 900)
            finally:
                workers.stop()
            first, last = float(client.get(FIRST)), float(client.get(LAST))  # type: ignore[arg-type]
            out[f"throughput_{processes}p"] = n / max(1e-9, last - first)
            out[f"throughput_{processes}p_jobs"] = n
            if processes == 1:  # 4. what the system leaves behind
                await asyncio.sleep(1.0)
                left = [
                    k for k in client.scan_iter() if not k.startswith(BENCH.encode())
                ]
                out["left_keys"] = len(left)
                out["left_bytes"] = sum(int(client.memory_usage(k) or 0) for k in left)
            client.flushdb()
    finally:
        await system.close()
        client.close()
    return out


# --- ours, twice more ----------------------------------------------------------------


def _script_names() -> dict[str, str]:
    """SHA1 -> name of every Lua script of the queue, leases and checkpointer."""
    import hashlib

    from dialogllm import leases
    from dialogllm.checkpoint import lua as checkpoint_lua
    from dialogllm.queue import lua as queue_lua

    names: dict[str, str] = {}
    for module in (queue_lua, leases, checkpoint_lua):
        for attr, value in vars(module).items():
            source = getattr(value, "source", value)
            if isinstance(source, str) and "redis.call" in source:
                names[hashlib.sha1(source.encode()).hexdigest()] = attr
    return names


SCRIPTS: dict[str, str] = {}


class CommandCounter:
    """Counts the commands clients send to Redis (``MONITOR``), those that scripts
    run excluded: round trips, with each command of a pipeline counted. Commands of
    the connections in ``ignore`` (the benchmark's own polling) are left out."""

    END = "bench-monitor-end"

    def __init__(self, url: str, ignore: set[str]) -> None:
        import threading

        if not SCRIPTS:
            SCRIPTS.update(_script_names())
        self.client = redis.Redis.from_url(url)
        self.ignore = ignore
        self.counts: dict[str, int] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:
            self._ready.set()
            while True:
                cmd = monitor.next_command()
                text = str(cmd.get("command", ""))
                if text.startswith(f"ECHO {self.END}"):
                    return
                if cmd.get("client_type") == "lua":
                    continue
                addr = f"{cmd.get('client_address')}:{cmd.get('client_port')}"
                if addr in self.ignore:
                    continue
                words = text.split(" ", 2)
                name = words[0].upper()
                if name == "EVALSHA" and len(words) > 1:
                    name += " " + SCRIPTS.get(words[1], words[1][:8])
                self.counts[name] = self.counts.get(name, 0) + 1

    def stop(self, sender: redis.Redis) -> dict[str, int]:
        sender.echo(self.END)
        self._thread.join(30)
        self.client.close()
        return self.counts


def _addr(client: redis.Redis) -> str:
    return str(client.client_info()["addr"])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FINISHED = (b"success", b"error", b"dead", b"cancelled", b"interrupted")


async def ours_graph(url: str, runs: int) -> dict[str, Any]:
    """One-node graph with the Redis checkpointer: through the queue (one worker
    process, concurrency 10) vs in-process (ten ``ainvoke`` loops in this process,
    so both keep ten runs going). Per run: wall time (runs/s), CPU time of the
    process that ran the graph, and commands sent to Redis (``MONITOR``, a second,
    smaller batch, so that it slows neither throughput figure)."""
    from redis.asyncio import Redis

    from dialogllm.checkpoint import AsyncRedisSaver
    from dialogllm.queue import Queue
    from dialogllm.queue.keys import run_record

    client = redis.Redis.from_url(url)
    client.flushdb()
    graph = _one_node_graph()
    aclient = Redis.from_url(url)
    saver = AsyncRedisSaver(aclient, key_prefix="inproc")
    compiled = graph.copy(update={"checkpointer": saver})
    counted = max(50, min(300, runs // 2))

    async def in_process(n: int, tag: str) -> None:
        todo = iter(range(n))

        async def loop() -> None:
            for i in todo:
                config = {"configurable": {"thread_id": f"{tag}{i}"}}
                await compiled.ainvoke({"n": i}, config)

        await asyncio.gather(*(loop() for _ in range(10)))

    await in_process(20, "warm")
    t, cpu = time.perf_counter(), time.process_time()
    await in_process(runs, "t")
    inproc = runs / (time.perf_counter() - t)
    inproc_cpu_ms = (time.process_time() - cpu) / runs * 1000
    counter = CommandCounter(url, ignore={_addr(client)})
    await in_process(counted, "m")
    inproc_cmds = counter.stop(client)
    await aclient.aclose()

    queue = Queue.from_url(url, key_prefix="g", retention=600.0)
    ref = f"{HERE / 'queue_bench.py'}:one_node"

    async def enqueue(n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 50):
            ids += await asyncio.gather(
                *(
                    queue.enqueue(ref, {"n": i})
                    for i in range(start, min(n, start + 50))
                )
            )
        return ids

    async def drained(ids: list[str], timeout: float) -> None:
        """Wait on the sync ``client`` only (whose commands MONITOR ignores)."""
        deadline = time.monotonic() + timeout
        for run_id in ids:
            key = run_record("g", "default", run_id)
            while client.hget(key, "status") not in FINISHED:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"run {run_id} did not finish")
                await asyncio.sleep(0.01)

    cmd = ours_worker(url, "g", concurrency=10)
    # the graph's module reads BENCH_REDIS_URL when it is imported: without it every
    # run fails at once (and "finished" runs would be failures, timed)
    env = {**os.environ, "BENCH_REDIS_URL": url}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await drained(await enqueue(1), 120)  # warm: imports, scripts, the graph
        cpu0 = _cpu_s(proc.pid)
        ids = await enqueue(runs)
        await drained(ids, 600)
        worker_cpu_ms = (_cpu_s(proc.pid) - cpu0) / runs * 1000
        records = [await queue.get(i) for i in ids]
        failed = [r for r in records if r.status.value != "success"]
        if failed:
            raise RuntimeError(f"{len(failed)} graph runs failed: {failed[0].error}")
        first = min(r.started_at or 0.0 for r in records)
        queued = runs / (max(r.finished_at or 0.0 for r in records) - first)
        counter = CommandCounter(url, ignore={_addr(client)})
        await drained(await enqueue(counted), 600)
        queued_cmds = counter.stop(client)
        queued_cmds.pop("EVALSHA ENQUEUE", None)  # the producer's, not the worker's
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        await queue.aclose()
    client.flushdb()
    client.close()
    queued_total = sum(queued_cmds.values())
    return {
        "graph_inprocess_runs_per_s": inproc,
        "graph_queued_runs_per_s": queued,
        "graph_overhead_ms_per_run": (1 / queued - 1 / inproc) * 1000,
        "graph_inprocess_cpu_ms_per_run": inproc_cpu_ms,
        "graph_worker_cpu_ms_per_run": worker_cpu_ms,
        "graph_cpu_overhead_ms_per_run": worker_cpu_ms - inproc_cpu_ms,
        "graph_inprocess_commands_per_run": sum(inproc_cmds.values()) / counted,
        "graph_worker_commands_per_run": queued_total / counted,
        "graph_worker_commands": {k: v / counted for k, v in queued_cmds.items()},
    }


async def ours_memory(url: str, runs: int, memory_wait: float) -> dict[str, Any]:
    """No-op runs with a 5 s retention: Redis memory before, at the peak, 8 s after
    the last run, and once it settled (or ``memory_wait`` s after the last run)."""
    from dialogllm.queue import Queue

    client = redis.Redis.from_url(url)
    client.flushdb()

    def data() -> int:
        stats = client.memory_stats()
        return int(stats["total.allocated"]) - int(stats["clients.normal"])

    queue = Queue.from_url(url, key_prefix="m", retention=5.0)
    cmd = ours_worker(url, "m", concurrency=32, retention=5)
    env = {**os.environ, "BENCH_REDIS_URL": url}
    procs = [
        subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    ref = f"{HERE / 'queue_bench.py'}:ours_job"
    try:
        warm = await queue.enqueue(ref, {"t0": 0.0})
        await queue.wait(warm, timeout=120)
        await asyncio.sleep(8)
        base_keys, base = client.dbsize(), data()
        peak_keys = 0
        last = ""
        for start in range(0, runs, 100):
            ids = await asyncio.gather(
                *(
                    queue.enqueue(ref, {"t0": 0.0})
                    for _ in range(min(100, runs - start))
                )
            )
            last = ids[-1]
            if start % 5000 == 0:
                peak_keys = max(peak_keys, client.dbsize())
        await queue.wait(last, timeout=600)
        finished = time.monotonic()
        await asyncio.sleep(8)  # retention 5 s + housekeeping
        after_keys, after = client.dbsize(), data()
        # then wait (up to memory_wait s) for keys and bytes to settle at the baseline
        settled_s: float | None = None
        while time.monotonic() - finished < memory_wait:
            keys_now, bytes_now = client.dbsize(), data()
            if keys_now <= base_keys and bytes_now - base <= 256 * 1024:
                settled_s = time.monotonic() - finished
                break
            await asyncio.sleep(2)
        final_keys, final = client.dbsize(), data()
        left = sorted(k.decode() for k in client.scan_iter(count=1000))[:10]
        db_stats = {
            k: v for k, v in client.memory_stats().items() if str(k).startswith("db.")
        }
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        await queue.aclose()
    client.flushdb()
    client.close()
    return {
        "memory_runs": runs,
        "memory_baseline_bytes": base,
        "memory_after_bytes": after,
        "memory_baseline_keys": base_keys,
        "memory_peak_keys_seen": peak_keys,
        "memory_after_keys": after_keys,
        "memory_final_bytes": final,
        "memory_final_keys": final_keys,
        "memory_settled_after_s": settled_s,
        "memory_final_key_names": left,
        "memory_final_db_stats": str(db_stats),
    }


# --- the arq environment ----------------------------------------------------------


def arq_python() -> Path:
    python = ARQ_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing arq=={ARQ_VERSION} into {ARQ_VENV} ...", file=sys.stderr)
        venv.create(ARQ_VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"arq=={ARQ_VERSION}"],
            check=True,
        )
    return python


# --- main -------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("system", "system", "{}"),
        ("enqueue_p50_ms", "enq p50 ms", "{:.3f}"),
        ("enqueue_p99_ms", "enq p99 ms", "{:.3f}"),
        ("start_p50_ms", "start p50 ms", "{:.2f}"),
        ("start_p99_ms", "start p99 ms", "{:.2f}"),
        ("throughput_1p", "jobs/s 1 proc", "{:,.0f}"),
        ("throughput_4p", "jobs/s 4 procs", "{:,.0f}"),
        ("left_keys", "keys left", "{}"),
        ("left_bytes", "bytes left", "{:,}"),
    ]
    lines = [
        "| " + " | ".join(c[1] for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for row in rows:
        cells = []
        for key, _, fmt in cols:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def run_all(args: argparse.Namespace) -> None:
    from dialogllm.logging import configure_logging

    configure_logging(level="warning")
    sys.path.insert(0, str(ROOT))  # the private-server helper the tests use too
    from tests.redis_servers import RedisServer

    workdir = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    server = RedisServer(workdir, aof=False)
    server.start()
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    try:
        for name in [] if args.graph_only else args.systems:
            url = server.url_for(DBS[name])
            print(f"measuring {name} ...", file=sys.stderr)
            if name == "arq":
                out = subprocess.run(
                    [
                        str(arq_python()),
                        str(Path(__file__)),
                        "--only",
                        "arq",
                        "--url",
                        url,
                        "--jobs",
                        str(args.jobs),
                        *(["--quick"] if args.quick else []),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=HERE,
                    env={**os.environ, "PYTHONPATH": str(HERE)},
                )
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            else:
                rows.append(await measure(name, url, args.jobs, args.quick))
        if "ours" in args.systems:
            print(
                "measuring ours with a graph and the checkpointer ...", file=sys.stderr
            )
            extra.update(
                await ours_graph(server.url_for(6), 500 if args.quick else 2000)
            )
        if "ours" in args.systems and not args.graph_only:
            print(
                f"measuring memory after {args.memory_runs:,} runs ...", file=sys.stderr
            )
            extra.update(
                await ours_memory(server.url_for(7), args.memory_runs, args.memory_wait)
            )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    server_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    print(
        f"\nQueue benchmark ({'quick' if args.quick else 'full'}; {args.jobs:,} jobs"
        " for"
        " throughput, rq capped at 2,000)"
    )
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, redis-server "
        f"{server_version}"
    )
    print()
    print(table(rows))
    if "graph_queued_runs_per_s" in extra:
        print()
        print(
            f"ours, one-node graph + Redis checkpointer: in-process "
            f"{extra['graph_inprocess_runs_per_s']:,.0f} runs/s, through the queue "
            f"(1 worker process) {extra['graph_queued_runs_per_s']:,.0f} runs/s, "
            f"overhead {extra['graph_overhead_ms_per_run']:.2f} ms/run (wall); CPU "
            f"per run {extra['graph_inprocess_cpu_ms_per_run']:.2f} ms in-process, "
            f"{extra['graph_worker_cpu_ms_per_run']:.2f} ms in the worker (overhead "
            f"{extra['graph_cpu_overhead_ms_per_run']:.2f} ms); Redis commands per "
            f"run {extra['graph_inprocess_commands_per_run']:.2f} in-process, "
            f"{extra['graph_worker_commands_per_run']:.2f} through the queue"
        )
    if "memory_runs" in extra:
        print(
            f"ours, memory after {extra['memory_runs']:,} no-op runs (retention 5 s): "
            f"baseline {extra['memory_baseline_bytes']:,} B / "
            f"{extra['memory_baseline_keys']} keys, after "
            f"{extra['memory_after_bytes']:,} B / {extra['memory_after_keys']} keys "
            f"(peak seen {extra['memory_peak_keys_seen']:,} keys); settled at "
            f"{extra['memory_final_bytes']:,} B / {extra['memory_final_keys']} keys "
            f"after {extra['memory_settled_after_s']} s (limit {args.memory_wait:.0f}s)"
        )
    print(
        json.dumps(
            {
                "bench": "queue",
                "quick": args.quick,
                "jobs": args.jobs,
                "systems": rows,
                "ours": extra,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--memory-runs", type=int, default=None)
    parser.add_argument(
        "--memory-wait",
        type=float,
        default=60.0,
        help="seconds after the last run to wait for Redis memory to settle",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        # taskiq's worker did not pick up jobs in this harness (see
        # docs/benchmarks/queue.md); measure it explicitly with --systems taskiq
        default=[s for s in SYSTEMS if s != "taskiq"],
        choices=list(SYSTEMS),
    )
    parser.add_argument(
        "--graph-only",
        action="store_true",
        help="measure only ours through the whole worker path (one-node graph)",
    )
    parser.add_argument("--only", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jobs is None:
        args.jobs = 2000 if args.quick else 10_000
    if args.memory_runs is None:
        args.memory_runs = 10_000 if args.quick else 100_000
    if args.only:  # one system, in this interpreter (arq's own environment)
        result = asyncio.run(measure(args.only, args.url, args.jobs, args.quick))
        print(json.dumps(result))
        return
    asyncio.run(run_all(args))


if __name__ == "__main__":
    main()
