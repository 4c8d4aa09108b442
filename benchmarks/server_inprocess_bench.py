"""What a request costs inside ``dialogllm serve``: ``threads.create`` and
``runs.create`` through the ASGI app in this process (httpx's ``ASGITransport``: no
socket, no uvicorn, no SDK), on the shared Redis (127.0.0.1:6379, a key prefix of
its own, deleted at the end), with no worker.

``benchmarks/server_bench.py`` compares whole servers over HTTP, where the client
and uvicorn add ~1.5 ms and the 2-core machine's noise is ±30 %; this one isolates
the server's own work (routing, validation, Redis round trips), so two versions of
the server code can be compared in one sitting: run it once as is and once with
``PYTHONPATH=<other checkout>/src``.

    .venv/bin/python benchmarks/server_inprocess_bench.py            # 1,000 creates
    .venv/bin/python benchmarks/server_inprocess_bench.py --samples 300

Prints p50/p99 of each and ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
from redis import Redis

from dialogllm.server.application import create_app

HERE = Path(__file__).resolve().parent
APP = HERE.parent / "tests" / "integration" / "server" / "app" / "langgraph.json"
REDIS_URL = "redis://127.0.0.1:6379/0"
WARMUP = 20


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(samples: int, prefix: str) -> dict[str, dict[str, float]]:
    app = create_app(APP, redis_url=REDIS_URL, key_prefix=prefix, worker=False)
    threads: list[float] = []
    runs: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            for i in range(samples + WARMUP):
                t0 = time.perf_counter()
                thread = (await c.post("/threads", json={})).json()
                t1 = time.perf_counter()
                reply = await c.post(
                    f"/threads/{thread['thread_id']}/runs",
                    json={
                        "assistant_id": "count",
                        "input": {"steps": 1},
                        "multitask_strategy": "enqueue",
                    },
                )
                t2 = time.perf_counter()
                reply.raise_for_status()
                if i >= WARMUP:
                    threads.append((t1 - t0) * 1000)
                    runs.append((t2 - t1) * 1000)
    return {
        name: {"p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99)}
        for name, values in (("threads.create", threads), ("runs.create", runs))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    prefix = f"inprocbench-{uuid.uuid4().hex[:8]}"
    try:
        found = asyncio.run(measure(args.samples, prefix))
    finally:
        client = Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()
    for name, figures in found.items():
        print(
            f"{name:<16} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms"
        )
    print(json.dumps({"bench": "server_inprocess", "samples": args.samples, **found}))


if __name__ == "__main__":
    main()
