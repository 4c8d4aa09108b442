"""The runner: run, stream, resume (crash and interrupt), fork, export, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import (
    DialogueRunner,
    DoneEvent,
    GraphRegistry,
    InterruptEvent,
    MaxTurns,
    RoundRobin,
    TurnEvent,
    UpdateEvent,
    human_node,
    persona_node,
    stop_or,
    validate_input,
)
from dialogllm.errors import (
    GraphNotFoundError,
    InputValidationError,
    ResumeError,
    ThreadNotFoundError,
)
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import DialogueState, Persona
from tests.unit.core.conftest import said, scripted

ADA, BO = Persona(name="Ada"), Persona(name="Bo")


class ChatInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=2)


def _chat(turns: int = 4, *, person: bool = False) -> Any:
    builder = StateGraph(DialogueState, input_schema=ChatInput)
    builder.add_node("Ada", persona_node(ADA, participants=[ADA, BO]))
    second = human_node("Bo") if person else persona_node(BO, participants=[ADA, BO])
    builder.add_node("Bo", second)
    route = stop_or(MaxTurns(turns), RoundRobin(["Ada", "Bo"]), end=END)
    builder.add_edge(START, "Ada")
    builder.add_conditional_edges("Ada", route, ["Bo", END])
    builder.add_conditional_edges("Bo", route, ["Ada", END])
    return builder.compile(name="chat")


def _runner(model: Any, saver: InMemorySaver, **kw: Any) -> DialogueRunner:
    return DialogueRunner(saver, chat_model=model, registry=GraphRegistry(), **kw)


async def test_run_streams_turns_and_ends_done(saver: InMemorySaver) -> None:
    model = scripted(*(said(f"line {i}") for i in range(4)))
    async with _runner(model, saver) as runner:
        events = [
            e async for e in runner.stream(_chat(), {"topic": "tea"}, thread_id="t")
        ]
        turns = [e for e in events if isinstance(e, TurnEvent)]
        assert [(e.entry.index, e.entry.speaker, e.entry.text) for e in turns] == [
            (0, "Ada", "line 0"),
            (1, "Bo", "line 1"),
            (2, "Ada", "line 2"),
            (3, "Bo", "line 3"),
        ]
        done = events[-1]
        assert isinstance(done, DoneEvent) and done.result.status == "done"
        assert done.result.transcript.title == "tea"
        assert done.result.graph == "chat"
        assert done.result.checkpoint_id
        again = await runner.transcript("t")
        assert [e.text for e in again.entries] == [e.entry.text for e in turns]


async def test_input_is_validated_before_anything_is_written(
    saver: InMemorySaver,
) -> None:
    async with _runner(scripted(), saver) as runner:
        for bad, why in (
            ({"topic": "x"}, "topic: String should have at least 2"),
            ({"topic": "tea", "extra": 1}, "extra: Extra inputs"),
            ({}, "topic: Field required"),
            (["tea"], "must be a JSON object"),
        ):
            with pytest.raises(InputValidationError, match=why):
                await runner.run(_chat(), bad, thread_id="t")  # type: ignore[arg-type]
        with pytest.raises(InputValidationError, match="thread id"):
            await runner.run(_chat(), {"topic": "tea"}, thread_id=" ")
    assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is None


async def test_a_thread_id_cannot_be_started_twice(saver: InMemorySaver) -> None:
    model = scripted(said("a"), said("b"), cycle=True)
    async with _runner(model, saver) as runner:
        await runner.run(_chat(2), {"topic": "tea"}, thread_id="t")
        with pytest.raises(InputValidationError, match="already exists"):
            await runner.run(_chat(2), {"topic": "tea"}, thread_id="t")


async def test_resume_after_a_crash_continues_without_losing_turns(
    saver: InMemorySaver,
) -> None:
    calls = {"n": 0}

    def flaky(messages: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("process died here")
        return said(f"line {calls['n']}")

    model = ScriptedChatModel(reply_fn=flaky)
    async with _runner(model, saver) as runner:
        with pytest.raises(Exception, match="process died here"):
            await runner.run(_chat(4), {"topic": "tea"}, thread_id="t")
        with pytest.raises(ResumeError, match="not waiting for an answer"):
            await runner.resume("t", "unexpected")
        result = await runner.resume("t")
    assert result.status == "done"
    texts = [e.text for e in result.transcript.entries]
    assert texts == ["line 1", "line 2", "line 4", "line 5"]
    assert [e.index for e in result.transcript.entries] == [0, 1, 2, 3]


async def test_resume_with_an_answer_and_its_refusals(saver: InMemorySaver) -> None:
    model = scripted(said("Why tea?"), said("And milk?"))
    async with _runner(model, saver) as runner:
        first = await runner.run(_chat(4, person=True), {"topic": "tea"}, thread_id="t")
        assert first.status == "interrupted"
        assert first.request is not None and first.request.speaker == "Bo"
        steps_before = len(await runner.history("t"))
        with pytest.raises(ResumeError, match="waiting for an answer from Bo"):
            await runner.resume("t")
        with pytest.raises(ResumeError, match="must be text"):
            await runner.resume("t", 42)
        with pytest.raises(ResumeError, match="empty"):
            await runner.resume("t", "   ")
        assert len(await runner.history("t")) == steps_before  # nothing written
        waiting = await runner.state("t")
        assert waiting.status == "interrupted" and len(waiting.transcript.entries) == 1
        events = [e async for e in runner.stream_resume("t", "Calm.")]
        assert isinstance(events[-2], InterruptEvent)
        assert [e.entry.index for e in events if isinstance(e, TurnEvent)] == [1, 2]
        done = await runner.resume("t", "Never.")
        assert done.status == "done"
        assert [e.speaker for e in done.transcript.entries] == ["Ada", "Bo"] * 2
        with pytest.raises(ResumeError, match="has finished"):
            await runner.resume("t")
        with pytest.raises(ThreadNotFoundError, match="does not exist"):
            await runner.resume("nope", "x")


async def test_resume_finds_the_graph_from_the_thread(
    saver: InMemorySaver, tmp_path: Any
) -> None:
    registry = GraphRegistry()
    graph = _chat(2, person=True)
    registry.register("chat", graph)
    model = scripted(said("Hi?"))
    async with DialogueRunner(saver, chat_model=model, registry=registry) as runner:
        await runner.run("chat", {"topic": "tea"}, thread_id="t")
        done = await runner.resume("t", "Hello.")
        assert done.status == "done" and done.graph == "chat"
    other = DialogueRunner(saver, registry=GraphRegistry())
    async with other:
        with pytest.raises(GraphNotFoundError, match="cannot be loaded here"):
            await other.transcript("t")
        assert len((await other.transcript("t", graph=graph)).entries) == 2


async def test_fork_branches_from_an_earlier_checkpoint(saver: InMemorySaver) -> None:
    model = scripted(*(said(f"line {i}") for i in range(6)))
    async with _runner(model, saver) as runner:
        await runner.run(_chat(4), {"topic": "tea"}, thread_id="t")
        history = await runner.history("t")
        assert [h.turns for h in history][:2] == [4, 3]
        after_two = next(h for h in history if h.turns == 2)
        assert after_two.next == ("Ada",)
        await runner.fork("t", after_two.checkpoint_id)
        result = await runner.resume("t")
        assert [e.text for e in result.transcript.entries] == [
            "line 0",
            "line 1",
            "line 4",
            "line 5",
        ]
        with pytest.raises(ThreadNotFoundError, match="no checkpoint"):
            await runner.fork("t", "1f0-not-a-checkpoint")


async def test_runner_outside_async_with_explains_itself() -> None:
    runner = DialogueRunner()
    with pytest.raises(RuntimeError, match="enter the runner first"):
        _ = runner.checkpointer


async def test_updates_other_than_the_transcript_are_events(
    saver: InMemorySaver,
) -> None:
    builder = StateGraph(DialogueState)
    builder.add_node("mark", lambda s: {"concluded": True})
    builder.add_edge(START, "mark")
    builder.add_edge("mark", END)
    async with _runner(scripted(), saver) as runner:
        events = [e async for e in runner.stream(builder.compile(), {}, thread_id="u")]
    assert UpdateEvent(node="mark", keys=("concluded",)) in events


def test_validate_input_keeps_only_given_keys_for_typed_dict_states() -> None:
    builder = StateGraph(DialogueState)
    builder.add_node("n", lambda s: {})
    builder.add_edge(START, "n")
    graph = builder.compile()
    assert validate_input(graph, {"topic": "tea"}) == {"topic": "tea"}


class _DiesBeforeCheckpoint(InMemorySaver):
    """Saves a step's writes, then 'dies' before the checkpoint that folds them."""

    def __init__(self, die_at: int) -> None:
        super().__init__()
        self.puts, self.die_at = 0, die_at

    async def aput(
        self, config: Any, checkpoint: Any, metadata: Any, versions: Any
    ) -> Any:
        self.puts += 1
        if self.puts == self.die_at:
            raise RuntimeError("killed between the writes and the checkpoint")
        return await super().aput(config, checkpoint, metadata, versions)


async def test_a_step_saved_but_not_folded_is_resumed_not_redone() -> None:
    saver = _DiesBeforeCheckpoint(die_at=4)
    model = scripted(*(said(f"line {i}") for i in range(5)))
    runner = _runner(model, saver, durability="sync")
    async with runner:
        with pytest.raises(RuntimeError, match="killed between"):
            await runner.run(_chat(4), {"topic": "tea"}, thread_id="t")
        stopped = await runner.state("t")
        assert stopped.status == "stopped"
        assert len(stopped.transcript.entries) == 2  # turn 2 lives in the writes
        saver.die_at = 0
        done = await runner.resume("t")
    assert done.status == "done"
    assert [e.text for e in done.transcript.entries] == [
        "line 0",
        "line 1",
        "line 2",
        "line 3",
    ]
    assert len(model.calls) == 4  # the saved second turn was not asked again
