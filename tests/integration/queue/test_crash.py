"""Real processes, real failures: SIGKILLed workers, a stalled worker, SIGTERM, and a
Redis restart. Every run must finish with each dialogue turn exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from dialogllm.errors import RedisUnavailableError
from dialogllm.queue import Queue, RunStatus, Worker
from tests.redis_servers import RedisServer

from .conftest import (
    REDIS_URL,
    ready_workers,
    ref,
    stop_processes,
    worker_log,
    worker_process,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TURNS = 6


def transcript(turns: int) -> list[str]:
    return [f"{'alice' if n % 2 else 'bob'}: turn {n}" for n in range(1, turns + 1)]


def calls_per_turn(url: str, counter: str, thread: str, turns: int) -> list[int]:
    client = redis.Redis.from_url(url)
    try:
        return [
            int(client.get(f"{counter}:{thread}:{n}") or 0) for n in range(1, turns + 1)
        ]
    finally:
        client.close()


async def test_sigkilled_workers_lose_no_run_and_repeat_no_turn(
    queue: Queue, key_prefix: str
) -> None:
    lease_ttl = 1.0
    counter = f"{key_prefix}:calls"
    workers = {}
    for _ in range(2):
        proc = worker_process(key_prefix, concurrency=8, lease_ttl=lease_ttl)
        workers[proc.pid] = proc
    runs = [
        await queue.enqueue(
            ref("dialogue"),
            {"turns": TURNS, "sleep": 0.25, "counter": counter, "url": REDIS_URL},
            thread_id=f"t-{i}",
            max_attempts=20,
        )
        for i in range(8)
    ]
    rng = random.Random(7)
    kills: list[float] = []
    try:
        for victim_run in rng.sample(runs, 4):
            # kill whoever runs this run after a random number of its turns
            wanted = rng.randint(1, TURNS - 2)
            seen = 0
            async for event in queue.events(victim_run, timeout=30):
                seen += event.kind == "updates"
                if seen >= wanted or (event.status and event.status.is_terminal):
                    break
            await asyncio.sleep(rng.uniform(0.0, 0.25))  # anywhere inside a turn
            record = await queue.get(victim_run)
            if record.status is not RunStatus.RUNNING or not record.worker:
                continue
            pid = int(record.worker.split("-")[-2])
            others = [p for p in workers.values() if p.pid != pid]
            await ready_workers(others, 1)  # someone warm is there to take over
            workers[pid].send_signal(signal.SIGKILL)
            kills.append(time.time())
            proc = worker_process(key_prefix, concurrency=8, lease_ttl=lease_ttl)
            workers[proc.pid] = proc
        records = [await queue.wait(r, timeout=60) for r in runs]
    finally:
        stop_processes(*workers.values())

    assert len(kills) >= 3
    assert [r.status for r in records] == [RunStatus.SUCCESS] * len(runs)
    for i, record in enumerate(records):
        assert record.result["transcript"] == transcript(TURNS)  # each turn once
        calls = calls_per_turn(REDIS_URL, counter, f"t-{i}", TURNS)
        assert all(c >= 1 for c in calls)
        # a turn runs again only when its worker died during it
        assert sum(calls) - TURNS <= len(kills)
    reclaimed = [r for r in records if r.attempts > 1]
    assert len(reclaimed) >= len(kills)
    for record in reclaimed:
        starts = [
            e.data["at"] / 1000
            for e in [e async for e in queue.events(record.run_id)]
            if e.status is RunStatus.RUNNING
        ]
        for started in starts[1:]:
            killed = max(k for k in kills if k <= started)
            # the lease lapses after 1 x ttl; XAUTOCLAIM takes the run within
            # 0.75 x ttl more
            assert started - killed < 2.0 * lease_ttl + 0.25
    # every takeover is counted, with the time from the run's last heartbeat
    # (at most ttl/3 before the kill) to its takeover
    recovery = await queue.recovery()
    assert sum(r.reclaims for r in records) == recovery.reclaims >= len(kills)
    assert {r.run_id for r in recovery.recent} == {
        r.run_id for r in records if r.reclaims
    }
    assert all(
        0 < r.downtime_s < 2.0 * lease_ttl + lease_ttl / 3 + 0.25
        for r in recovery.recent
    )


async def test_a_stalled_worker_cannot_write_after_its_lease_was_taken(
    queue: Queue, key_prefix: str
) -> None:
    counter = f"{key_prefix}:calls"
    stalled = worker_process(key_prefix, concurrency=1, lease_ttl=1.0)
    run_id = await queue.enqueue(
        ref("dialogue"),
        {"turns": 8, "sleep": 0.3, "counter": counter, "url": REDIS_URL},
        thread_id="t-stall",
        max_attempts=5,
    )
    rescuer: subprocess.Popen[bytes] | None = None
    try:
        updates = 0
        async for event in queue.events(run_id, timeout=30):
            updates += event.kind == "updates"
            if updates == 2:
                break
        stalled.send_signal(signal.SIGSTOP)  # mid-turn 3: its lease will lapse
        rescuer = worker_process(key_prefix, concurrency=1, lease_ttl=1.0)
        async for event in queue.events(run_id, timeout=30):
            if (
                event.status is RunStatus.RUNNING
                and "attempt 2" in event.data["detail"]
            ):
                break
        stalled.send_signal(signal.SIGCONT)  # wakes up mid-turn, without the lease
        record = await queue.wait(run_id, timeout=30)
        await asyncio.sleep(1.0)  # let the stalled worker notice and give up
        assert stalled.poll() is None  # it gave up the run, not its life
    finally:
        stalled.send_signal(signal.SIGCONT)
        stop_processes(stalled, *([rescuer] if rescuer else []))
    assert record.status is RunStatus.SUCCESS
    assert record.attempts == 2
    assert record.result["transcript"] == transcript(8)
    log = worker_log(stalled)
    assert "lease" in log and ("taken over" in log or "giving the run up" in log)
    calls = calls_per_turn(REDIS_URL, counter, "t-stall", 8)
    # at most the turn the stall landed in ran twice (its write was refused)
    assert all(c >= 1 for c in calls) and sum(calls) <= 9


async def test_sigterm_hands_running_runs_back_for_another_worker(
    queue: Queue, key_prefix: str
) -> None:
    counter = f"{key_prefix}:calls"
    leaving = worker_process(key_prefix, concurrency=2, grace=5.0)
    runs = [
        await queue.enqueue(
            ref("dialogue"),
            {"turns": 12, "sleep": 0.1, "counter": counter, "url": REDIS_URL},
            thread_id=f"t-{i}",
        )
        for i in range(2)
    ]
    staying: subprocess.Popen[bytes] | None = None
    try:
        for run_id in runs:
            async for event in queue.events(run_id, timeout=30):
                if event.kind == "updates":
                    break
        sent = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(leaving.wait, 15)
        took = time.monotonic() - sent
        handed = [await queue.get(r) for r in runs]
        staying = worker_process(key_prefix, concurrency=2)
        records = [await queue.wait(r, timeout=30) for r in runs]
    finally:
        stop_processes(leaving, *([staying] if staying else []))
    assert code == 0
    assert took < 3.0  # each run stopped at its next step, well inside the grace
    assert [h.status for h in handed] == [RunStatus.PENDING] * 2
    assert [r.status for r in records] == [RunStatus.SUCCESS] * 2
    assert [r.attempts for r in records] == [1, 1]  # a hand-back is not a failure
    for i, record in enumerate(records):
        assert record.result["transcript"] == transcript(12)
        assert calls_per_turn(REDIS_URL, counter, f"t-{i}", 12) == [1] * 12


async def test_a_redis_restart_loses_no_enqueued_run(
    tmp_path: Path, key_prefix: str
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    counter = f"{key_prefix}:calls"
    # one worker in a process of its own, one in this process (its reconnects show
    # up in the coverage report)
    workers = [worker_process(key_prefix, url=server.url, lease_ttl=2.0)]
    inproc = Worker(server.url, key_prefix=key_prefix, lease_ttl=2.0, concurrency=4)
    inproc_task = asyncio.create_task(inproc.run(install_signal_handlers=False))
    queue = Queue.from_url(server.url, key_prefix=key_prefix)
    acknowledged: list[str] = []

    async def produce() -> None:
        for i in range(40):
            with contextlib.suppress(RedisUnavailableError):  # never acknowledged
                acknowledged.append(
                    await queue.enqueue(
                        ref("dialogue"),
                        {
                            "turns": 4,
                            "sleep": 0.1,
                            "counter": counter,
                            "url": server.url,
                        },
                        thread_id=f"t-{i}",
                        max_attempts=10,
                    )
                )
            await asyncio.sleep(0.05)

    try:
        await ready_workers(workers, 1)
        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.8)
        running_at_kill = len(await queue.list(status=RunStatus.RUNNING))
        server.kill()
        await asyncio.sleep(0.7)
        server.start()
        await producer
        records = [await queue.wait(r, timeout=60) for r in acknowledged]
    finally:
        inproc.stop()
        await inproc_task
        stop_processes(*workers)
        await queue.aclose()
        server.stop()
    assert len(acknowledged) >= 30
    assert running_at_kill >= 1
    assert [r.status for r in records] == [RunStatus.SUCCESS] * len(records)
    assert all(r.result["transcript"] == transcript(4) for r in records)
