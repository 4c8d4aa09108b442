"""Monitoring over hostile Redis data: a record, a reclaim entry or an event that
another client wrote as garbage is reported by ``status`` and ``runs show``, never a
traceback (real CLI processes against the shared Redis)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
import redis

from dialogllm.queue import Queue, keys
from tests.conftest import REDIS_URL
from tests.integration.ops.test_cli_operations import GRAPH, cli

pytestmark = pytest.mark.integration


def _enqueue(prefix: str, count: int) -> list[str]:
    async def go() -> list[str]:
        async with Queue.from_url(REDIS_URL, key_prefix=prefix) as q:
            return [
                await q.enqueue(f"{GRAPH}:counting", {"turns": 1}, thread_id=f"t{i}")
                for i in range(count)
            ]

    return asyncio.run(go())


def _clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert "error:" not in result.stderr, result.stderr


@pytest.fixture
def hostile(key_prefix: str) -> dict[str, str]:
    """Runs whose stored fields, reclaims and events another client overwrote."""
    bad_status, bad_input, bad_time, marked_up = _enqueue(key_prefix, 4)
    r = redis.Redis.from_url(REDIS_URL)
    record = keys.run_record
    r.hset(record(key_prefix, "default", bad_status), "status", "garbage")
    r.hset(record(key_prefix, "default", bad_input), "input", b"\xff\xfe{")
    r.hset(record(key_prefix, "default", bad_time), "created", "yesterday")
    r.hset(
        record(key_prefix, "default", marked_up),
        mapping={"status": "error", "error": "[/bold] Boom: [red]x", "finished": "1"},
    )
    latest = keys.queue_key(key_prefix, "default", keys.QueueKey.RECLAIMS)
    r.lpush(latest, "garbage", b"\xff 1 2", "1000 250 run-ok")
    counter = keys.queue_key(key_prefix, "default", keys.QueueKey.RECOVERY)
    r.hset(counter, "reclaims", "many")
    events = keys.run_events(key_prefix, "default", bad_status)
    r.xadd(events, {"kind": "status", "data": "{oops"})
    r.xadd(events, {"kind": "status", "data": '{"status": "garbage"}'})
    r.xadd(events, {"kind": "updates", "data": b"\xff"})
    workers = keys.fleet_workers(key_prefix)
    r.hset(workers, mapping={"w-list": "[1]", "w-time": '{"last_seen": "soon"}'})
    r.close()
    return {"status": bad_status, "input": bad_input, "time": bad_time}


def test_status_reports_bad_records_and_carries_on(
    key_prefix: str, hostile: dict[str, str]
) -> None:
    shown = cli(key_prefix, "status", COLUMNS="250")
    _clean(shown)
    assert shown.returncode == 0
    assert "bad records" in shown.stdout
    assert "not a run status" in shown.stdout and "garbage" in shown.stdout
    assert "[/bold] Boom" in shown.stdout  # stored text is never markup

    as_json = cli(key_prefix, "status", "--json")
    _clean(as_json)
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    bad = {b["key"]: b["reason"] for b in data["bad_records"]}
    record = keys.run_record
    assert (
        "status: not a run status"
        in bad[record(key_prefix, "default", hostile["status"])]
    )
    assert "input: not UTF-8" in bad[record(key_prefix, "default", hostile["input"])]
    assert "created: not a time" in bad[record(key_prefix, "default", hostile["time"])]
    latest = keys.queue_key(key_prefix, "default", keys.QueueKey.RECLAIMS)
    assert "entry" in bad[latest]
    assert len([b for b in data["bad_records"] if b["key"] == latest]) == 2
    assert keys.queue_key(key_prefix, "default", keys.QueueKey.RECOVERY) in bad
    # the sound parts are still read: the good reclaim, the runs by status
    assert data["recovery_max_s"] == 0.25
    assert data["runs_by_status"]["pending"] == 2  # not the one without a status
    assert data["runs_by_status"]["error"] == 1
    assert "bad_records" in [a["name"] for a in data["alerts"]]
    assert data["workers"] == []  # entries of no worker's shape are not workers

    check = cli(key_prefix, "status", "--check", COLUMNS="250")
    _clean(check)
    assert check.returncode == 6  # an alert: bad records
    assert "bad_records" in check.stdout


def test_runs_show_and_list_report_a_bad_record_and_bad_events(
    key_prefix: str, hostile: dict[str, str]
) -> None:
    shown = cli(key_prefix, "runs", "show", hostile["status"], COLUMNS="250")
    _clean(shown)
    assert shown.returncode == 0
    assert "not a run status: 'garbage'" in shown.stdout
    assert shown.stdout.count("bad event") == 3

    as_json = cli(key_prefix, "runs", "show", hostile["input"], "--json")
    _clean(as_json)
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert data["run"]["input"] is None
    assert data["run"]["problems"]["input"].startswith("not UTF-8")

    events = cli(key_prefix, "runs", "show", hostile["status"], "--json")
    problems = [e["problem"] for e in json.loads(events.stdout)["events"]]
    assert len([p for p in problems if p]) == 3

    listed = cli(key_prefix, "runs", "list", COLUMNS="250")
    _clean(listed)
    assert listed.returncode == 0
    assert "bad record" in listed.stdout
