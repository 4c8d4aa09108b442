"""How long to wait before trying again: one formula for every retry in the project.

Exponential (``base_s * 2**(attempt-1)``), capped at ``max_s``, with jitter so that
many clients retrying at once spread out: the delay is drawn uniformly from
``[ceiling * (1 - jitter), ceiling]``. ``jitter=0.5`` is "equal jitter" (half fixed,
half random); ``jitter=0`` is plain exponential. Redis clients use redis-py's
``ExponentialWithJitterBackoff`` with the same shape (:mod:`dialogllm.redis.clients`);
the worker's run retries, its reconnect pauses and the LLM layer's retries use
:func:`backoff_delay`.

>>> backoff_delay(3, base_s=1.0, max_s=60.0, jitter=0.0)
4.0
>>> 2.0 <= backoff_delay(3, base_s=1.0, max_s=60.0) <= 4.0
True
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based; 0 counts as 1)."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter must be between 0 and 1")
    ceiling = min(max_s, base_s * float(2 ** max(0, attempt - 1)))
    draw = (rng or random).uniform(0.0, 1.0)
    return ceiling * (1.0 - jitter * draw)
