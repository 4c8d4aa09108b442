"""The LLM layer's costs: the local default model and the shared rate limiter.

Local default model (Gemma 3 270M Q4_K_M served in-process by xllamacpp):

- ``assemble_s``: writing the GGUF into the cache (0 when already there);
- ``load_s``: starting the llama.cpp server with the model;
- ``rss_mb``: resident memory of this process before/after loading;
- ``gen_tok_s`` / ``prompt_tok_s``: llama.cpp's own timings for one free-text
  completion (no grammar) of ``--tokens`` tokens;
- ``turn_s``: time for :func:`dialogllm.llm.ask` to return a valid structured
  ``Turn`` from a dialogue prompt (median of ``--turns`` asks), with its attempts.

Redis rate limiter (:class:`dialogllm.llm.RedisRateLimiter`):

- ``acquire_ms`` p50/p99: one reserve (one Lua call) when the bucket has room;
- accuracy under contention: ``--procs`` processes x 4 asyncio tasks hammer one
  model's bucket for ``--seconds``; granted requests vs. the configured rate.

    .venv/bin/python benchmarks/llm_bench.py            # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/llm_bench.py --quick    # ~30 s

Needs Redis (``DIALOGLLM_REDIS_URL``, default 127.0.0.1:6379/0); writes only keys
under ``bench-llm-<random>`` and deletes them. The last line printed is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
import redis.asyncio as aredis
from langchain_core.messages import HumanMessage, SystemMessage

from dialogllm.llm import LLMMetrics, LLMSettings, RedisRateLimiter, ask
from dialogllm.llm.chat import build_chat_model
from dialogllm.llm.local import ensure_model_file, local_server, shutdown_local_server
from dialogllm.llm.settings import ModelTarget
from dialogllm.logging import configure_logging
from dialogllm.models import Turn

REDIS_URL = os.environ.get("DIALOGLLM_REDIS_URL", "redis://127.0.0.1:6379/0")
SCENE = (
    "A conversation about tea.\n\nParticipants:\n- Ada, a host.\n- Bo, a guest."
    "\n\nBo loves green tea.\nBo speaks next: one short sentence."
)
TRANSCRIPT = "Transcript:\nAda: Welcome, Bo! Which tea do you like best?\nBo:"


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


async def bench_local(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(
        os.environ.get("DIALOGLLM_LLM_CACHE_DIR", Path(".dialogllm") / "models")
    )
    settings = LLMSettings(base_url=None, cache_dir=cache, metrics_to_redis=False)
    started = time.perf_counter()
    ensure_model_file(cache)
    assemble_s = time.perf_counter() - started
    rss_before = _rss_mb()
    server = local_server(settings)  # the process-wide server ask() will use
    rss_after = _rss_mb()
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {
        "messages": [
            {"role": "system", "content": SCENE},
            {"role": "user", "content": TRANSCRIPT},
        ],
        "max_tokens": args.tokens,
        "n_predict": args.tokens,
        "temperature": 0.7,
    }
    async with httpx.AsyncClient(timeout=300) as client:
        response = await client.post(
            f"{server.base_url}/chat/completions", json=body, headers=headers
        )
    timings = response.json().get("timings", {})
    metrics = LLMMetrics(to_redis=False)
    model = build_chat_model(
        ModelTarget(model="local"), metrics=metrics, settings=settings
    )
    times: list[float] = []
    attempts: list[int] = []
    messages = [SystemMessage(SCENE), HumanMessage(TRANSCRIPT)]
    sample = ""
    for _ in range(args.turns):
        t0 = time.perf_counter()
        reply = await ask(model, messages, schema=Turn, max_tokens=48)
        times.append(time.perf_counter() - t0)
        attempts.append(reply.attempts)
        sample = reply.value.message
    rss_peak = _rss_mb()
    shutdown_local_server()
    return {
        "assemble_s": round(assemble_s, 3),
        "load_s": round(server.load_seconds, 3),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_load_mb": round(rss_after, 1),
        "rss_peak_mb": round(rss_peak, 1),
        "gen_tok_s": round(float(timings.get("predicted_per_second", 0.0)), 2),
        "prompt_tok_s": round(float(timings.get("prompt_per_second", 0.0)), 2),
        "gen_tokens": int(timings.get("predicted_n", 0)),
        "turn_s_p50": round(statistics.median(times), 3),
        "turn_s_max": round(max(times), 3),
        "turn_attempts_mean": round(statistics.mean(attempts), 2),
        "turns": len(times),
        "turn_sample": sample[:80],
    }


async def bench_acquire(prefix: str, n: int) -> dict[str, Any]:
    client = aredis.Redis.from_url(REDIS_URL)
    limiter = RedisRateLimiter(
        "bench-acquire",
        requests_per_minute=1e9,
        tokens_per_minute=1e12,
        redis=client,
        prefix=prefix,
    )
    await limiter.reserve(tokens=10)  # load the script
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await limiter.reserve(tokens=10)
        samples.append((time.perf_counter() - t0) * 1000)
    await client.aclose()
    samples.sort()
    return {
        "acquire_ms_p50": round(samples[len(samples) // 2], 3),
        "acquire_ms_p99": round(samples[int(len(samples) * 0.99) - 1], 3),
        "acquires": n,
    }


def _hammer(config: dict[str, Any], start: Any, barrier: Any, out: Any) -> None:
    async def run() -> int:
        client = aredis.Redis.from_url(REDIS_URL)
        limiter = RedisRateLimiter(
            "bench-contended",
            requests_per_minute=config["rpm"],
            burst_requests=1,
            redis=client,
            prefix=config["prefix"],
        )
        await client.ping()
        while start.value == 0.0:
            await asyncio.sleep(0.001)
        end = start.value + config["seconds"]
        await asyncio.sleep(max(0.0, start.value - time.time()))
        granted = [0]

        async def task() -> None:
            while time.time() < end:
                await limiter.reserve()
                if time.time() <= end:
                    granted[0] += 1

        await asyncio.gather(*(task() for _ in range(4)))
        await client.aclose()
        return granted[0]

    barrier.wait()
    out.put(asyncio.run(run()))


def bench_contention(
    prefix: str, procs: int, seconds: float, rpm: float
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    start = ctx.Value("d", 0.0)
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    config = {"rpm": rpm, "prefix": prefix, "seconds": seconds}
    workers = [
        ctx.Process(target=_hammer, args=(config, start, barrier, out))
        for _ in range(procs)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    start.value = time.time() + 0.3
    granted = sum(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=10)
    expected = rpm / 60 * seconds + 1
    return {
        "contention_procs": procs,
        "contention_seconds": seconds,
        "contention_rpm": rpm,
        "contention_granted": granted,
        "contention_expected": round(expected, 1),
        "contention_error_pct": round((granted - expected) / expected * 100, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, ~30 s")
    parser.add_argument("--no-local", action="store_true", help="skip the model")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.turns, args.procs, args.seconds = 32, 1, 2, 2.0
    configure_logging(fmt="console", level="warning", stream=sys.stderr)
    prefix = f"bench-llm-{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {"quick": args.quick, "cpus": os.cpu_count()}
    try:
        if not args.no_local:
            results.update(asyncio.run(bench_local(args)))
        results.update(asyncio.run(bench_acquire(prefix, 300 if args.quick else 2000)))
        results.update(bench_contention(prefix, args.procs, args.seconds, 3000.0))
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()
    width = max(len(k) for k in results)
    print(f"{'figure':<{width}}  value")
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
