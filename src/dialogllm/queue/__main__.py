"""``python -m dialogllm.queue``: run one worker process (until SIGTERM/SIGINT).

Graph references (a ``langgraph.json`` name, ``"pkg.mod:attr"`` or
``"path/file.py:attr"``) are resolved by :mod:`dialogllm.loader`, as in
``dialogllm worker``; this entry point is what tests and benchmarks start as a
subprocess.

>>> python -m dialogllm.queue --redis-url redis://127.0.0.1:6379/0 --concurrency 8
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dialogllm import event_loop
from dialogllm.logging import configure_logging
from dialogllm.queue.client import DEFAULT_QUEUE
from dialogllm.queue.worker import Worker

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and run a worker until it is stopped."""
    parser = argparse.ArgumentParser(prog="python -m dialogllm.queue")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--cluster",
        action="store_true",
        default=None,
        help="the URL is a Redis Cluster node (default: DIALOGLLM_REDIS_CLUSTER)",
    )
    parser.add_argument("--key-prefix", default=None)
    parser.add_argument("--queue", default=DEFAULT_QUEUE)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--lease-ttl", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--retention", type=float, default=24 * 3600.0)
    parser.add_argument("--backoff-base", type=float, default=1.0)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--log-format", choices=["json", "console"], default="json")
    args = parser.parse_args(argv)
    configure_logging(fmt=args.log_format, level=args.log_level)
    worker = Worker(
        args.redis_url,
        key_prefix=args.key_prefix,
        queue=args.queue,
        concurrency=args.concurrency,
        lease_ttl=args.lease_ttl,
        grace=args.grace,
        retention=args.retention,
        backoff_base=args.backoff_base,
        cluster=args.cluster,
    )
    event_loop.run(worker.run())


if __name__ == "__main__":
    main()
