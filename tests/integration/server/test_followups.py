"""Follow-ups on a real Redis: a lapsed claim is taken over by exactly one process,
a failed action is tried again, a follow-up whose record is gone is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dialogllm.redis.clients import AsyncClient, async_client
from dialogllm.server.followups import Followup, Followups
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    made = async_client(REDIS_URL, decode=True)
    yield made
    await made.aclose()


async def test_a_lapsed_follow_up_is_taken_over_once_and_done_once(
    client: AsyncClient, key_prefix: str
) -> None:
    done: list[str] = []
    gate = asyncio.Event()

    async def hang(followup: Followup) -> None:
        await gate.wait()  # the creating process, which dies before the run ends

    async def act(followup: Followup) -> None:
        done.append(followup.run_id)

    dying = Followups(client, prefix=key_prefix, act=hang, claim_ms=200)
    await dying.add(Followup("r-1", "t-1", webhook="http://hook/x"))
    assert await dying.read("r-1") == Followup("r-1", "t-1", "http://hook/x", False)
    await dying.stop()  # killed: no more renewals

    a = Followups(client, prefix=key_prefix, act=act, claim_ms=200)
    b = Followups(client, prefix=key_prefix, act=act, claim_ms=200)
    assert await a.sweep() == [] and await b.sweep() == []  # claim not lapsed yet
    await asyncio.sleep(0.3)
    taken = await asyncio.gather(a.sweep(), b.sweep())
    assert sorted(taken, key=len) == [[], ["r-1"]]  # one process took it
    for _ in range(50):
        if not await a.pending():
            break
        await asyncio.sleep(0.02)
    assert done == ["r-1"]
    assert await a.read("r-1") is None and await a.pending() == 0


async def test_a_failed_action_is_tried_again_after_its_claim_lapses(
    client: AsyncClient, key_prefix: str
) -> None:
    attempts: list[str] = []

    async def flaky(followup: Followup) -> None:
        attempts.append(followup.run_id)
        if len(attempts) == 1:
            raise ConnectionError("receiver away")

    followups = Followups(client, prefix=key_prefix, act=flaky, claim_ms=100)
    await followups.add(Followup("r-2", "t-2", delete_thread=True))
    await asyncio.sleep(0.05)
    assert attempts == ["r-2"] and await followups.pending() == 1  # kept
    await asyncio.sleep(0.15)
    assert await followups.sweep() == ["r-2"]
    await asyncio.sleep(0.05)
    assert attempts == ["r-2", "r-2"] and await followups.pending() == 0


async def test_a_follow_up_without_its_record_is_dropped(
    client: AsyncClient, key_prefix: str
) -> None:
    async def never(followup: Followup) -> None:
        raise AssertionError("nothing to do")

    followups = Followups(client, prefix=key_prefix, act=never, claim_ms=100)
    await client.zadd(f"{key_prefix}:srv:followups", {"r-3": 0})
    assert await followups.sweep() == ["r-3"]
    assert await followups.pending() == 0


async def test_the_background_loop_renews_claims_and_sweeps(
    client: AsyncClient, key_prefix: str
) -> None:
    gate = asyncio.Event()
    done: list[str] = []

    async def act(followup: Followup) -> None:
        await gate.wait()
        done.append(followup.run_id)

    owner = Followups(client, prefix=key_prefix, act=act, claim_ms=150)
    other = Followups(client, prefix=key_prefix, act=act, claim_ms=150)
    owner.start()
    owner.start()  # once is enough
    try:
        await owner.add(Followup("r-4", "t-4"))
        await asyncio.sleep(0.5)  # three claim periods: renewed, never lapsed
        assert await other.claim_lapsed() == []
        gate.set()
        await asyncio.sleep(0.05)
        assert done == ["r-4"] and await owner.pending() == 0
    finally:
        await owner.stop()


async def test_a_held_follow_up_is_renewed_then_done_by_its_request_or_here(
    client: AsyncClient, key_prefix: str
) -> None:
    acted: list[str] = []

    async def act(followup: Followup) -> None:
        acted.append(followup.run_id)

    here = Followups(client, prefix=key_prefix, act=act, claim_ms=100)
    other = Followups(client, prefix=key_prefix, act=act, claim_ms=100)
    await here.add(Followup("r-5", "t-5", delete_thread=True), held=True)
    await here.add(Followup("r-6", "t-6", delete_thread=True), held=True)
    for _ in range(3):  # a request waiting longer than a claim
        await asyncio.sleep(0.06)
        await here.sweep()
        assert await other.claim_lapsed() == []
    await here.release("r-5", done=True)  # the request deleted the thread itself
    await here.release("r-6", done=False)  # the client left: done here instead
    await asyncio.sleep(0.05)
    assert acted == ["r-6"] and await here.pending() == 0
