"""A blob written into Redis by someone who can write to it must not run code in the
CLI or a saver that reads it: the exact payload that did (``os.system`` through
LangGraph's permissive msgpack revival) is refused with a typed error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ormsgpack
import pytest
import redis

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.checkpoint.keys import thread_key
from dialogllm.errors import BlockedTypeError
from tests.integration.dialogue.conftest import SCRIPTED

pytestmark = pytest.mark.integration

DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))


def _poison(redis_url: str, prefix: str, thread_id: str, command: str) -> int:
    """Overwrite every channel blob of the thread with the code-running payload."""
    payload = b"7:msgpack" + ormsgpack.packb(
        ormsgpack.Ext(0, ormsgpack.packb(["os", "system", command]))
    )
    client = redis.Redis.from_url(redis_url)
    try:
        key = thread_key(prefix, thread_id, "blobs")
        fields = client.hkeys(key)
        for field in fields:
            client.hset(key, field, payload)
        return len(fields)
    finally:
        client.close()


async def test_a_poisoned_blob_never_runs_in_the_cli_or_the_saver(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    env = {
        **os.environ,
        "DIALOGLLM_REDIS_URL": redis_url,
        "DIALOGLLM_KEY_PREFIX": key_prefix,
    }
    env.pop("DIALOGLLM_ALLOWED_MSGPACK_MODULES", None)
    made = subprocess.run(
        [DIALOGLLM, "run", f"{SCRIPTED}:slow_chat", "--topic", "tea", "--thread", "p"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert _poison(redis_url, key_prefix, "p", "touch PWNED") > 0

    for command in (["threads", "show", "p"], ["transcript", "p"]):
        shown = subprocess.run(
            [DIALOGLLM, *command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert not (tmp_path / "PWNED").exists(), command
        assert shown.returncode == 1, (command, shown.stdout, shown.stderr)
        assert "error: refused to revive os.system" in shown.stderr
        assert "thread 'p'" in shown.stderr
        assert "Traceback" not in shown.stderr + shown.stdout

    listed = subprocess.run(
        [DIALOGLLM, "threads", "list", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr  # one bad thread hides nothing
    (row,) = [r for r in json.loads(listed.stdout) if r["thread_id"] == "p"]
    assert "refused to revive os.system" in row["error"]
    assert not (tmp_path / "PWNED").exists()

    async with AsyncRedisSaver.from_conn_string(
        redis_url, key_prefix=key_prefix
    ) as saver:
        with pytest.raises(BlockedTypeError) as info:
            await saver.aget_tuple({"configurable": {"thread_id": "p"}})
    assert (info.value.module, info.value.name) == ("os", "system")
    assert not (tmp_path / "PWNED").exists()
    assert not Path("PWNED").exists()
