"""The saver's own guarantees: fencing, TTL, isolation, serialization, bad input."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from redis.asyncio.retry import Retry as ARetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from dialogllm.checkpoint import (
    AsyncRedisSaver,
    FencingToken,
    RedisSaver,
    with_fencing_token,
)
from dialogllm.checkpoint import keys as K
from dialogllm.checkpoint.base import next_version
from dialogllm.errors import (
    CheckpointError,
    CorruptCheckpointError,
    FencedWriteError,
    InvalidCheckpointConfigError,
    PayloadTooLargeError,
    RedisUnavailableError,
)
from tests.redis_servers import RedisServer, free_port

pytestmark = pytest.mark.integration


def cfg(thread_id: str, ns: str = "", cid: str | None = None) -> Any:
    c: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if cid:
        c["checkpoint_id"] = cid
    return {"configurable": c}


def checkpoint(values: dict[str, Any] | None = None) -> Any:
    cp = empty_checkpoint()
    values = values or {}
    cp["channel_values"] = values
    cp["channel_versions"] = {k: next_version(None) for k in values}
    return cp


async def put(saver: AsyncRedisSaver, config: Any, values: dict[str, Any]) -> Any:
    cp = checkpoint(values)
    return await saver.aput(
        config, cp, {"source": "loop", "step": 0}, dict(cp["channel_versions"])
    )


# --- fencing --------------------------------------------------------------------------


async def _grant_lease(
    client: aredis.Redis, prefix: str, thread_id: str
) -> FencingToken:
    fence = await client.incr(K.thread_fence_counter(prefix, thread_id))
    lease_id = uuid.uuid4().hex
    await client.hset(
        K.thread_lease(prefix, thread_id), mapping={"id": lease_id, "fence": fence}
    )
    return FencingToken(lease_id=lease_id, fence=int(fence))


async def test_superseded_lease_holder_cannot_write(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    old = await _grant_lease(aredis_client, key_prefix, "f-1")
    stored = await put(saver, with_fencing_token(cfg("f-1"), old), {"a": 1})

    new = await _grant_lease(aredis_client, key_prefix, "f-1")  # another worker took it
    assert new.fence > old.fence
    with pytest.raises(FencedWriteError, match="lost the thread's lease"):
        await put(saver, with_fencing_token(cfg("f-1"), old), {"a": 2})
    with pytest.raises(FencedWriteError):
        await saver.aput_writes(
            with_fencing_token(stored, old), [("a", 3)], task_id="t1"
        )
    tup = await saver.aget_tuple(cfg("f-1"))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"a": 1}
    assert tup.pending_writes == []

    # the current holder writes fine, through the config or a saver-level token
    await put(saver, with_fencing_token(cfg("f-1"), new), {"a": 4})
    await put(saver.with_fencing(new), cfg("f-1"), {"a": 5})
    latest = await saver.aget_tuple(cfg("f-1"))
    assert latest is not None and latest.checkpoint["channel_values"] == {"a": 5}


async def test_lapsed_lease_refuses_its_holder(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    token = await _grant_lease(aredis_client, key_prefix, "f-2")
    await aredis_client.delete(K.thread_lease(key_prefix, "f-2"))  # the lease expired
    with pytest.raises(FencedWriteError):
        await put(saver, with_fencing_token(cfg("f-2"), token), {"a": 1})
    assert await saver.aget_tuple(cfg("f-2")) is None


# --- TTL ------------------------------------------------------------------------------


async def _ttls(client: aredis.Redis, prefix: str, thread_id: str) -> dict[str, int]:
    out = {}
    for suffix in K.THREAD_KEY_SUFFIXES:
        key = K.thread_key(prefix, thread_id, suffix)
        if await client.exists(key):
            out[suffix] = await client.pttl(key)
    return out


async def test_ttl_covers_every_key_of_a_thread_and_refreshes_on_write(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix, ttl=100)
    stored = await put(saver, cfg("ttl-1"), {"a": 1})
    await saver.aput_writes(stored, [("a", 2)], task_id="t")
    ttls = await _ttls(aredis_client, key_prefix, "ttl-1")
    assert {"idx", "cp", "blobs", "w", "meta"} <= set(ttls)
    assert all(90_000 < t <= 100_000 for t in ttls.values()), ttls

    await aredis_client.pexpire(K.thread_key(key_prefix, "ttl-1", "cp"), 5_000)
    await put(saver, stored, {"a": 3})
    assert await aredis_client.pttl(K.thread_key(key_prefix, "ttl-1", "cp")) > 90_000


async def test_refresh_on_read_and_pinning(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(
        aredis_client, key_prefix=key_prefix, ttl=100, refresh_on_read=True
    )
    await put(saver, cfg("ttl-2"), {"a": 1})
    cp_key = K.thread_key(key_prefix, "ttl-2", "cp")
    await aredis_client.pexpire(cp_key, 5_000)
    assert await saver.aget_tuple(cfg("ttl-2")) is not None
    assert await aredis_client.pttl(cp_key) > 90_000

    await saver.apin_thread("ttl-2")
    assert set((await _ttls(aredis_client, key_prefix, "ttl-2")).values()) == {-1}
    await put(saver, cfg("ttl-2"), {"a": 2})  # a write keeps a pinned thread pinned
    assert set((await _ttls(aredis_client, key_prefix, "ttl-2")).values()) == {-1}

    await saver.aset_thread_ttl("ttl-2", 10)
    assert 0 < await aredis_client.pttl(cp_key) <= 10_000
    await saver.aunpin_thread("ttl-2")
    assert await aredis_client.pttl(cp_key) > 90_000


async def test_expired_thread_is_gone_entirely(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix, ttl=0.3)
    stored = await put(saver, cfg("ttl-3"), {"a": 1})
    await saver.aput_writes(stored, [("a", 2)], task_id="t")
    await asyncio.sleep(0.5)
    assert await saver.aget_tuple(cfg("ttl-3")) is None
    assert [k async for k in aredis_client.scan_iter(match=f"{key_prefix}:t:*")] == []


# --- isolation, namespaces, serialization ---------------------------------------------


async def test_key_prefixes_isolate_apps_sharing_thread_ids(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    app1 = AsyncRedisSaver(aredis_client, key_prefix=f"{key_prefix}-1")
    app2 = AsyncRedisSaver(aredis_client, key_prefix=f"{key_prefix}-2")
    try:
        await put(app1, cfg("1"), {"who": "app1"})
        assert await app2.aget_tuple(cfg("1")) is None
        assert [t async for t in app2.alist(None)] == []
        assert len([t async for t in app1.alist(None)]) == 1
    finally:
        await app1.adelete_thread("1")


async def test_list_threads_names_each_thread_of_the_prefix_once_sorted(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    other = AsyncRedisSaver(aredis_client, key_prefix=f"{key_prefix}:other")
    assert await saver.alist_threads() == []
    await put(saver, cfg("t-2"), {"n": 1})
    await put(saver, cfg("t-1"), {"n": 1})
    await put(saver, cfg("t-1", ns="sub"), {"n": 2})
    await put(other, cfg("t-3"), {"n": 1})
    assert await saver.alist_threads() == ["t-1", "t-2"]
    assert await saver.alist_threads(limit=1) == ["t-1"]
    assert await other.alist_threads() == ["t-3"]


def test_sync_list_threads_matches_the_async_one(key_prefix: str) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        saver = RedisSaver(client, key_prefix=key_prefix)
        assert saver.list_threads() == []
        for thread_id in ("s-2", "s-1"):
            cp = checkpoint({"a": 1})
            versions = dict(cp["channel_versions"])
            saver.put(cfg(thread_id), cp, {"source": "loop", "step": 0}, versions)
        assert saver.list_threads() == ["s-1", "s-2"]
        assert saver.list_threads(limit=1) == ["s-1"]
    finally:
        client.close()


async def test_namespaces_and_thread_ids_are_opaque(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    weird_thread = "a:b|c{d}%e"
    namespaces = ["", "outer:1|inner:2", "outer", "outer:1", "1:x"]
    for i, ns in enumerate(namespaces):
        await put(saver, cfg(weird_thread, ns), {"i": i})
    for i, ns in enumerate(namespaces):
        found = [t async for t in saver.alist(cfg(weird_thread, ns))]
        assert len(found) == 1 and found[0].checkpoint["channel_values"] == {"i": i}
    assert (
        len(
            [
                t
                async for t in saver.alist(
                    {"configurable": {"thread_id": weird_thread}}
                )
            ]
        )
        == 5
    )
    await saver.adelete_thread(weird_thread)
    assert [k async for k in aredis_client.scan_iter(match=f"{key_prefix}:*")] == []


class AesGcmCipher:
    """A CipherProtocol on the cryptography package's AES-GCM."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.aead = AESGCM(key)

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return "aesgcm", nonce + self.aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "aesgcm"
        return self.aead.decrypt(ciphertext[:12], ciphertext[12:], None)


async def test_encrypted_serializer_keeps_values_unreadable_at_rest(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    serde = EncryptedSerializer(AesGcmCipher(b"0123456789abcdef"))
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix, serde=serde)
    await put(saver, cfg("enc-1"), {"secret": "the launch code is 1234"})
    blobs_key = K.thread_key(key_prefix, "enc-1", "blobs")
    raw = b"".join((await aredis_client.hgetall(blobs_key)).values())
    assert b"launch code" not in raw and raw
    tup = await saver.aget_tuple(cfg("enc-1"))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"secret": "the launch code is 1234"}
    plain = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    with pytest.raises(CorruptCheckpointError):
        await plain.aget_tuple(cfg("enc-1"))


async def test_no_pickle_fallback_for_unknown_objects(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    class Opaque:
        def __init__(self) -> None:
            self.handle = threading.Lock()

    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    with pytest.raises(Exception) as info:
        await put(saver, cfg("pk-1"), {"obj": Opaque()})
    assert "pickle" not in type(info.value).__name__.lower()
    raw = [k async for k in aredis_client.scan_iter(match=f"{key_prefix}:t:*pk-1*")]
    assert raw == []


async def test_values_are_stored_binary_without_base64(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    payload = bytes(range(256)) * 4
    await put(saver, cfg("bin-1"), {"raw": payload})
    blob = next(
        iter(
            (
                await aredis_client.hgetall(K.thread_key(key_prefix, "bin-1", "blobs"))
            ).values()
        )
    )
    assert payload in blob
    tup = await saver.aget_tuple(cfg("bin-1"))
    assert tup is not None and tup.checkpoint["channel_values"]["raw"] == payload


async def test_writes_before_their_checkpoint_are_kept(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    """durability='async' can deliver writes before the checkpoint they belong to."""
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    cp = checkpoint({"a": 1})
    early = cfg("early-1", cid=cp["id"])
    await saver.aput_writes(early, [("a", 2), ("__interrupt__", "stop")], task_id="t")
    await saver.aput(
        cfg("early-1"),
        cp,
        {"source": "loop", "step": 1},
        {"a": cp["channel_versions"]["a"]},
    )
    tup = await saver.aget_tuple(cfg("early-1"))
    assert tup is not None
    assert sorted(w[1] for w in tup.pending_writes or []) == ["__interrupt__", "a"]


async def test_special_writes_overwrite_regular_ones_do_not(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    stored = await put(saver, cfg("w-1"), {"a": 1})
    await saver.aput_writes(stored, [("a", "first"), ("__error__", "e1")], task_id="t")
    await saver.aput_writes(stored, [("a", "second"), ("__error__", "e2")], task_id="t")
    await saver.aput_writes(stored, [("b", "other")], task_id="s", task_path="~0")
    tup = await saver.aget_tuple(stored)
    assert tup is not None
    writes = {(w[0], w[1]): w[2] for w in tup.pending_writes or []}
    assert writes == {
        ("t", "a"): "first",
        ("t", "__error__"): "e2",
        ("s", "b"): "other",
    }
    # writes_sort_key order: task_path first ('' < '~0'), then task id, then idx
    assert [w[0] for w in tup.pending_writes or []] == ["t", "t", "s"]


# --- the async saver's sync methods ---------------------------------------------------


async def test_async_saver_sync_methods_work_from_other_threads_only(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    await put(saver, cfg("sync-1"), {"a": 1})
    with pytest.raises(CheckpointError, match="own event loop"):
        saver.get_tuple(cfg("sync-1"))
    found: list[Any] = []

    def worker() -> None:
        found.append(saver.get_tuple(cfg("sync-1")))
        found.append(list(saver.list(cfg("sync-1"))))

    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.01)
    assert found[0] is not None and found[0].checkpoint["channel_values"] == {"a": 1}
    assert len(found[1]) == 1


def test_async_saver_made_outside_a_loop_refuses_sync_calls() -> None:
    saver = AsyncRedisSaver(aredis.Redis.from_url("redis://127.0.0.1:6379/0"))
    with pytest.raises(CheckpointError, match="use RedisSaver"):
        saver.get_tuple(cfg("x"))


# --- bad input and failures -----------------------------------------------------------


async def test_config_without_thread_id_is_a_clear_error(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    with pytest.raises(InvalidCheckpointConfigError, match="thread_id"):
        await saver.aget_tuple({"configurable": {}})
    with pytest.raises(InvalidCheckpointConfigError, match="thread_id"):
        await put(saver, {"configurable": {"checkpoint_ns": ""}}, {"a": 1})
    with pytest.raises(InvalidCheckpointConfigError, match="checkpoint_id"):
        await saver.aput_writes(cfg("t"), [("a", 1)], task_id="x")
    with pytest.raises(InvalidCheckpointConfigError, match="strategy"):
        await saver.aprune(["t"], strategy="everything")


def test_client_that_decodes_responses_is_refused() -> None:
    with pytest.raises(InvalidCheckpointConfigError, match="decode_responses"):
        RedisSaver(
            redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
        )
    with pytest.raises(InvalidCheckpointConfigError, match="key_prefix"):
        RedisSaver(redis.Redis.from_url("redis://127.0.0.1:6379/0"), key_prefix="a{b}")


async def test_corrupt_blob_is_a_typed_error(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    await put(saver, cfg("bad-1"), {"a": "fine"})
    blobs_key = K.thread_key(key_prefix, "bad-1", "blobs")
    field = next(iter(await aredis_client.hkeys(blobs_key)))
    await aredis_client.hset(blobs_key, field, K.lp("msgpack") + b"\xc1\xc1garbage")
    with pytest.raises(CorruptCheckpointError, match="channel 'a'"):
        await saver.aget_tuple(cfg("bad-1"))
    await aredis_client.hset(
        K.thread_key(key_prefix, "bad-1", "cp"),
        K.checkpoint_member("", "zz"),
        b"nonsense",
    )
    await aredis_client.zadd(
        K.thread_key(key_prefix, "bad-1", "idx"), {K.checkpoint_member("", "zz"): 0}
    )
    with pytest.raises(CorruptCheckpointError):
        await saver.aget_tuple(cfg("bad-1"))


async def test_oversized_value_is_refused_before_writing(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(
        aredis_client, key_prefix=key_prefix, max_payload_bytes=1000
    )
    with pytest.raises(PayloadTooLargeError, match="channel 'big'"):
        await put(saver, cfg("big-1"), {"big": "x" * 5000})
    assert await saver.aget_tuple(cfg("big-1")) is None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary")
    with RedisServer(tmp_path, aof=False) as server:
        yield server


async def test_redis_down_is_a_typed_error_naming_the_masked_url() -> None:
    port = free_port()
    client = aredis.Redis.from_url(
        f"redis://app:hunter2@127.0.0.1:{port}/0", retry=ARetry(NoBackoff(), 0)
    )
    saver = AsyncRedisSaver(client)
    with pytest.raises(RedisUnavailableError) as info:
        await saver.aget_tuple(cfg("x"))
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "hunter2" not in str(info.value)
    await client.aclose()


async def test_redis_going_away_mid_run_leaves_no_half_written_checkpoint(
    private_redis: RedisServer,
) -> None:
    client = aredis.Redis(
        port=private_redis.port, socket_timeout=2, retry=ARetry(NoBackoff(), 0)
    )
    saver = AsyncRedisSaver(client)
    stored = await put(saver, cfg("gone-1"), {"a": 1})
    private_redis.kill()
    with pytest.raises(RedisUnavailableError):
        await put(saver, stored, {"a": 2})
    with pytest.raises(RedisUnavailableError):
        await saver.aget_tuple(cfg("gone-1"))
    await client.aclose()


def test_sync_saver_maps_redis_down_too() -> None:
    saver = RedisSaver(redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)))
    with pytest.raises(RedisUnavailableError):
        saver.get_tuple(cfg("x"))


async def test_list_by_checkpoint_id_filter_and_before(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    configs = []
    parent = cfg("l-1")
    for step in range(5):
        cp = checkpoint({"s": step})
        parent = await saver.aput(
            parent, cp, {"source": "loop", "step": step}, dict(cp["channel_versions"])
        )
        configs.append(parent)
    one = [t async for t in saver.alist(configs[2])]
    assert [t.checkpoint["channel_values"]["s"] for t in one] == [2]
    assert [t async for t in saver.alist(configs[2], before=configs[1])] == []
    matching = [t async for t in saver.alist(cfg("l-1"), filter={"step": 3})]
    assert [t.metadata["step"] for t in matching] == [3]
    odd = [
        t.metadata["step"]
        async for t in saver.alist(cfg("l-1"), filter={"source": "loop"}, limit=2)
    ]
    assert odd == [4, 3]
    everywhere = [
        t.metadata["step"]
        async for t in saver.alist(
            {"configurable": {"thread_id": "l-1"}}, before=configs[3], limit=2
        )
    ]
    assert everywhere == [2, 1]


def test_sync_saver_ttl_pin_and_fencing(key_prefix: str) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        saver = RedisSaver(client, key_prefix=key_prefix, ttl=50)
        cp = checkpoint({"a": 1})
        saver.put(
            cfg("st-1"), cp, {"source": "loop", "step": 0}, dict(cp["channel_versions"])
        )
        cp_key = K.thread_key(key_prefix, "st-1", "cp")
        assert 0 < client.pttl(cp_key) <= 50_000
        saver.pin_thread("st-1")
        assert client.pttl(cp_key) == -1
        saver.unpin_thread("st-1")
        assert client.pttl(cp_key) > 0
        saver.set_thread_ttl("st-1", 5)
        assert client.pttl(cp_key) <= 5_000
        stale = FencingToken("nobody", 1)
        with pytest.raises(FencedWriteError):
            saver.with_fencing(stale).put(
                cfg("st-1"), checkpoint({"a": 2}), {"source": "loop", "step": 1}, {}
            )
        assert [t.checkpoint["channel_values"] for t in saver.list(None)] == [{"a": 1}]
    finally:
        client.close()


async def test_none_values_int_versions_and_compression_round_trip(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(
        aredis_client, key_prefix=key_prefix, compress_min_bytes=2000
    )
    cp = empty_checkpoint()
    big = "lorem ipsum " * 1000
    cp["channel_values"] = {"none": None, "big": big, "small": "s"}
    cp["channel_versions"] = {"none": 1, "big": 2.5, "small": "#odd", "empty": 4}
    await saver.aput(
        cfg("rt-1"), cp, {"source": "loop", "step": 0}, cp["channel_versions"]
    )
    tup = await saver.aget_tuple(cfg("rt-1"))
    assert tup is not None
    assert tup.checkpoint["channel_versions"] == cp["channel_versions"]
    assert tup.checkpoint["channel_values"] == {"none": None, "big": big, "small": "s"}
    blobs = await aredis_client.hgetall(K.thread_key(key_prefix, "rt-1", "blobs"))
    assert len(blobs) == 2  # None is kept inline, "empty" has no value
    stored_big = max(blobs.values(), key=len)
    assert stored_big.startswith(K.lp("z:msgpack")) and len(stored_big) < len(big) / 5
