"""``dialogllm cron add|list|delete`` as real processes on the real Redis: what they
print, and exit 2 for bad input (schedule, timezone, end time, graph), 3 for an
unknown cron."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.integration.queue.conftest import ref

pytestmark = pytest.mark.integration

DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))


def cli(prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DIALOGLLM_REDIS_URL": REDIS_URL,
        "DIALOGLLM_KEY_PREFIX": prefix,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [DIALOGLLM, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cron_add_list_and_delete(key_prefix: str) -> None:
    added = cli(
        key_prefix, "cron", "add", ref("one_node"), "*/5 * * * *",
        "--input", '{"n": 1}', "--thread", "t-cli", "--tz", "Europe/Paris",
        "--end-time", "2099-01-01T00:00:00+00:00", "--catch-up", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    cron = json.loads(added.stdout)
    assert cron["spec"]["thread_id"] == "t-cli"
    assert cron["spec"]["timezone"] == "Europe/Paris"
    assert cron["spec"]["catch_up"] is True
    assert cron["spec"]["end_ms"] == 4070908800000
    assert cron["next_ms"] % 300_000 == 0

    plain = cli(key_prefix, "cron", "add", ref("one_node"), "0 9 * * *")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("cron ") and "next run" in plain.stdout

    status = cli(key_prefix, "status")
    assert status.returncode == 0, status.stderr
    assert "crons" in status.stdout and "2 (2 scheduled, 0 overdue)" in status.stdout

    listed = cli(key_prefix, "cron", "list")
    assert listed.returncode == 0, listed.stderr
    assert cron["cron_id"] in listed.stdout
    assert "*/5 * * * * (Europe/Paris)" in listed.stdout
    assert "new each run" in listed.stdout

    deleted = cli(key_prefix, "cron", "delete", cron["cron_id"])
    assert (deleted.returncode, deleted.stdout) == (
        0,
        f"cron {cron['cron_id']}: deleted\n",
    )
    left = json.loads(cli(key_prefix, "cron", "list", "--json").stdout)
    assert [c["spec"]["schedule"] for c in left] == ["0 9 * * *"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("*/5 * * *",), "invalid cron schedule"),
        (("0 9 * * *", "--tz", "Nowhere/Land"), "unknown timezone"),
        (("0 9 * * *", "--end-time", "2001-01-01"), "in the past"),
        (("0 9 * * *", "--end-time", "next tuesday"), "ISO 8601"),
        (("0 9 * * *", "--input", "[1]"), "JSON object"),
    ],
)
def test_bad_cron_input_exits_2(
    key_prefix: str, args: tuple[str, ...], message: str
) -> None:
    done = cli(key_prefix, "cron", "add", ref("one_node"), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_graph_exits_2_and_an_unknown_cron_3(key_prefix: str) -> None:
    graph = cli(key_prefix, "cron", "add", "no-such-graph", "0 9 * * *")
    assert graph.returncode == 2 and "unknown graph" in graph.stderr
    gone = cli(key_prefix, "cron", "delete", "no-such-cron")
    assert gone.returncode == 3 and "no cron 'no-such-cron'" in gone.stderr
