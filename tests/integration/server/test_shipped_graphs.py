"""The shipped graphs of the repo's ``langgraph.json`` through the SDK as through the
CLI: a debate on the local default model (one round, so two turns and a verdict),
served by ``dialogllm serve`` and run with ``runs.wait``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from dialogllm.models import TranscriptEntry
from tests.integration.server.conftest import Server, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_APP = Path(__file__).resolve().parents[3] / "langgraph.json"


@pytest.fixture(scope="module")
def repo_server(module_prefix: str) -> Iterator[Server]:
    """``dialogllm serve`` on the repo's own ``langgraph.json``."""
    started = start_server(module_prefix, config=REPO_APP)
    yield started
    started.stop()


async def test_the_debate_through_runs_wait_has_the_requested_turns(
    repo_server: Server,
) -> None:
    client = get_client(url=repo_server.url, timeout=600)
    assistants = {a["graph_id"] for a in await client.assistants.search()}
    assert assistants == {"debate", "directed_dialogue", "interview"}
    thread = await client.threads.create()

    values = await client.runs.wait(
        thread["thread_id"],
        "debate",
        input={"motion": "Cities should ban cars", "rounds": 1},
    )

    entries = [TranscriptEntry.model_validate(e) for e in values["transcript"]]
    turns = [e.speaker for e in entries if e.is_turn]
    assert turns == ["Proposition", "Opposition"], values
    assert all(e.text.strip() and e.model for e in entries)
    assert values["verdict"]["winner"] in ("Proposition", "Opposition")
    assert values["stop_reason"] == "2 turns argued"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == []
    assert len(state["values"]["transcript"]) == len(entries)
