"""The contract, as a differential test: the same ``langgraph-sdk`` calls against
LangGraph's own dev server (``langgraph dev``, its in-memory runtime) and against
``dialogllm serve``, on the same graphs (``proof_app``), comparing what a client
observes: statuses, event names and order, state shapes, error classes.

The reference side runs where ``langgraph dev`` is installed (``$LANGGRAPH_DEV``,
``/work/lgdev/.venv/bin/langgraph`` or ``langgraph`` on ``PATH``, from PyPI
``langgraph-cli[inmem]``); the test skips cleanly where it is not (CI, or
``LANGGRAPH_DEV=`` empty).

:data:`KNOWN_DIFFERENCES` lists what differs today, each with why; the test fails
when an observation differs that is not listed, and when a listed one no longer
differs (so the list stays true). Run it by hand against two running servers::

    python -m tests.integration.server.test_reference http://127.0.0.1:2024 \\
        http://127.0.0.1:8123
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Command

from tests.integration.server.conftest import Server, free_port, start_server
from tests.integration.server.fleet import PROOF_APP

pytestmark = pytest.mark.integration

#: label -> why ours differs from ``langgraph dev`` (langgraph-api 0.16.7) there.
KNOWN_DIFFERENCES: dict[str, str] = {
    "thread.created": "ours adds error (null) and interrupts ({}) to a new thread; "
    "the reference sends them only once the thread has run",
    "run.created": "ours adds attempts, error and error_node (the queue's detail); "
    "the reference adds langsmith_session_name",
    "state.fresh.checkpoint": "a thread with no run: the reference's checkpoint is "
    "null, ours names the thread (checkpoint_id null), so RemoteGraph.get_state "
    "reads it (it raises TypeError on the reference's)",
    "state.fresh.metadata": "a thread with no run: the reference's metadata is null, "
    "ours {}",
    "http.input_and_command": "a threaded run given both input and command: the "
    "reference accepts it and the run fails (200 with __error__), ours refuses it "
    "up front with 422",
    "http.sse.lines": "ours sends an id: line with every event of every run (events "
    "live in Redis, so any run can be resumed); the reference only for runs made "
    "with stream_resumable=True",
    "join_stream.finished_run": "joining a run that has ended: ours replays its "
    "events from Redis (metadata first), the reference's join has nothing to send",
}


def _langgraph_dev() -> str | None:
    """The ``langgraph`` CLI to run; ``LANGGRAPH_DEV`` set (empty: none) wins."""
    if "LANGGRAPH_DEV" in os.environ:
        candidates = [os.environ["LANGGRAPH_DEV"]]
    else:
        peers = Path(__file__).parents[3] / "benchmarks" / ".peers"  # server_bench's
        candidates = [
            "/work/lgdev/.venv/bin/langgraph",
            str(peers / "lgdev" / "bin" / "langgraph"),
            shutil.which("langgraph"),
        ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _keys(value: Any) -> Any:
    """The sorted keys of a dict (a state's or an event's shape)."""
    return sorted(value) if isinstance(value, dict) else type(value).__name__


async def _error(call: Any) -> str:
    """The SDK's exception class for a call that fails; ``"ok"`` if it does not."""
    try:
        await call
    except Exception as exc:  # the class is the observation
        return type(exc).__name__
    return "ok"


def _interrupts(items: Any) -> list[Any]:
    return [_keys(i) for i in items or []]


async def observe(url: str) -> dict[str, Any]:
    """Run the scenario against the server at ``url``; what a client observed, by
    label (ids left out: they differ by nature)."""
    client: LangGraphClient = get_client(url=url, timeout=60)
    seen: dict[str, Any] = {}

    [review] = await client.assistants.search(graph_id="review")
    seen["assistant.keys"] = _keys(review)
    seen["assistant.metadata"] = review["metadata"]
    seen["assistant.by_graph_id"] = await _error(client.assistants.get("review"))
    seen["assistant.unknown"] = await _error(
        client.assistants.get("00000000-0000-0000-0000-000000000000")
    )

    thread = await client.threads.create(metadata={"user": "u1"})
    tid = thread["thread_id"]
    seen["thread.created"] = (_keys(thread), thread["status"], thread["values"])
    fresh = await client.threads.get_state(tid)
    seen["state.fresh"] = {k: fresh[k] for k in ("values", "next", "tasks")}
    seen["state.fresh.keys"] = _keys(fresh)
    seen["state.fresh.checkpoint"] = _keys(fresh["checkpoint"])
    seen["state.fresh.metadata"] = fresh["metadata"]
    seen["history.fresh"] = await client.threads.get_history(tid)

    parts = [
        p
        async for p in client.runs.stream(
            tid, "review", input={"topic": "tea"}, stream_mode=["values", "updates"]
        )
    ]
    seen["stream.events"] = [p.event for p in parts]
    seen["stream.metadata"] = _keys(parts[0].data)
    seen["stream.data"] = [
        p.data
        if p.event == "values" and "__interrupt__" not in p.data
        else _keys(p.data)
        for p in parts[1:]
    ]
    last_update = [p.data for p in parts if p.event == "updates"][-1]
    seen["stream.interrupt"] = _interrupts(last_update.get("__interrupt__"))

    state = await client.threads.get_state(tid)
    seen["state.keys"] = _keys(state)
    seen["state.next"] = state["next"]
    seen["state.values"] = state["values"]
    seen["state.interrupts"] = _interrupts(state["interrupts"])
    seen["state.task"] = _keys(state["tasks"][0])
    seen["state.checkpoint"] = _keys(state["checkpoint"])
    got = await client.threads.get(tid)
    seen["thread.interrupted"] = (got["status"], _keys(got), got["values"])
    seen["thread.metadata"] = sorted(got["metadata"])
    seen["runs.list"] = [r["status"] for r in await client.runs.list(tid)]

    final = await client.runs.wait(tid, "review", command=Command(resume="yes"))
    seen["wait.resumed"] = final
    seen["thread.after"] = (await client.threads.get(tid))["status"]
    seen["history.length"] = len(await client.threads.get_history(tid))

    run = await client.runs.create(tid, "slow", input={"steps": 2})
    seen["run.created"] = _keys(run)
    # ours answers the status at the time of asking: a worker may have taken it
    seen["run.created.status"] = run["status"] in ("pending", "running")
    seen["run.joined"] = sorted(await client.runs.join(tid, run["run_id"]))
    seen["run.after"] = (await client.runs.get(tid, run["run_id"]))["status"]
    joined = [
        p.event
        async for p in client.runs.join_stream(
            tid, run["run_id"], stream_mode="updates"
        )
    ]
    seen["join_stream.finished_run"] = joined

    events = [
        p
        async for p in client.runs.stream(
            None, "slow", input={"steps": 2}, stream_mode=["events", "updates"]
        )
    ]
    seen["events.names"] = [p.event for p in events]
    seen["events.kinds"] = [
        (p.data["event"], p.data["name"]) for p in events if p.event == "events"
    ]
    seen["events.keys"] = sorted(
        {k for p in events if p.event == "events" for k in p.data}
    )

    busy = await client.threads.create()
    slow = await client.runs.create(
        busy["thread_id"], "slow", input={"steps": 1, "sleep": 1.5}
    )
    seen["thread.busy"] = (await client.threads.get(busy["thread_id"]))["status"]
    seen["reject.busy"] = await _error(
        client.runs.create(
            busy["thread_id"], "slow", input={}, multitask_strategy="reject"
        )
    )
    await client.runs.cancel(busy["thread_id"], slow["run_id"], wait=True)
    seen["run.cancelled"] = (await client.runs.get(busy["thread_id"], slow["run_id"]))[
        "status"
    ]

    pair = await client.threads.create()
    stopped = await client.runs.wait(pair["thread_id"], "pair", input={})
    ids = {i["value"]: i["id"] for i in stopped["__interrupt__"]}
    seen["pair.interrupts"] = sorted(ids)
    resumed = await client.runs.wait(
        pair["thread_id"],
        "pair",
        command=Command(resume={ids["left?"]: "a", ids["right?"]: "b"}),
    )
    seen["pair.resumed"] = sorted(resumed["answers"])

    seen["stateless.wait"] = await client.runs.wait(None, "slow", input={"steps": 2})
    seen["stateless.stream"] = [
        p.event
        async for p in client.runs.stream(
            None, "slow", input={"steps": 1}, stream_mode="updates"
        )
    ]

    unknown = "00000000-0000-0000-0000-000000000000"
    seen["thread.unknown"] = await _error(client.threads.get(unknown))
    seen["state.unknown"] = await _error(client.threads.get_state(unknown))
    seen["wait.unknown_thread"] = await _error(
        client.runs.wait(unknown, "slow", input={})
    )
    seen["wait.unknown_assistant"] = await _error(
        client.runs.wait(None, "nope", input={})
    )
    await client.threads.delete(tid)
    seen["thread.deleted"] = await _error(client.threads.get(tid))

    async with httpx.AsyncClient(base_url=url) as http:
        bad = await http.post(
            f"/threads/{busy['thread_id']}/runs",
            json={"assistant_id": "slow", "stream_mode": 5},
        )
        seen["http.bad_stream_mode"] = (bad.status_code, _keys(bad.json()))
        both = await http.post(
            f"/threads/{busy['thread_id']}/runs/wait",
            json={"assistant_id": "slow", "input": {}, "command": {"resume": 1}},
        )
        seen["http.input_and_command"] = both.status_code
        stateless = await http.post(
            "/runs/wait", json={"assistant_id": "slow", "command": {"resume": 1}}
        )
        seen["http.stateless_resume"] = (stateless.status_code, stateless.json())
        raw = await http.post(
            f"/threads/{busy['thread_id']}/runs/stream",
            json={"assistant_id": "slow", "input": {"steps": 1}},
        )
        seen["http.sse.content_type"] = raw.headers["content-type"].split(";")[0]
        seen["http.sse.headers"] = sorted(
            h for h in ("location", "content-location") if h in raw.headers
        )
        seen["http.sse.lines"] = sorted(
            {line.split(":")[0] for line in raw.text.splitlines() if line}
        )
    return seen


def differences(ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The labels whose observations differ, with both sides."""
    labels = sorted(set(ours) | set(reference))
    return {
        label: {"ours": ours.get(label), "reference": reference.get(label)}
        for label in labels
        if _plain(ours.get(label)) != _plain(reference.get(label))
    }


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``langgraph dev`` on a copy of the proof graphs (it writes ``.langgraph_api``
    where it runs)."""
    binary = _langgraph_dev()
    if binary is None:
        pytest.skip(
            "langgraph dev is not installed (pip install 'langgraph-cli[inmem]')"
        )
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(PROOF_APP.parent, folder, dirs_exist_ok=True)
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="langgraph-dev-", suffix=".log")[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOGLLM_")}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [binary, "dev", "--port", str(port), "--no-browser", "--no-reload"],
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**env, "LANGGRAPH_CLI_NO_ANALYTICS": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise AssertionError(f"langgraph dev exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"langgraph dev did not answer: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def ours(module_prefix: str) -> Iterator[Server]:
    started = start_server(module_prefix, config=PROOF_APP)
    yield started
    started.stop()


async def test_a_client_observes_what_it_observes_on_langgraph_dev(
    reference: str, ours: Server
) -> None:
    theirs, mine = await asyncio.gather(observe(reference), observe(ours.url))
    found = differences(mine, theirs)

    unexpected = {k: v for k, v in found.items() if k not in KNOWN_DIFFERENCES}
    gone = sorted(set(KNOWN_DIFFERENCES) - set(found))
    assert not unexpected, json.dumps(unexpected, indent=1, default=str)
    assert not gone, f"no longer differ, drop from KNOWN_DIFFERENCES: {gone}"


if __name__ == "__main__":
    ours_url, reference_url = sys.argv[1:3]

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(observe(ours_url), observe(reference_url))

    mine, theirs = asyncio.run(both())
    print(json.dumps(differences(mine, theirs), indent=1, default=str))
