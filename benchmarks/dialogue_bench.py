"""Framework overhead per dialogue turn, and turns/s of the local default model.

Part 1 runs the same two-persona graph with an instant scripted model (so the LLM
costs nothing and what is left is framework) three ways, in one run:

- ``bare``: bare LangGraph, ``graph.astream`` with ``InMemorySaver``;
- ``runner+memory``: :class:`dialogllm.core.DialogueRunner` with ``InMemorySaver``;
- ``runner+redis``: the runner with the Redis checkpointer, durability ``async``
  (its default and LangGraph's: a step's checkpoint is written while the next runs);
- ``runner+redis/sync``: the same with durability ``sync`` (each turn is in Redis
  before the next starts).

It reports p50/p95 per turn (time between consecutive turns) and the overhead of
``runner+redis`` over ``bare`` (target: under 1 ms p50). Part 2 runs a few turns with
the local default model (``get_chat_model``) and reports turns/s and tokens/s.

    .venv/bin/python benchmarks/dialogue_bench.py            # ~1 min with the model
    .venv/bin/python benchmarks/dialogue_bench.py --no-local # framework only

Needs Redis (``DIALOGLLM_REDIS_URL``, default 127.0.0.1:6379/0); writes only keys
under its own prefix ``bench-dlg-<random>`` and deletes them at the end. The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.core import (
    DialogueRunner,
    MaxTurns,
    RoundRobin,
    TurnEvent,
    persona_node,
    stop_or,
)
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.logging import configure_logging
from dialogllm.models import DialogueState, Persona

ADA = Persona(name="Ada", role="a mathematician")
BO = Persona(name="Bo", role="a baker")
REPLY = json.dumps({"message": "A short line of dialogue, as a model would say it."})


def build_graph(turns: int, model: BaseChatModel | None, max_tokens: int = 64) -> Any:
    """The benchmarked graph: two personas, round-robin, ``turns`` turns."""
    builder = StateGraph(DialogueState)
    route = stop_or(MaxTurns(turns), RoundRobin(["Ada", "Bo"]), end=END)
    for p in (ADA, BO):
        node = persona_node(
            p, participants=[ADA, BO], model=model, max_tokens=max_tokens
        )
        builder.add_node(p.name, node)
        builder.add_conditional_edges(p.name, route, ["Ada", "Bo", END])
    builder.add_edge(START, "Ada")
    return builder.compile(name="bench_dialogue")


def _gaps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(stamps)]


def _summary(gaps: list[float]) -> dict[str, float]:
    ms = sorted(g * 1000 for g in gaps)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3),
        "turns": len(ms) + 1,
    }


async def _stamps(events: AsyncIterator[Any]) -> list[float]:
    stamps = []
    async for event in events:
        if isinstance(event, TurnEvent) or (
            isinstance(event, dict) and any(k in ("Ada", "Bo") for k in event)
        ):
            stamps.append(time.perf_counter())
    return stamps


async def bench_bare(turns: int, repeats: int) -> list[float]:
    gaps: list[float] = []
    for i in range(repeats):
        graph = build_graph(turns, ScriptedChatModel(replies=[REPLY], cycle=True))
        graph = graph.copy(update={"checkpointer": InMemorySaver()})
        config: Any = {"configurable": {"thread_id": f"bare-{i}"}}
        events = graph.astream({"topic": "engines"}, config, stream_mode="updates")
        gaps += _gaps(await _stamps(events))
    return gaps


async def bench_runner(
    turns: int, repeats: int, saver_factory: Any, durability: Any = "async"
) -> list[float]:
    gaps: list[float] = []
    async with saver_factory() as saver:
        model = ScriptedChatModel(replies=[REPLY], cycle=True)
        runner = DialogueRunner(saver, chat_model=model, durability=durability)
        async with runner:
            for _ in range(repeats):
                events = runner.stream(build_graph(turns, None), {"topic": "engines"})
                gaps += _gaps(await _stamps(events))
    return gaps


class _Memory:
    async def __aenter__(self) -> InMemorySaver:
        return InMemorySaver()

    async def __aexit__(self, *exc: object) -> None:
        return None


async def bench_local(turns: int, max_tokens: int) -> dict[str, Any]:
    """Turns/s of the local default model through the same graph."""
    from dialogllm.llm import get_chat_model

    model = get_chat_model(role="persona")
    graph = build_graph(turns, model, max_tokens=max_tokens)
    async with DialogueRunner(InMemorySaver()) as runner:
        start = time.perf_counter()
        result = await runner.run(graph, {"topic": "how engines compute"})
        elapsed = time.perf_counter() - start
    entries = result.transcript.turns
    completion = sum(e.completion_tokens for e in entries)
    return {
        "model": entries[0].model if entries else None,
        "turns": len(entries),
        "seconds": round(elapsed, 2),
        "turns_per_s": round(len(entries) / elapsed, 3),
        "completion_tokens_per_s": round(completion / elapsed, 1),
        "mean_turn_s": round(elapsed / max(1, len(entries)), 2),
        "sample": entries[-1].text[:120] if entries else "",
    }


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="turns per dialogue")
    parser.add_argument("--repeats", type=int, default=10, help="dialogues per setup")
    parser.add_argument("--local-turns", type=int, default=4)
    parser.add_argument("--local-max-tokens", type=int, default=64)
    parser.add_argument("--no-local", action="store_true", help="skip the real model")
    args = parser.parse_args()
    configure_logging(level="warning")

    url = os.environ.get("DIALOGLLM_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-dlg-{uuid.uuid4().hex[:10]}"

    def redis_saver() -> Any:
        return AsyncRedisSaver.from_conn_string(url, key_prefix=prefix)

    try:
        # warm-up: imports, first compile, Lua script loading
        await bench_bare(4, 1)
        await bench_runner(4, 1, redis_saver)
        # Interleaved, one dialogue of each setup per round, so that load from
        # other processes (a shared machine) weighs on every setup alike.
        gaps: dict[str, list[float]] = {k: [] for k in ("bare", "mem", "red", "sync")}
        for _ in range(args.repeats):
            gaps["bare"] += await bench_bare(args.turns, 1)
            gaps["mem"] += await bench_runner(args.turns, 1, _Memory)
            gaps["red"] += await bench_runner(args.turns, 1, redis_saver, "async")
            gaps["sync"] += await bench_runner(args.turns, 1, redis_saver, "sync")
        bare, memory = _summary(gaps["bare"]), _summary(gaps["mem"])
        red, red_sync = _summary(gaps["red"]), _summary(gaps["sync"])
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()

    overhead = round(red["p50_ms"] - bare["p50_ms"], 3)
    overhead_sync = round(red_sync["p50_ms"] - bare["p50_ms"], 3)
    print(f"framework overhead per turn ({args.turns} turns x {args.repeats})")
    print(f"{'setup':<20}{'p50 ms':>10}{'p95 ms':>10}")
    rows = (
        ("bare", bare),
        ("runner+memory", memory),
        ("runner+redis", red),
        ("runner+redis/sync", red_sync),
    )
    for name, row in rows:
        print(f"{name:<20}{row['p50_ms']:>10.3f}{row['p95_ms']:>10.3f}")
    print(f"runner+redis over bare, p50: {overhead:.3f} ms (target < 1 ms)")
    print(f"runner+redis/sync over bare, p50: {overhead_sync:.3f} ms")

    local: dict[str, Any] | None = None
    if not args.no_local:
        local = await bench_local(args.local_turns, args.local_max_tokens)
        print(
            f"local model {local['model']}: {local['turns_per_s']} turns/s, "
            f"{local['completion_tokens_per_s']} completion tokens/s, "
            f"{local['mean_turn_s']} s/turn ({local['turns']} turns)"
        )
    return {
        "bench": "dialogue",
        "turns": args.turns,
        "repeats": args.repeats,
        "bare": bare,
        "runner_memory": memory,
        "runner_redis": red,
        "runner_redis_sync": red_sync,
        "overhead_p50_ms": overhead,
        "overhead_sync_p50_ms": overhead_sync,
        "target_met": overhead < 1.0,
        "local": local,
    }


if __name__ == "__main__":
    figures = asyncio.run(main())
    sys.stdout.write(json.dumps(figures) + "\n")
