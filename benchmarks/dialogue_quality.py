"""How readable are the shipped graphs' dialogues? A quality benchmark.

Runs each shipped graph (``debate``, ``directed_dialogue``, ``interview``) over a fixed
list of topics on the configured model (default: the local one), saves every
transcript (Markdown and JSON) and computes, per transcript and in total:

* **echo rate**: share of turns whose word trigrams overlap ≥ 50 % with the trigrams
  of any earlier turn (``|T_i ∩ T_j| / |T_i|``); a turn of fewer than three words
  echoes when its words equal an earlier turn's;
* **loop rate**: share of turns that repeat one of their own word trigrams ≥ 3 times;
* **junk rate**: share of texts (turns and typed string fields) that are digits or
  timestamps only, hold a placeholder-like token (``reason_116``), a model's special
  token (``<start_of_image>``, ``<|eot|>``), or no word of two letters at all;
* **cut rate**: share of texts (turns and typed texts of a sentence or more) that do
  not end at a sentence end (``. ! ? …`` optionally followed by a closing quote or
  bracket);
* **completion**: the dialogue reached its designed end (debate: a verdict after
  ``2 × rounds`` turns; directed dialogue: the requested turns, then a conclusion
  and an analysis; interview: every requested question asked and answered) — and
  turns delivered vs requested;
* **typed output**: typed results (verdict reasons, conclusion, analysis notes) that
  are empty or copy a turn (≥ 80 % trigram overlap with one);
* **time and tokens per turn**, from the transcript entries.

The text measures are :mod:`dialogllm.readability`'s, the same the dialogue guards
use, so a guarded defect and a measured one are one definition.

Prints a table and the totals; the last line is JSON. Targets on the local default:
echo 0 %, loop 0 %, junk 0 %, cut 0 %, completion 100 % with the requested turns.

    .venv/bin/python benchmarks/dialogue_quality.py                 # 10 topics x 3
    .venv/bin/python benchmarks/dialogue_quality.py --topics 2      # a quick look
    .venv/bin/python benchmarks/dialogue_quality.py --out /tmp/dq   # where to save

Transcripts go to ``--out`` (default ``benchmarks/results/dialogue_quality/<time>/``,
not committed). Needs the shared Redis (a key prefix of its own, deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dialogllm.readability import copies, echoes, is_cut, is_junk, loops, words

TOPICS: tuple[str, ...] = (
    "Should cities ban cars from their centres?",
    "Is remote work good for junior engineers?",
    "Should schools teach programming from the age of six?",
    "Is nuclear power the best path to low-carbon electricity?",
    "Should social media be closed to children under sixteen?",
    "Is a four-day work week good for a small team?",
    "Should museums return artefacts to their countries of origin?",
    "Is space exploration worth what it costs?",
    "Should voting be compulsory?",
    "Are standardised tests a fair way to admit students?",
)
"""Fixed and varied on purpose: nothing here is tuned to a topic."""

ANSWERS: tuple[str, ...] = (
    "It depends on the people involved, but mostly yes, if it is done with care.",
    "The main risk is cost; I would start small and measure what changes.",
    "I have seen it work in practice, although the first months were hard.",
)
"""What the benchmark's 'person' answers the interviewer, in turn."""


@dataclass
class Scored:
    """One transcript's figures."""

    graph: str
    topic: str
    thread_id: str
    turns: int
    requested: int
    completed: bool
    echo: int = 0
    loop: int = 0
    junk: int = 0
    texts: int = 0
    cut: int = 0
    cut_checked: int = 0
    typed_bad: int = 0
    typed: int = 0
    seconds_per_turn: float = 0.0
    tokens_per_turn: float = 0.0
    problems: list[str] = field(default_factory=list)


def _typed_texts(graph: str, state: dict[str, Any]) -> list[str]:
    if graph == "debate":
        verdict = state.get("verdict") or {}
        return [str(r) for r in verdict.get("reasons") or []] or [""]
    if graph == "directed_dialogue":
        analysis = state.get("analysis") or {}
        notes = [
            *map(str, analysis.get("claims_to_check") or []),
            *map(str, analysis.get("privacy_flags") or []),
        ]
        return [str(state.get("conclusion") or ""), *(notes or [""])]
    return []


def score(
    graph: str,
    topic: str,
    thread_id: str,
    entries: list[dict[str, Any]],
    state: dict[str, Any],
    requested: int,
    status: str,
) -> Scored:
    """Score one finished dialogue (``entries``: the transcript's JSON entries)."""
    turns = [e for e in entries if e.get("kind") in ("persona", "human")]
    spoken = [e for e in turns if e.get("kind") == "persona"]
    texts = [str(e.get("text") or "") for e in turns]
    typed = _typed_texts(graph, state)
    if graph == "debate":
        completed = (
            bool((state.get("verdict") or {}).get("winner")) and len(turns) >= requested
        )
    elif graph == "directed_dialogue":
        completed = (
            len(turns) >= requested
            and bool(state.get("conclusion"))
            and bool(state.get("analysis"))
        )
    else:
        completed = status == "done" and len(turns) >= requested
    out = Scored(graph, topic, thread_id, len(turns), requested, completed)
    for i, text in enumerate(texts):
        if echoes(text, texts[:i]):
            out.echo += 1
            out.problems.append(f"echo: {text[:60]!r}")
        if loops(text):
            out.loop += 1
            out.problems.append(f"loop: {text[:60]!r}")
    for text in [*texts, *typed]:
        out.texts += 1
        if is_junk(text):
            out.junk += 1
            out.problems.append(f"junk: {text[:60]!r}")
        if len(words(text)) >= 4:
            out.cut_checked += 1
            if is_cut(text):
                out.cut += 1
                out.problems.append(f"cut: {text[-60:]!r}")
    for text in typed:
        out.typed += 1
        if not text.strip() or copies(text, texts):
            out.typed_bad += 1
            out.problems.append(f"typed: {text[:60]!r}")
    if spoken:
        out.seconds_per_turn = statistics.fmean(
            float(e.get("latency_s") or 0.0) for e in spoken
        )
        out.tokens_per_turn = statistics.fmean(
            float(e.get("completion_tokens") or 0) for e in spoken
        )
    return out


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def totals(scored: list[Scored]) -> dict[str, Any]:
    """The whole run's figures (rates in %)."""
    turns = sum(s.turns for s in scored)
    texts = sum(s.texts for s in scored)
    return {
        "dialogues": len(scored),
        "turns": turns,
        "echo_pct": _rate(sum(s.echo for s in scored), turns),
        "loop_pct": _rate(sum(s.loop for s in scored), turns),
        "junk_pct": _rate(sum(s.junk for s in scored), texts),
        "cut_pct": _rate(
            sum(s.cut for s in scored), sum(s.cut_checked for s in scored)
        ),
        "completion_pct": _rate(sum(s.completed for s in scored), len(scored)),
        "turns_delivered_pct": _rate(turns, sum(s.requested for s in scored)),
        "typed_bad_pct": _rate(
            sum(s.typed_bad for s in scored), sum(s.typed for s in scored)
        ),
        "seconds_per_turn": round(
            statistics.fmean([s.seconds_per_turn for s in scored] or [0.0]), 2
        ),
        "tokens_per_turn": round(
            statistics.fmean([s.tokens_per_turn for s in scored] or [0.0]), 1
        ),
    }


PLANS: dict[str, tuple[dict[str, Any], int]] = {
    # graph -> (input besides the topic, turns requested)
    "debate": ({"rounds": 1}, 2),
    "directed_dialogue": ({"cast_size": 2, "max_turns": 4}, 4),
    "interview": ({"questions": 2}, 4),
}


async def _one(runner: Any, graph: str, topic: str, out_dir: Path) -> Scored:
    extra, requested = PLANS[graph]
    key = "motion" if graph == "debate" else "topic"
    started = time.perf_counter()
    result = await runner.run(graph, {key: topic, **extra})
    answers = iter(ANSWERS * 4)
    while result.status == "interrupted":
        result = await runner.resume(result.thread_id, next(answers))
    transcript = result.transcript
    data = json.loads(transcript.model_dump_json())
    stem = f"{graph}-{TOPICS.index(topic):02d}"
    (out_dir / f"{stem}.md").write_text(transcript.to_markdown())
    (out_dir / f"{stem}.json").write_text(
        json.dumps({"topic": topic, "graph": graph, "transcript": data}, indent=2)
    )
    scored = score(
        graph,
        topic,
        result.thread_id,
        data["entries"],
        dict(result.values),
        requested,
        result.status,
    )
    print(
        f"  {graph:<18} {topic[:44]:<44} {scored.turns}/{requested} turns "
        f"{'done' if scored.completed else 'INCOMPLETE'} "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return scored


async def _main(args: argparse.Namespace) -> int:
    from dialogllm.core import DialogueRunner
    from dialogllm.logging import configure_logging

    configure_logging(level="error")
    os.environ.setdefault("DIALOGLLM_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"dq-{uuid.uuid4().hex[:8]}"
    os.environ["DIALOGLLM_KEY_PREFIX"] = prefix
    from dialogllm.config import get_settings

    get_settings(reload=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(
        args.out or Path(__file__).parent / "results" / "dialogue_quality" / stamp
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    topics = TOPICS[: args.topics]
    graphs = args.graphs.split(",")
    scored: list[Scored] = []
    started = time.perf_counter()
    try:
        async with DialogueRunner() as runner:
            for graph in graphs:
                for topic in topics:
                    scored.append(await _one(runner, graph, topic, out_dir))
    finally:
        import redis

        client = redis.Redis.from_url(os.environ["DIALOGLLM_REDIS_URL"])
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()
    print()
    print(
        f"{'graph':<18} {'topic':<34} turns  echo loop junk  cut typed  s/turn tok/turn"
    )
    for s in scored:
        print(
            f"{s.graph:<18} {s.topic[:34]:<34} {s.turns:>2}/{s.requested:<2} "
            f"{s.echo:>4} {s.loop:>4} {s.junk:>4} {s.cut:>4} {s.typed_bad:>5} "
            f"{s.seconds_per_turn:>7.1f} {s.tokens_per_turn:>8.1f}"
        )
    summary = totals(scored)
    by_graph = {g: totals([s for s in scored if s.graph == g]) for g in graphs}
    print()
    print("totals: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    for graph, figures in by_graph.items():
        print(f"  {graph}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print(f"transcripts: {out_dir}")
    report = {
        "benchmark": "dialogue_quality",
        "model": os.environ.get("DIALOGLLM_LLM_BASE_URL") or "local default",
        "elapsed_s": round(time.perf_counter() - started, 1),
        "totals": summary,
        "by_graph": by_graph,
        "dialogues": [asdict(s) for s in scored],
        "out": str(out_dir),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=len(TOPICS), help="first N")
    parser.add_argument(
        "--graphs", default=",".join(PLANS), help="comma-separated shipped graphs"
    )
    parser.add_argument("--out", default=None, help="where to save transcripts")
    args = parser.parse_args()
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
