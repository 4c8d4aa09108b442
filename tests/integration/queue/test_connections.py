"""Connections: ACL users, TLS (rediss://), and memory that returns to its baseline."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dialogllm.errors import RedisAuthError
from dialogllm.queue import Queue, RunStatus, Worker
from tests.redis_servers import RedisServer

from .conftest import ref

pytestmark = pytest.mark.integration


async def run_one(url: str, prefix: str) -> RunStatus:
    worker = Worker(url, key_prefix=prefix, lease_ttl=2.0, grace=1.0)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        async with Queue.from_url(url, key_prefix=prefix) as queue:
            run_id = await queue.enqueue(ref("one_node"), {"n": 1})
            record = await queue.wait(run_id, timeout=20)
            assert record.result == {"n": 2}
            return record.status
    finally:
        worker.stop()
        await task


@pytest.fixture
def server(tmp_path: Path) -> RedisServer:
    srv = RedisServer(tmp_path)
    srv.start()
    yield srv  # type: ignore[misc]
    srv.stop()


async def test_an_acl_user_limited_to_the_prefix_runs_graphs(
    server: RedisServer,
) -> None:
    admin = redis.Redis.from_url(server.url)
    admin.execute_command(
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">s3cret",
        "~app:*",
        "&*",
        "+@all",
        "-@dangerous",
        "+info",
        "+xinfo",
        "+client",
    )
    admin.execute_command(
        "ACL", "SETUSER", "other", "on", ">pw", "~other:*", "&*", "+@all"
    )
    admin.close()
    url = server.url.replace("redis://", "redis://app:s3cret@")

    assert await run_one(url, "app") is RunStatus.SUCCESS

    intruder = Queue.from_url(
        server.url.replace("redis://", "redis://other:pw@"), key_prefix="app"
    )
    with pytest.raises(RedisAuthError, match=r"user 'other' has no permission"):
        await intruder.enqueue(ref("noop"), 1)
    await intruder.aclose()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_a_tls_redis_is_reached_with_rediss(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path, tls=self_signed(tmp_path))
    srv.start()
    try:
        assert srv.url.startswith("rediss://")
        assert await run_one(srv.url, "tls") is RunStatus.SUCCESS
    finally:
        srv.stop()


def data_memory(admin: redis.Redis) -> int:
    """``used_memory`` without client buffers (those follow traffic, not data)."""
    stats = admin.memory_stats()
    return int(stats["total.allocated"]) - int(stats["clients.normal"])


async def test_redis_memory_returns_to_its_baseline_after_the_retention(
    server: RedisServer,
) -> None:
    runs = 2000
    admin = redis.Redis.from_url(server.url)
    worker = Worker(server.url, key_prefix="mem", concurrency=32, retention=1.0)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    queue = Queue.from_url(server.url, key_prefix="mem", retention=1.0)
    try:
        warm = await queue.enqueue(ref("noop"), None)
        await queue.wait(warm, timeout=20)
        await asyncio.sleep(2.5)  # the warm-up run is forgotten too
        baseline_keys = admin.dbsize()
        baseline = data_memory(admin)

        pipe_ids: list[str] = []
        for start in range(0, runs, 100):
            pipe_ids += await asyncio.gather(
                *(
                    queue.enqueue(ref("noop"), {"i": i})
                    for i in range(start, start + 100)
                )
            )
        peak_keys = admin.dbsize()
        for run_id in pipe_ids[-50:]:
            await queue.wait(run_id, timeout=60)
        await asyncio.sleep(2.5)  # retention (1 s) + housekeeping (every 1 s)

        after_keys = admin.dbsize()
        after = data_memory(admin)
    finally:
        worker.stop()
        await task
        await queue.aclose()
        admin.close()
    assert worker.processed >= runs
    assert peak_keys > baseline_keys + 100  # records and events existed
    assert after_keys == baseline_keys
    # what is left is allocator and hash-table slack, not data
    assert after - baseline < 128 * 1024
