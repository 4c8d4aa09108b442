"""``runs list`` and ``runs show`` for people: ids never cut at 80 columns, times as
dates, structured values as JSON; ``--json`` unchanged for machines."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from dialogllm.queue import Queue
from tests.conftest import REDIS_URL
from tests.integration.ops.test_cli_operations import GRAPH, cli

pytestmark = pytest.mark.integration


def _enqueue(key_prefix: str) -> str:
    async def go() -> str:
        async with Queue.from_url(REDIS_URL, key_prefix=key_prefix) as queue:
            return await queue.enqueue(
                f"{GRAPH}:counting", {"turns": 3, "note": "tea"}, thread_id="t" * 40
            )

    return asyncio.run(go())


def test_runs_are_shown_for_people(key_prefix: str) -> None:
    run_id = _enqueue(key_prefix)
    listed = cli(key_prefix, "runs", "list", COLUMNS="80")
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout  # whole, on one line

    shown = cli(key_prefix, "runs", "show", run_id, COLUMNS="80")
    assert shown.returncode == 0, shown.stderr
    created = re.search(r"created_at: (\S+)", shown.stdout)
    assert created is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created.group(1))
    assert '"turns": 3' in shown.stdout and '"note": "tea"' in shown.stdout

    machine = json.loads(cli(key_prefix, "runs", "show", run_id, "--json").stdout)
    assert isinstance(machine["run"]["created_at"], float)
    assert machine["run"]["input"] == {"turns": 3, "note": "tea"}


def test_status_watch_writes_screens_to_a_pipe(key_prefix: str) -> None:
    import subprocess
    import threading
    import time

    from tests.integration.ops.test_cli_operations import DIALOGLLM, _env

    proc = subprocess.Popen(
        [DIALOGLLM, "status", "--watch"],
        env=_env(key_prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    stamp_times: list[float] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if re.fullmatch(r"\d\d:\d\d:\d\d\n?", line):
                stamp_times.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Wait for screens, not for a fixed time: the start of the CLI under
    # coverage on a busy machine can take longer than the 2 s refresh.
    deadline = time.monotonic() + 60
    try:
        while len(stamp_times) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        reader.join(timeout=10)
    out = "".join(lines)
    assert len(stamp_times) >= 2, out  # a screen every 2 s, not just one
    assert stamp_times[1] - stamp_times[0] >= 1.5, stamp_times  # refreshed, not dumped
    assert "depth" in out
