"""The heartbeat thread, worker options and the worker's command line, without Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError

from dialogllm.errors import ConfigError
from dialogllm.queue import Queue, Worker, backoff_delay
from dialogllm.queue import __main__ as entry
from dialogllm.queue.execution import failing_node
from dialogllm.queue.heartbeat import Heartbeat


class FakePipe:
    def __init__(self, replies: list[Any] | Exception) -> None:
        self.replies = replies
        self.calls: list[tuple[str, Any]] = []

    def hget(self, key: str, field: str) -> None:
        self.calls.append(("hget", key))

    def execute(self) -> list[Any]:
        if isinstance(self.replies, Exception):
            raise self.replies
        return self.replies


class FakeClient:
    def __init__(self, pipe: FakePipe) -> None:
        self.pipe = pipe

    def register_script(self, source: str) -> Any:
        def call(keys: list[str], args: list[Any], client: FakePipe) -> None:
            client.calls.append(("renew", keys[0]))

        return call

    def pipeline(self, transaction: bool = True) -> FakePipe:
        return self.pipe


async def beat(
    replies: list[Any] | Exception, ttl: float = 30.0
) -> list[tuple[str, ...]]:
    reports: list[tuple[str, ...]] = []
    hb = Heartbeat(
        FakeClient(FakePipe(replies)),  # type: ignore[arg-type]
        prefix="p",
        queue="q",
        ttl=ttl,
        loop=asyncio.get_running_loop(),
        on_lost=lambda run: reports.append(("lost", run)),
        on_signal=lambda run, sig: reports.append(("signal", run, sig)),
    )
    hb.add("r1", "t1", "L1")
    hb.add("r2", "t2", "L2")
    hb.tick()
    await asyncio.sleep(0.01)
    return reports


async def test_a_renewed_lease_reports_nothing_but_signals() -> None:
    assert await beat([1, None, 1, b"cancel"]) == [("signal", "r2", "cancel")]


async def test_a_lease_taken_over_is_reported_lost() -> None:
    assert await beat([0, None, 1, None]) == [("lost", "r1")]


async def test_redis_down_for_less_than_the_lease_reports_nothing() -> None:
    assert await beat(RedisConnectionError("down")) == []


async def test_redis_down_for_longer_than_the_lease_reports_lost() -> None:
    reports = await beat(RedisConnectionError("down"), ttl=0.0)
    assert sorted(reports) == [("lost", "r1"), ("lost", "r2")]


class RemovingPipe(FakePipe):
    """A pipe whose round trip races with the worker ending run ``r1``: the worker
    removes the run from the heartbeat, then releases its lease, while the renewal is
    in flight, so the renewal finds the lease gone."""

    def __init__(self, replies: list[Any]) -> None:
        super().__init__(replies)
        self.heartbeat: Heartbeat | None = None

    def execute(self) -> list[Any]:
        assert self.heartbeat is not None
        self.heartbeat.remove("r1")
        return super().execute()


async def test_a_lease_released_at_a_run_end_is_not_reported_taken_over(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reports: list[tuple[str, ...]] = []
    pipe = RemovingPipe([0, None, 1, None])
    hb = Heartbeat(
        FakeClient(pipe),  # type: ignore[arg-type]
        prefix="p",
        queue="q",
        ttl=30.0,
        loop=asyncio.get_running_loop(),
        on_lost=lambda run: reports.append(("lost", run)),
        on_signal=lambda run, sig: reports.append(("signal", run, sig)),
    )
    pipe.heartbeat = hb
    hb.add("r1", "t1", "L1")
    hb.add("r2", "t2", "L2")
    hb.tick()
    await asyncio.sleep(0.01)
    assert reports == []
    captured = capsys.readouterr()
    assert "taken over" not in captured.out + captured.err


async def test_a_run_added_again_under_a_new_lease_is_not_dropped() -> None:
    """A renewal of the run's old lease that fails must not remove the run's new
    lease (the run ended and started again on this worker meanwhile)."""
    reports: list[tuple[str, ...]] = []

    class ReAddingPipe(FakePipe):
        def execute(self) -> list[Any]:
            hb.remove("r1")
            hb.add("r1", "t1", "L1-new")
            return super().execute()

    pipe = ReAddingPipe([0, None])
    hb = Heartbeat(
        FakeClient(pipe),  # type: ignore[arg-type]
        prefix="p",
        queue="q",
        ttl=30.0,
        loop=asyncio.get_running_loop(),
        on_lost=lambda run: reports.append(("lost", run)),
        on_signal=lambda run, sig: reports.append(("signal", run, sig)),
    )
    hb.add("r1", "t1", "L1")
    hb.tick()
    await asyncio.sleep(0.01)
    assert reports == []
    pipe.replies = [1, None]
    pipe.calls.clear()
    hb.tick()
    assert ("renew", "p:t:{t1}:lease") in pipe.calls  # the new lease is still renewed


async def test_the_heartbeat_thread_ticks_and_stops() -> None:
    pipe = FakePipe([1, None])
    hb = Heartbeat(
        FakeClient(pipe),  # type: ignore[arg-type]
        prefix="p",
        queue="q",
        ttl=0.03,
        loop=asyncio.get_running_loop(),
        on_lost=lambda run: None,
        on_signal=lambda run, sig: None,
    )
    hb.tick()  # nothing held: no round trip
    assert pipe.calls == []
    hb.add("r1", "t1", "L1")
    hb.start()
    await asyncio.sleep(0.1)
    hb.remove("r1")
    hb.stop()
    hb.join(1)
    assert ("renew", "p:t:{t1}:lease") in pipe.calls


def test_backoff_doubles_and_is_capped() -> None:
    assert 3.2 <= backoff_delay(3, 1.0, 60.0) <= 4.0
    assert 48.0 <= backoff_delay(20, 1.0, 60.0) <= 60.0


def test_worker_and_queue_refuse_nonsense_options() -> None:
    with pytest.raises(ValueError):
        Worker(concurrency=0)
    with pytest.raises(ValueError):
        Worker(lease_ttl=0)
    client = aredis.Redis(decode_responses=True)
    with pytest.raises(ConfigError):
        Queue(aredis.Redis(decode_responses=False))
    with pytest.raises(ConfigError):
        Queue(client, retention=0)
    with pytest.raises(ConfigError):
        Queue(client, max_attempts=0)


async def test_enqueue_refuses_bad_arguments_before_any_round_trip() -> None:
    queue = Queue(aredis.Redis(decode_responses=True), key_prefix="p")
    with pytest.raises(ValueError):
        await queue.enqueue("g:x", multitask="shout")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await queue.enqueue("g:x", max_attempts=0)
    with pytest.raises(ValueError):
        await queue.enqueue("")
    with pytest.raises(ValueError):
        await queue.enqueue("g:x", delay=-1)


def test_the_command_line_builds_a_worker_and_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Worker] = []

    async def fake_run(self: Worker, **_: Any) -> None:
        seen.append(self)

    monkeypatch.setattr(Worker, "run", fake_run)
    entry.main(
        [
            "--redis-url",
            "redis://127.0.0.1:1/0",
            "--key-prefix",
            "app",
            "--concurrency",
            "3",
            "--lease-ttl",
            "9",
            "--log-format",
            "console",
        ]
    )
    entry.main(["--redis-url", "redis://127.0.0.1:1/0", "--cluster"])
    worker, on_cluster = seen
    assert (worker.prefix, worker.concurrency, worker.lease_ttl) == ("app", 3, 9.0)
    assert (worker.cluster, on_cluster.cluster) == (False, True)


def test_the_failing_node_comes_from_langgraphs_task_note() -> None:
    exc = RuntimeError("boom")
    assert failing_node(exc) == ""
    exc.add_note("some other note")
    exc.add_note("During task with name 'judge' and id '1f0-abc'")
    exc.add_note("During task with name 'debate' and id '1f0-def'")
    assert failing_node(exc) == "judge"  # the innermost node
