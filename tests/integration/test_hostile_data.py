"""Hostile data in every key the project owns, while a worker runs a steady load.

Someone who can write to Redis (a bug, a stale deploy, an attacker) may put anything
into any field of any key: random bytes, huge or negative numbers, non-numbers where a
counter belongs, broken JSON, msgpack payloads that name ``os.system`` or
``subprocess.run``, or a key of the wrong Redis type. Hypothesis draws such
corruptions and writes them into the keys of *sacrificial* runs and threads (enqueued
for that purpose) and into the global keys (limiter and metrics keys, the recovery
counters, the reclaims list, the fleet hash, the run and dead-letter streams), never
into the keys of the well-formed runs. Meanwhile a trickle of well-formed runs of a
checkpointed graph that asks a rate-limited, metered model goes through one worker.

Afterwards: every well-formed run succeeded; the worker is alive and reading; the
status snapshot answers (in-process and as ``dialogllm status --json``); every
sacrificial run ended (dead-lettered with a reason, or any other final status)
instead of hanging; and no payload ran code or imported a module outside the
allow-list (a marker file and a marker module prove it).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import ormsgpack
import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dialogllm.checkpoint.keys import ns_part, thread_key
from dialogllm.errors import RedisCommandError
from dialogllm.leases import thread_fence_counter, thread_lease
from dialogllm.llm.keys import metrics_minute, metrics_models, rate_bucket
from dialogllm.queue import Queue
from dialogllm.queue.fleet import fleet_status
from dialogllm.queue.keys import (
    QueueKey,
    fleet_workers,
    queue_key,
    run_events,
    run_record,
    thread_active,
    thread_waiting,
)
from tests.conftest import REDIS_URL
from tests.integration.queue.conftest import (  # noqa: F401 - fixtures
    WorkerFactory,
    queue,
    start_worker,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # the worker's event loop (another thread) draws jitter from ``random`` while
    # Hypothesis generates an example: not randomness of the strategies
    pytest.mark.filterwarnings(
        "ignore::hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

GRAPH = f"{Path(__file__).with_name('hostile_graph.py')}:hostile"
MODEL = "hostile-model"
DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))
#: Bounded so the test stays well under a minute on two busy cores.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "250"))
FINAL_STATUSES = {"success", "error", "dead", "cancelled", "interrupted"}

T = TypeVar("T")

# --- what can be corrupted ----------------------------------------------------------

#: Fields of a run record (``RunRecord.from_hash`` and the Lua scripts read them).
RUN_FIELDS = (
    "status",
    "entry",
    "graph",
    "thread",
    "input",
    "attempts",
    "max_attempts",
    "signal",
    "signal_by",
    "started",
    "beat",
    "created",
    "due",
    "finished",
    "lease",
    "worker",
    "error",
    "error_node",
    "result",
    "reclaims",
    "idem",
    "multitask",
)

#: Per-thread keys of a sacrificial thread that already holds checkpoints; the next
#: run on that thread reads them. ``*`` = every field the key holds.
THREAD_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    # name: (Redis type, fields)
    "idx": ("zset", ()),
    "cp": ("hash", ("*",)),
    "blobs": ("hash", ("*",)),
    "w": ("hash", ("*",)),
    "runs": ("zset", ()),
    "meta": ("hash", ("ttl_ms",)),
    "lease": ("hash", ("id", "fence")),
    "fence": ("string", ()),
    "active": ("string", ()),
    "wait": ("list", ()),
}

#: Keys every run shares. The run stream is only ever added to (garbage entries),
#: never replaced by another type: no queue can work without its stream.
GLOBAL_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "rate": ("hash", ("r", "t", "ts")),
    "metrics": ("hash", ("calls", "prompt_tokens", "completion_tokens", "failures")),
    "metrics_models": ("zset", ()),
    "recovery": ("hash", ("reclaims",)),
    "reclaims": ("list", ()),
    "fleet": ("hash", ("*new*",)),
    "stream": ("stream", ("run", "thread", "x")),
    "dlq": ("stream", ("run", "graph", "thread", "reason", "attempts")),
}

REDIS_TYPES = ("string", "list", "hash", "zset", "stream")


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class Corruption:
    scope: str  # "run" (a delayed run's record), "events", "thread", "global"
    target: str  # the key's name in THREAD_TARGETS / GLOBAL_TARGETS, or the scope
    field: str  # the field, member or entry field written ("" for whole values)
    value: bytes
    wrong_type: str | None  # replace the key by one of this type instead


def _evil(marker: Path, module: str) -> list[bytes]:
    """msgpack payloads that would run code or import ``module`` if revived."""
    command = f"touch {marker}"
    calls: list[tuple[int, list[Any]]] = [
        (0, ["os", "system", command]),
        (1, ["os", "system", [command]]),
        (2, ["subprocess", "run", {"args": ["touch", str(marker)]}]),
        (3, ["os", "system", command, "__call__"]),
        (4, ["os", "system", {"command": command}, "construct"]),
        (5, ["os", "system", {"command": command}, "model_validate"]),
        (0, [module, "boom", command]),
        (2, [module, "boom", {"path": str(marker)}]),
    ]
    out: list[bytes] = []
    for code, payload in calls:
        ext = ormsgpack.Ext(code, ormsgpack.packb(payload))
        packed = ormsgpack.packb(ext)
        out += [
            packed,
            b"7:msgpack" + packed,  # a typed blob, as the checkpointer stores them
            b"7:msgpack" + ormsgpack.packb({"v": [ext]}),  # nested in plain data
        ]
    return out


def values(marker: Path, module: str) -> st.SearchStrategy[bytes]:
    """Random and adversarial field values."""
    return st.one_of(
        st.binary(max_size=48),
        st.integers(min_value=2**53, max_value=2**300).map(lambda n: str(n).encode()),
        st.integers(min_value=-(2**70), max_value=-1).map(lambda n: str(n).encode()),
        st.sampled_from([b"1e308", b"inf", b"-inf", b"nan", b"1.5", b"0x10", b""]),
        st.text(max_size=16).map(str.encode),
        st.sampled_from(
            [b"{", b"[1,", b'"open', b"null", b"[]", b"true", b'{"status": 1}']
        ),
        st.sampled_from(_evil(marker, module)),
    )


def corruptions(marker: Path, module: str) -> st.SearchStrategy[Corruption]:
    value = values(marker, module)

    def of(scope: str, table: dict[str, tuple[str, tuple[str, ...]]]) -> Any:
        def build(target: str) -> st.SearchStrategy[Corruption]:
            kind, fields = table[target]
            wrong = st.sampled_from([t for t in REDIS_TYPES if t != kind])
            if target == "stream":  # see GLOBAL_TARGETS
                wrong = st.none()
            return st.builds(
                Corruption,
                scope=st.just(scope),
                target=st.just(target),
                field=st.sampled_from(fields) if fields else st.just(""),
                value=value,
                wrong_type=st.one_of(st.none(), wrong),
            )

        return st.sampled_from(sorted(table)).flatmap(build)

    run = st.builds(
        Corruption,
        scope=st.just("run"),
        target=st.just("run"),
        field=st.sampled_from(RUN_FIELDS),
        value=value,
        wrong_type=st.one_of(
            st.none(), st.sampled_from([t for t in REDIS_TYPES if t != "hash"])
        ),
    )
    events = st.builds(
        Corruption,
        scope=st.just("events"),
        target=st.just("events"),
        field=st.sampled_from(("kind", "data", "status", "")),
        value=value,
        wrong_type=st.one_of(
            st.none(), st.sampled_from([t for t in REDIS_TYPES if t != "stream"])
        ),
    )
    return st.one_of(
        run, events, of("thread", THREAD_TARGETS), of("global", GLOBAL_TARGETS)
    )


# --- writing the corruption ---------------------------------------------------------


def _replace(client: redis.Redis, key: str, kind: str, value: bytes) -> None:
    """Make ``key`` a key of Redis type ``kind`` holding ``value``."""
    pipe = client.pipeline()
    pipe.delete(key)
    if kind == "string":
        pipe.set(key, value)
    elif kind == "list":
        pipe.rpush(key, value)
    elif kind == "hash":
        pipe.hset(key, "x", value)
    elif kind == "zset":
        pipe.zadd(key, {value: 1})
    else:
        pipe.xadd(key, {"x": value})
    pipe.execute()


def _write(client: redis.Redis, key: str, kind: str, field: str, value: bytes) -> None:
    """Write ``value`` into ``key`` (of Redis type ``kind``) as its own type allows
    (a key an earlier example gave another type is made of its own type again)."""
    if client.type(key) not in (kind.encode(), b"none"):
        client.delete(key)
    if kind == "hash":
        if field == "*":
            names = client.hkeys(key) or [b"x"]
            client.hset(key, mapping=dict.fromkeys(names, value))
        elif field == "*new*":
            client.hset(key, f"hostile-{uuid.uuid4().hex[:6]}", value)
        else:
            client.hset(key, field, value)
    elif kind == "zset":
        # lexicographic indexes: a member sorting after every real one is "newest"
        client.zadd(key, {ns_part("") + b"\xff" + value: 0, value: 0})
    elif kind == "list":
        client.lpush(key, value)
    elif kind == "stream":
        client.xadd(key, {field or "x": value})
    else:
        client.set(key, value)


# --- the test -----------------------------------------------------------------------


async def test_hostile_data_never_stops_the_worker_or_runs_code(
    queue: Queue,  # noqa: F811 - the fixture
    start_worker: WorkerFactory,  # noqa: F811 - the fixture
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = tmp_path / "PWNED"
    module = f"hostile_marker_{uuid.uuid4().hex[:8]}"
    # a module that proves its import: nothing may import what a payload names
    (tmp_path / f"{module}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "def boom(*a, **k):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DIALOGLLM_ALLOWED_MSGPACK_MODULES", raising=False)
    modules_before = set(sys.modules)

    loop = asyncio.get_running_loop()
    client = redis.Redis.from_url(REDIS_URL)
    prefix, name = key_prefix, queue.name
    worker = start_worker(concurrency=4)
    graph_input = {"prefix": prefix, "model": MODEL}

    def on_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(make(), loop).result(30)

    def status_of(run_id: str) -> str | None:
        try:
            raw = client.hget(run_record(prefix, name, run_id), "status")
        except redis.ResponseError:  # a record replaced by another type
            return None
        return None if raw is None else raw.decode(errors="replace")

    def wait_success(run_id: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while status_of(run_id) != "success":
            assert time.monotonic() < deadline, f"{run_id}: {status_of(run_id)}"
            time.sleep(0.05)

    # the steady load: well-formed runs on threads of their own, and a watch on the
    # worker's readiness
    well: list[str] = []
    not_ready_since: list[float | None] = [None]
    longest_not_ready = [0.0]
    stop = asyncio.Event()

    async def trickle() -> None:
        i = 0
        while not stop.is_set():
            well.append(await queue.enqueue(GRAPH, graph_input, thread_id=f"w-{i}"))
            i += 1
            await asyncio.sleep(0.25)

    async def watch() -> None:
        while not stop.is_set():
            now = time.monotonic()
            if worker.ready:
                not_ready_since[0] = None
            elif not_ready_since[0] is None:
                not_ready_since[0] = now
            else:
                longest_not_ready[0] = max(
                    longest_not_ready[0], now - not_ready_since[0]
                )
            await asyncio.sleep(0.05)

    for _ in range(400):
        if worker.ready:
            break
        await asyncio.sleep(0.05)
    assert worker.ready
    load = [asyncio.create_task(trickle()), asyncio.create_task(watch())]

    sacrificial: dict[str, Corruption] = {}
    refused: list[Corruption] = []
    dlq_replaced: list[float] = []
    threads = iter(range(10**6))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: repeatable in CI
        database=None,
        # no shrinking: the damage an example did stays in Redis, so a shrunk replay
        # is not the same test (and each replay waits on runs); a failure is
        # reported with the example that found it
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(corruption=corruptions(marker, module))
    def attack(corruption: Corruption) -> None:
        thread = f"s-{next(threads)}"
        if corruption.scope in ("run", "events"):
            run_id = on_loop(
                lambda: queue.enqueue(
                    GRAPH, graph_input, thread_id=thread, delay=0.3, max_attempts=2
                )
            )
            sacrificial[run_id] = corruption
            key = (
                run_record(prefix, name, run_id)
                if corruption.scope == "run"
                else run_events(prefix, name, run_id)
            )
            kind = "hash" if corruption.scope == "run" else "stream"
            _corrupt(key, kind, corruption)
            return
        if corruption.scope == "thread":
            # a thread with checkpoints first; then the damage; then the next run
            first = on_loop(lambda: queue.enqueue(GRAPH, graph_input, thread_id=thread))
            wait_success(first)
            kind, _ = THREAD_TARGETS[corruption.target]
            _corrupt(_thread_key(thread, corruption.target), kind, corruption)
            try:
                run_id = on_loop(
                    lambda: queue.enqueue(
                        GRAPH, graph_input, thread_id=thread, max_attempts=2
                    )
                )
            except RedisCommandError:
                # the producer refuses with a typed error (e.g. the thread's
                # ``active`` key of another type): nothing to run, nothing stuck
                refused.append(corruption)
                return
            sacrificial[run_id] = corruption
            return
        kind, _ = GLOBAL_TARGETS[corruption.target]
        if corruption.target == "dlq" and corruption.wrong_type is not None:
            dlq_replaced.append(time.time())  # the dead letters so far are gone
        _corrupt(_global_key(corruption.target), kind, corruption)

    def _corrupt(key: str, kind: str, corruption: Corruption) -> None:
        if corruption.wrong_type is not None:
            _replace(client, key, corruption.wrong_type, corruption.value)
        else:
            _write(client, key, kind, corruption.field, corruption.value)

    def _thread_key(thread: str, target: str) -> str:
        if target == "lease":
            return thread_lease(prefix, thread)
        if target == "fence":
            return thread_fence_counter(prefix, thread)
        if target == "active":
            return thread_active(prefix, name, thread)
        if target == "wait":
            return thread_waiting(prefix, name, thread)
        return thread_key(prefix, thread, target)

    def _global_key(target: str) -> str:
        return {
            "rate": rate_bucket(prefix, MODEL),
            "metrics": metrics_minute(prefix, MODEL, int(time.time() // 60)),
            "metrics_models": metrics_models(prefix),
            "recovery": queue_key(prefix, name, QueueKey.RECOVERY),
            "reclaims": queue_key(prefix, name, QueueKey.RECLAIMS),
            "fleet": fleet_workers(prefix),
            "stream": queue_key(prefix, name, QueueKey.STREAM),
            "dlq": queue_key(prefix, name, QueueKey.DEAD_LETTERS),
        }[target]

    started = time.monotonic()
    try:
        await asyncio.to_thread(attack)
        # a few more well-formed runs after the last corruption
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*load)
    attack_s = time.monotonic() - started

    # every well-formed run succeeded
    assert len(well) >= 5, well
    await asyncio.to_thread(lambda: [wait_success(r, 30.0) for r in well])

    # every sacrificial run ended (bounded wait): dead-lettered with a reason, or
    # another final status; none hangs
    def dead_letters() -> dict[str, str]:
        entries = client.xrange(queue_key(prefix, name, QueueKey.DEAD_LETTERS))
        return {
            f.get(b"run", b"").decode(errors="replace"): f.get(b"reason", b"").decode(
                errors="replace"
            )
            for _, f in entries
        }

    def reason_of(run_id: str) -> str:
        raw = client.hget(run_record(prefix, name, run_id), "error")
        return (raw or b"").decode(errors="replace")

    def unfinished() -> dict[str, tuple[str | None, Corruption]]:
        letters = dead_letters()
        out: dict[str, tuple[str | None, Corruption]] = {}
        for run_id, corruption in sacrificial.items():
            status = status_of(run_id)
            if letters.get(run_id):
                continue
            if status in FINAL_STATUSES and status != "dead":
                continue
            if status == "dead" and dlq_replaced and reason_of(run_id):
                # dead-lettered with a reason, but the test replaced the
                # dead-letter stream by a key of another type afterwards
                finished = client.hget(run_record(prefix, name, run_id), "finished")
                if float(finished or 0) / 1000 <= dlq_replaced[-1]:
                    continue
            out[run_id] = (status, corruption)
        return out

    deadline = time.monotonic() + 30.0
    while (left := await asyncio.to_thread(unfinished)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert not left, left

    # the worker is alive and still reading
    assert worker.ready
    assert longest_not_ready[0] < 5.0, longest_not_ready[0]
    assert any(
        t.get_coro().__qualname__ == "Worker.run"  # type: ignore[union-attr]
        for t in asyncio.all_tasks()
        if not t.done()
    )

    # monitoring answers, with every corruption still in place: in-process and as
    # the CLI; what it cannot read is listed as a bad record
    snapshot = await asyncio.wait_for(fleet_status(queue.client, queue), 30)
    assert snapshot.as_dict()
    env = {
        **os.environ,
        "DIALOGLLM_REDIS_URL": REDIS_URL,
        "DIALOGLLM_KEY_PREFIX": prefix,
    }
    shown = await asyncio.to_thread(
        subprocess.run,
        [DIALOGLLM, "status", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode in (0, 6), shown.stderr
    assert json.loads(shown.stdout)
    assert "Traceback" not in shown.stderr

    # no payload ran code or imported what it named
    assert not marker.exists()
    assert module not in sys.modules
    assert not {m for m in set(sys.modules) - modules_before if m.startswith(module)}
    client.close()
    print(
        f"\nhostile data: {EXAMPLES} examples, {len(sacrificial)} sacrificial runs, "
        f"{len(refused)} refused at enqueue, "
        f"{len(well)} well-formed runs, attack {attack_s:.1f}s"
    )
