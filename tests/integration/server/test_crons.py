"""Crons through the real ``langgraph-sdk``: create (stateless and for a thread),
search, count, update, delete; typed 404/422 errors; custom auth on the ``crons``
resource; a cron fired once per tick by two API processes and two workers; and a
cron on the embedded Redis of ``dialogllm serve`` with nothing configured."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.queue import Crons, CronScheduler, Queue
from dialogllm.redis.clients import async_client
from dialogllm.server.graphs import system_assistant_id
from tests.conftest import REDIS_URL, delete_prefix
from tests.integration.server.conftest import (
    DIALOGLLM,
    Server,
    start_server,
)
from tests.integration.server.fleet import WorkerProcess, start_worker
from tests.integration.server.receiver import Receiver

pytestmark = pytest.mark.integration

CRON_APP = Path(__file__).with_name("cron_app") / "langgraph.json"
AUTH_APP = CRON_APP.with_name("langgraph_auth.json")
EVERY_SECOND = "* * * * * *"
CRON_FIELDS = {
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "payload",
    "user_id",
    "next_run_date",
    "metadata",
    "enabled",
}


@pytest.fixture(scope="module")
def cron_server(module_prefix: str) -> Iterator[Server]:
    started = start_server(module_prefix, config=CRON_APP)
    yield started
    started.stop()


async def test_crons_are_created_searched_counted_updated_and_deleted(
    cron_server: Server,
) -> None:
    client = get_client(url=cron_server.url)
    thread = await client.threads.create()
    stateless = await client.crons.create(
        "tick",
        schedule="0 9 * * *",
        input={"note": "daily"},
        metadata={"team": "a"},
        timezone="Europe/Paris",
    )
    threaded = await client.crons.create_for_thread(
        thread["thread_id"], "tick", schedule="*/5 * * * *", input={}
    )

    assert set(stateless) >= CRON_FIELDS
    assert stateless["assistant_id"] == system_assistant_id("tick")
    assert stateless["thread_id"] is None
    assert stateless["on_run_completed"] == "delete"
    assert stateless["timezone"] == "Europe/Paris"
    assert stateless["metadata"] == {"team": "a"}
    assert stateless["payload"]["input"] == {"note": "daily"}
    paris = datetime.fromisoformat(stateless["next_run_date"]).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert (paris.hour, paris.minute) == (9, 0)
    assert threaded["thread_id"] == thread["thread_id"]

    found = await client.crons.search(assistant_id="tick")
    assert {c["cron_id"] for c in found} == {stateless["cron_id"], threaded["cron_id"]}
    by_thread = await client.crons.search(thread_id=thread["thread_id"])
    assert [c["cron_id"] for c in by_thread] == [threaded["cron_id"]]
    assert await client.crons.count(assistant_id="tick") == 2
    assert await client.crons.count(metadata={"team": "a"}) == 1
    picked = await client.crons.search(select=["cron_id", "schedule"], limit=1)
    assert set(picked[0]) == {"cron_id", "schedule"}

    end = datetime.now(UTC) + timedelta(days=30)
    updated = await client.crons.update(
        stateless["cron_id"], schedule="30 10 * * *", end_time=end, input={"n": 5}
    )
    assert updated["schedule"] == "30 10 * * *"
    assert datetime.fromisoformat(updated["end_time"]) == end.replace(
        microsecond=end.microsecond // 1000 * 1000
    )
    assert updated["payload"]["input"] == {"n": 5}
    assert updated["next_run_date"] != stateless["next_run_date"]
    cleared = await client.crons.update(stateless["cron_id"], end_time=None)
    assert cleared["end_time"] is None
    reconfigured = await client.crons.update(
        stateless["cron_id"],
        metadata={"team": "b"},
        config={"configurable": {"tone": "dry"}},
        stream_mode="updates",
    )
    assert reconfigured["metadata"] == {"team": "b"}
    assert reconfigured["payload"]["config"] == {"configurable": {"tone": "dry"}}
    with pytest.raises(UnprocessableEntityError, match="in the past"):
        await client.crons.update(
            stateless["cron_id"], end_time=datetime.now(UTC) - timedelta(1)
        )
    assert await client.crons.search(assistant_id="no-such-assistant") == []
    disabled = await client.crons.update(threaded["cron_id"], enabled=False)
    assert disabled["enabled"] is False and disabled["next_run_date"] is None

    await client.crons.delete(stateless["cron_id"])
    assert await client.crons.count() == 1
    with pytest.raises(NotFoundError):
        await client.crons.delete(stateless["cron_id"])
    with pytest.raises(NotFoundError):
        await client.crons.update(stateless["cron_id"], schedule="0 9 * * *")
    await client.crons.delete(threaded["cron_id"])


async def test_cron_runs_get_thread_records_and_webhooks_like_api_runs(
    cron_server: Server,
) -> None:
    client = get_client(url=cron_server.url)
    receiver = Receiver()
    try:
        kept = await client.crons.create(
            "tick",
            schedule=EVERY_SECOND,
            input={"note": "kept"},
            metadata={"team": "k"},
            webhook=receiver.url,
            on_run_completed="keep",
        )
        dropped = await client.crons.create(
            "tick", schedule=EVERY_SECOND, input={}, webhook=receiver.url
        )
        thread = await client.threads.create()
        on_thread = await client.crons.create_for_thread(
            thread["thread_id"], "tick", schedule=EVERY_SECOND, input={}
        )
        bodies = await asyncio.to_thread(receiver.wait, 6, 60)
        for cron in (kept, dropped, on_thread):
            await client.crons.delete(cron["cron_id"])
        by_cron = Counter(b["metadata"].get("cron_id") for b in bodies)
        assert by_cron[kept["cron_id"]] >= 2 and by_cron[dropped["cron_id"]] >= 2
        assert on_thread["cron_id"] not in by_cron  # it has no webhook
        for body in bodies:
            assert body["status"] == "success" and body["values"]["n"] == 1
        # a kept stateless firing's thread is a thread of the API, with its run
        kept_body = next(
            b for b in bodies if b["metadata"]["cron_id"] == kept["cron_id"]
        )
        kept_thread = await client.threads.get(kept_body["thread_id"])
        assert kept_thread["metadata"]["team"] == "k"
        assert kept_thread["metadata"]["graph_id"] == "tick"
        assert kept_thread["metadata"]["cron_id"] == kept["cron_id"]
        run = await client.runs.get(kept_body["thread_id"], kept_body["run_id"])
        assert run["status"] == "success"
        found = await client.threads.search(metadata={"cron_id": kept["cron_id"]})
        assert kept_body["thread_id"] in {t["thread_id"] for t in found}
        # a deleted one's thread goes once its webhook was sent
        gone = next(b for b in bodies if b["metadata"]["cron_id"] == dropped["cron_id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                await client.threads.get(gone["thread_id"])
            except NotFoundError:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("a stateless cron's thread was not deleted")
        # the thread cron's runs are the thread's latest runs
        latest = (await client.threads.get(thread["thread_id"]))["metadata"]
        assert latest["graph_id"] == "tick"
        runs = await client.runs.list(thread["thread_id"])
        assert runs and all(
            r["metadata"].get("cron_id") == on_thread["cron_id"] for r in runs
        )
    finally:
        receiver.http.shutdown()


async def test_bad_crons_get_typed_422_and_404(cron_server: Server) -> None:
    client = get_client(url=cron_server.url)
    with pytest.raises(UnprocessableEntityError, match="cron schedule"):
        await client.crons.create("tick", schedule="every morning")
    with pytest.raises(UnprocessableEntityError, match="timezone"):
        await client.crons.create("tick", schedule="0 9 * * *", timezone="Mars/Base")
    with pytest.raises(UnprocessableEntityError, match="in the past"):
        await client.crons.create(
            "tick", schedule="0 9 * * *", end_time=datetime.now(UTC) - timedelta(1)
        )
    with pytest.raises(UnprocessableEntityError, match="webhook"):
        await client.crons.create("tick", schedule="0 9 * * *", webhook="ftp://x/y")
    with pytest.raises(NotFoundError, match="Assistant"):
        await client.crons.create("no-such-graph", schedule="0 9 * * *")
    with pytest.raises(NotFoundError, match="Thread"):
        await client.crons.create_for_thread(
            "no-such-thread", "tick", schedule="* * * * *"
        )
    async with httpx.AsyncClient(base_url=cron_server.url) as http:
        reply = await http.post("/runs/crons", json={"schedule": "0 9 * * *"})
        assert reply.status_code == 422
        assert "assistant_id" in reply.json()["detail"]
    assert await client.crons.count() == 0


async def test_crons_follow_the_custom_auth_of_the_crons_resource(
    module_prefix: str,
) -> None:
    server = start_server(f"{module_prefix}-auth", config=AUTH_APP)
    try:
        ada = get_client(url=server.url, headers={"Authorization": "Bearer token-ada"})
        bo = get_client(url=server.url, headers={"Authorization": "Bearer token-bo"})
        cron = await ada.crons.create("tick", schedule="0 9 * * *")
        assert cron["metadata"] == {"owner": "ada"}
        assert cron["user_id"] == "ada"
        assert await ada.crons.count() == 1
        assert await bo.crons.count() == 0
        assert await bo.crons.search() == []
        with pytest.raises(NotFoundError):
            await bo.crons.delete(cron["cron_id"])
        with pytest.raises(NotFoundError):
            await bo.crons.update(cron["cron_id"], schedule="0 10 * * *")
        theirs = await ada.threads.create()
        with pytest.raises(NotFoundError):
            await bo.crons.create_for_thread(
                theirs["thread_id"], "tick", schedule="0 9 * * *"
            )
        await ada.crons.delete(cron["cron_id"])
        assert await ada.crons.count() == 0
    finally:
        server.stop()


def _cron_ticks(runs: list[object], cron_id: str) -> Counter[int]:
    ticks: Counter[int] = Counter()
    for run in runs:
        meta = run.options.metadata or {}
        if meta.get("cron_id") == cron_id:
            ticks[int(meta["cron_tick"])] += 1
    return ticks


async def test_two_apis_and_two_workers_fire_a_cron_once_per_tick_for_20_ticks(
    key_prefix: str,
) -> None:
    apis = [start_server(key_prefix, "--no-worker", config=CRON_APP) for _ in range(2)]
    workers: list[WorkerProcess] = [
        start_worker(key_prefix, "--lease-ttl", "2", config=CRON_APP) for _ in range(2)
    ]
    queue = Queue.from_url(REDIS_URL, key_prefix=key_prefix)
    saver = AsyncRedisSaver(
        async_client(REDIS_URL, decode=False), key_prefix=key_prefix
    )
    try:
        client = get_client(url=apis[0].url)
        cron = await client.crons.create("tick", schedule=EVERY_SECOND, input={"n": 0})
        deadline = time.monotonic() + 90
        ticks: Counter[int] = Counter()
        while time.monotonic() < deadline and len(ticks) < 20:
            await asyncio.sleep(0.5)
            ticks = _cron_ticks(await queue.list(limit=10_000), cron["cron_id"])
        await client.crons.delete(cron["cron_id"])
        runs = await queue.list(limit=10_000)
        ticks = _cron_ticks(runs, cron["cron_id"])
        assert len(ticks) >= 20, [p.output() for p in [*apis, *workers]]
        assert max(ticks.values()) == 1, ticks.most_common(3)
        first, last = min(ticks), max(ticks)
        assert [t for t in range(first, last + 1, 1000) if t not in ticks] == []
        # the workers ran them, and their stateless threads were deleted after
        for run in runs:
            done = await queue.wait(run.run_id, timeout=60)
            assert done.status.value == "success", done.error
        await asyncio.sleep(2.5)  # a scheduler pass cleans finished firings up
        left = [
            r.thread_id
            for r in runs
            if await saver.aget_tuple({"configurable": {"thread_id": r.thread_id}})
        ]
        assert left == []
        info = httpx.get(f"{apis[1].url}/info").json()
        assert info["flags"]["crons"] is True
    finally:
        for process in [*apis, *workers]:
            process.stop()
        await queue.aclose()
        await saver.client.aclose()


async def test_a_thread_cron_on_the_embedded_redis_of_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALOGLLM_DATA_DIR", raising=False)
    (tmp_path / "graphs.py").write_text(CRON_APP.with_name("graphs.py").read_text())
    config = tmp_path / "langgraph.json"
    config.write_text(CRON_APP.read_text())
    server = start_server("dialogllm", config=config, url=None)
    try:
        client = get_client(url=server.url)
        thread = await client.threads.create()
        cron = await client.crons.create_for_thread(
            thread["thread_id"], "tick", schedule=EVERY_SECOND, input={}
        )
        deadline = time.monotonic() + 60
        n = 0
        while time.monotonic() < deadline and n < 3:
            await asyncio.sleep(0.5)
            state = await client.threads.get_state(thread["thread_id"])
            n = (state["values"] or {}).get("n", 0)
        await client.crons.delete(cron["cron_id"])
        assert n >= 3
        assert (tmp_path / ".dialogllm" / "redis.sock").is_socket()
    finally:
        server.stop()
        subprocess.run(
            [DIALOGLLM, "redis", "stop"],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "DIALOGLLM_REDIS_URL"},
            capture_output=True,
            timeout=60,
        )


async def test_a_firing_whose_cron_was_deleted_before_any_api_claimed_it(
    module_prefix: str,
) -> None:
    """A tick fired while no API process ran, its cron deleted before one started:
    the API that starts later still gives it its thread record and webhook."""
    prefix = f"{module_prefix}-orphan"
    receiver = Receiver()
    queue = Queue(async_client(REDIS_URL, decode=True), key_prefix=prefix)
    saver = AsyncRedisSaver(async_client(REDIS_URL, decode=False), key_prefix=prefix)
    crons = Crons(queue)
    server: Server | None = None
    try:
        cron = await crons.create(
            f"{CRON_APP.parent / 'graphs.py'}:tick",
            EVERY_SECOND,
            input={},
            followed=True,  # as the API makes its crons
            metadata={"team": "o"},
            payload={"webhook": receiver.url},
        )
        await asyncio.sleep(1.2)
        await CronScheduler(queue, saver).tick()  # fires it; no API follows it yet
        [run] = await queue.list()
        await crons.delete(cron.cron_id)
        server = start_server(prefix, config=CRON_APP)  # its worker runs the run
        [body] = await asyncio.to_thread(receiver.wait, 1, 60)
        assert body["run_id"] == run.run_id and body["status"] == "success"
        assert body["metadata"]["cron_id"] == cron.cron_id
        client = get_client(url=server.url)
        deadline = time.monotonic() + 30  # stateless: deleted after the webhook
        while True:
            try:
                await client.threads.get(run.thread_id)
            except NotFoundError:
                break
            assert time.monotonic() < deadline, "the firing's thread was kept"
            await asyncio.sleep(0.2)
        assert len(receiver.bodies) == 1
    finally:
        receiver.http.shutdown()
        if server is not None:
            server.stop()
        await queue.aclose()
        await saver.client.aclose()
        delete_prefix(REDIS_URL, prefix)
