"""``read_hashes``: many hashes in one round trip, in order, ``{}`` for a missing
one; on the shared TCP Redis, on the embedded default (a unix socket) and on a
Redis Cluster (keys in several slots)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dialogllm.redis import EmbeddedRedis, async_client, read_hashes
from tests.conftest import REDIS_URL
from tests.integration.redis_cluster import redis_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(params=["tcp", "embedded", "cluster"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, bool]]:
    """A Redis URL and whether it is a Cluster (the shared Redis's keys go with the
    test's key prefix; the other servers are the test's own)."""
    if request.param == "tcp":
        yield REDIS_URL, False
    elif request.param == "embedded":
        server = EmbeddedRedis(tmp_path / "data")
        yield server.ensure_running(), False
        server.stop()
    else:
        with redis_cluster() as cluster_url:
            yield cluster_url, True


async def test_hashes_come_back_in_order_with_nothing_for_a_missing_one(
    target: tuple[str, bool], key_prefix: str
) -> None:
    url, cluster = target
    client = async_client(url, decode=True, cluster=cluster)
    keys = [f"{key_prefix}:h:{{{n}}}" for n in ("a", "b", "gone", "c")]
    try:
        for key, n in zip(keys, (1, 2, None, 3), strict=True):
            if n is not None:
                await client.hset(key, mapping={"n": n, "name": key})
        assert await read_hashes(client, keys) == [
            {"n": "1", "name": keys[0]},
            {"n": "2", "name": keys[1]},
            {},
            {"n": "3", "name": keys[3]},
        ]
        assert await read_hashes(client, []) == []
        raw = async_client(url, decode=False, cluster=cluster)
        try:
            assert (await read_hashes(raw, keys[:1])) == [
                {b"n": b"1", b"name": keys[0].encode()}
            ]
        finally:
            await raw.aclose()
    finally:
        await client.aclose()
