"""The queue and its workers on a real 3-node Redis Cluster started by the test.

A queue lives in one slot and each thread's lease and checkpoints in the thread's
slot, so a worker on a Cluster takes the lease and claims the run in two one-slot
calls. These tests run real worker processes against the cluster: runs on threads
spread over the slots finish with each turn once, a SIGKILLed worker's runs are
reclaimed and resumed, and cancellation and the event stream work there too.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.crc import key_slot

from dialogllm.leases import thread_lease
from dialogllm.queue import Queue, RunStatus, keys

from ..redis_cluster import redis_cluster
from .conftest import (
    REDIS_URL,
    ready_workers,
    ref,
    stop_processes,
    worker_log,
    worker_process,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TURNS = 5


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


@pytest.fixture
async def cluster_queue(cluster_url: str) -> AsyncIterator[Queue]:
    queue = Queue.from_url(
        cluster_url, cluster=True, key_prefix=f"qc-{uuid.uuid4().hex[:8]}"
    )
    yield queue
    await queue.aclose()


def cluster_worker(prefix: str, url: str) -> subprocess.Popen[bytes]:
    """A worker process on the cluster, with a 1 s lease so reclaims come fast."""
    return worker_process(
        prefix, url=url, concurrency=8, lease_ttl=1.0, extra=("--cluster",)
    )


async def test_runs_survive_a_killed_worker_on_a_cluster(
    cluster_url: str, cluster_queue: Queue, key_prefix: str
) -> None:
    queue = cluster_queue
    threads = [f"t-{i}" for i in range(6)]
    stream_slot = key_slot(
        keys.queue_key(queue.prefix, queue.name, keys.QueueKey.STREAM).encode()
    )
    lease_slots = {key_slot(thread_lease(queue.prefix, t).encode()) for t in threads}
    assert lease_slots - {stream_slot}, "some lease must live in another slot"

    counter = f"{key_prefix}:calls"  # counted on the plain Redis: any slot is fine
    workers = [cluster_worker(queue.prefix, cluster_url) for _ in range(2)]
    try:
        await ready_workers(workers, 2)  # a warm worker is there to take over
        runs = [
            await queue.enqueue(
                ref("dialogue"),
                {"turns": TURNS, "sleep": 0.3, "counter": counter, "url": REDIS_URL},
                thread_id=thread,
                max_attempts=10,
            )
            for thread in threads
        ]
        updates = 0
        async for event in queue.events(runs[0], timeout=30):
            updates += event.kind == "updates"
            if updates == 2:
                break
        running = [await queue.get(run) for run in runs]
        pid = int(str(running[0].worker).split("-")[-2])
        victim = next(w for w in workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)  # mid-dialogue, its runs still leased
        orphans = {
            r.run_id
            for r in running
            if r.status is RunStatus.RUNNING and r.worker == running[0].worker
        }
        records = [await queue.wait(run, timeout=60) for run in runs]
    finally:
        stop_processes(*workers)

    assert [r.status for r in records] == [RunStatus.SUCCESS] * len(runs)
    plain = redis.Redis.from_url(REDIS_URL)
    try:
        for thread, record in zip(threads, records, strict=True):
            expected = [f"{'alice' if n % 2 else 'bob'}: turn {n}" for n in range(1, 6)]
            assert record.result["transcript"] == expected  # each turn once
            calls = [
                int(plain.get(f"{counter}:{thread}:{n}") or 0)
                for n in range(1, TURNS + 1)
            ]
            assert all(c >= 1 for c in calls)
            assert sum(calls) <= TURNS + 1  # at most the turn the kill landed in
    finally:
        plain.close()
    logs = "\n".join(worker_log(w)[-3000:] for w in workers)
    for record in records:
        if record.run_id in orphans:  # taken over once, run twice in all
            assert (record.reclaims, record.attempts) == (1, 2), (record, logs)
    recovery = await queue.recovery()
    assert recovery.reclaims == len(orphans) >= 1
    assert all(r.downtime_s < 3.0 for r in recovery.recent)


async def test_cancel_events_and_errors_on_a_cluster(
    cluster_url: str, cluster_queue: Queue
) -> None:
    queue = cluster_queue
    delayed = await queue.enqueue(ref("noop"), {"x": 1}, delay=60)
    assert await queue.cancel(delayed) is RunStatus.CANCELLED
    worker = worker_process(queue.prefix, url=cluster_url, extra=("--cluster",))
    try:
        done = await queue.enqueue(ref("noop"), {"x": 2}, thread_id="c-1")
        broken = await queue.enqueue(ref("clashing"), {"n": 0}, thread_id="c-2")
        ok = await queue.wait(done, timeout=30)
        failed = await queue.wait(broken, timeout=30)
    finally:
        stop_processes(worker)
    assert (ok.status, ok.result) == (RunStatus.SUCCESS, {"x": 2})
    statuses = [e.status for e in [e async for e in queue.events(done)] if e.status]
    assert statuses == [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCESS]
    assert failed.status is RunStatus.ERROR
    assert failed.error is not None and "InvalidUpdateError" in failed.error
    assert (await queue.get(delayed)).status is RunStatus.CANCELLED


async def test_enqueue_record_on_a_cluster(cluster_queue: Queue) -> None:
    record = await cluster_queue.enqueue_record("m:g", {"x": 1}, thread_id="t-c")
    assert record == await cluster_queue.get(record.run_id)
    assert record.thread_id == "t-c" and record.input == {"x": 1}
