"""A graph process killed with SIGKILL mid-run resumes from another process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aredis

from dialogllm.checkpoint import AsyncRedisSaver

from .killable_graph import STEPS, build

pytestmark = pytest.mark.integration


async def test_sigkilled_run_resumes_to_the_uninterrupted_final_state(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    script = Path(__file__).with_name("killable_graph.py")
    child = subprocess.Popen([sys.executable, str(script), key_prefix, "crash-1"])
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    config = {"configurable": {"thread_id": "crash-1"}}
    graph = build().compile(checkpointer=saver)
    try:
        for _ in range(300):  # wait until the child is part-way through
            state = await graph.aget_state(config)
            if state.values.get("n", 0) >= 4:
                break
            await asyncio.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    killed_at = (await graph.aget_state(config)).values["n"]
    assert 4 <= killed_at < STEPS

    resumed = await graph.ainvoke(None, config)

    reference = (
        await build()
        .compile(checkpointer=saver)
        .ainvoke({"n": 0, "log": []}, {"configurable": {"thread_id": "crash-ref"}})
    )
    assert resumed == reference
    assert resumed["log"] == [f"step {i}" for i in range(1, STEPS + 1)]
