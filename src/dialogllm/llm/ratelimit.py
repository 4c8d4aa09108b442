"""Requests-per-minute and tokens-per-minute limits shared through Redis.

This module owns :class:`RedisRateLimiter`: one token bucket per model with two
dimensions (requests and tokens), kept in one Redis hash and updated by **one Lua call
per acquire**. The script *reserves*: it takes the cost at once (the bucket may go
into debt) and answers how long the caller must wait for its share, so callers sleep
exactly that long instead of polling. Every process and machine using the same Redis
and prefix shares the bucket. Time is Redis's ``TIME``, so client clocks do not matter.

The rule: the long-run rate never exceeds the configured rate; a fresh bucket allows
one burst of ``burst_requests``/``burst_tokens`` (default: one second's worth).

>>> limiter = RedisRateLimiter("gpt-4o-mini", requests_per_minute=600,
...                            tokens_per_minute=90_000, redis=client)  # doctest: +SKIP
>>> waited = await limiter.reserve(tokens=900)                        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from functools import partial
from typing import Any

from langchain_core.rate_limiters import BaseRateLimiter

from dialogllm.errors import ConfigError, LLMRateLimitedError
from dialogllm.llm import keys
from dialogllm.llm.metrics import LLMMetrics
from dialogllm.logging import get_logger
from dialogllm.redis.clients import describe
from dialogllm.redis.errors import translate_redis_errors
from dialogllm.redis.loop_client import ClientFactory, LoopClient

__all__ = ["RESERVE_LUA", "RedisRateLimiter", "pending_tokens"]

RESERVE_LUA = """
-- KEYS[1] bucket hash; ARGV: req_rate/s, req_cap, tok_rate/s, tok_cap,
-- req_cost, tok_cost, max_wait_ms, ttl_ms, settle (1: apply, never wait)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rr, rc = tonumber(ARGV[1]), tonumber(ARGV[2])
local tr, tc = tonumber(ARGV[3]), tonumber(ARGV[4])
local rcost, tcost = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_wait, ttl, settle = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9] == '1'
-- a bucket someone else wrote must not refuse or stall every call of the model for
-- good: another type is replaced, a value that is no finite number reads as a full
-- bucket, a debt (waiters' reservations, settled overshoots) counts at most what
-- refills in a minute (or in max_wait, when longer), a time in the future reads as now
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local function num(v, low, high, default)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return default end
  return math.min(high, math.max(low, n))
end
local horizon = math.max(60, max_wait / 1000)
local r = num(h[1], -(rc + rr * horizon), rc, rc)
local tk = num(h[2], -(tc + tr * horizon), tc, tc)
local ts = num(h[3], 0, now, now)
local elapsed = math.max(0, now - ts)
r = math.min(rc, r + elapsed * rr / 1000)
tk = math.min(tc, tk + elapsed * tr / 1000)
local r2, t2 = r - rcost, math.min(tc, tk - tcost)
local wait = 0
if not settle then
  if rr > 0 and r2 < 0 then wait = math.max(wait, -r2 / rr * 1000) end
  if tr > 0 and t2 < 0 then wait = math.max(wait, -t2 / tr * 1000) end
  if wait > max_wait then
    redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(tk),
               'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[1], ttl)
    return {0, tostring(wait)}
  end
end
redis.call('HSET', KEYS[1], 'r', tostring(r2), 't', tostring(t2), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, tostring(wait)}
"""

_log = partial(get_logger, "dialogllm.llm.ratelimit")

_pending_tokens: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "dialogllm_llm_pending_tokens", default=None
)


def pending_tokens() -> contextvars.ContextVar[int | None]:
    """The context variable :func:`~dialogllm.llm.ask` sets to a call's token cost.

    LangChain's limiter interface has no cost argument, so the token estimate of
    the next request travels to :meth:`RedisRateLimiter.aacquire` through this.
    """
    return _pending_tokens


class RedisRateLimiter(BaseRateLimiter):
    """A token bucket per model in Redis: requests/min and tokens/min, fleet-wide.

    Use it directly (:meth:`reserve`), or as LangChain's ``rate_limiter=`` of a chat
    model, where :meth:`aacquire`/:meth:`acquire` take one request plus the token
    estimate :func:`~dialogllm.llm.ask` passes along (else ``default_tokens``).

    >>> RedisRateLimiter("m", requests_per_minute=60).requests_per_minute
    60.0
    """

    def __init__(
        self,
        model: str,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        burst_requests: float | None = None,
        burst_tokens: float | None = None,
        redis: Any = None,
        sync_redis: Any = None,
        prefix: str | None = None,
        max_wait_s: float = 120.0,
        default_tokens: int = 0,
        metrics: LLMMetrics | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        if requests_per_minute is None and tokens_per_minute is None:
            raise ConfigError(
                f"rate limiter for model {model!r} needs requests_per_minute or "
                "tokens_per_minute"
            )
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        self.model = model
        self.requests_per_minute = (
            float(requests_per_minute) if requests_per_minute else None
        )
        self.tokens_per_minute = float(tokens_per_minute) if tokens_per_minute else None
        rps = (self.requests_per_minute or 0.0) / 60.0
        tps = (self.tokens_per_minute or 0.0) / 60.0
        self._req = (rps, burst_requests if burst_requests is not None else max(1, rps))
        self._tok = (tps, burst_tokens if burst_tokens is not None else max(1, tps))
        self.prefix = prefix
        self.max_wait_s = max_wait_s
        self.default_tokens = default_tokens
        self.metrics = metrics
        self._client = LoopClient(redis, client_factory)
        self._sync = sync_redis
        refill = max(
            (self._req[1] / rps) if rps else 0.0, (self._tok[1] / tps) if tps else 0.0
        )
        self._ttl_ms = int(refill * 2000) + 60_000

    @property
    def key(self) -> str:
        """The Redis key of this model's bucket."""
        return keys.rate_bucket(keys.resolve_prefix(self.prefix), self.model)

    def _args(
        self, requests: float, tokens: float, max_wait_s: float, settle: bool
    ) -> list[float]:
        (rps, rcap), (tps, tcap) = self._req, self._tok
        return [
            rps,
            rcap if rps else 0,
            tps,
            tcap if tps else 0,
            requests if rps else 0,
            tokens if tps else 0,
            max_wait_s * 1000,
            self._ttl_ms,
            1 if settle else 0,
        ]

    def _after(self, ok: int, wait_ms: Any, max_wait_s: float, blocking: bool) -> float:
        wait = float(wait_ms) / 1000
        if not ok and blocking:
            raise LLMRateLimitedError(
                f"rate limit of model {self.model!r} would make this call wait "
                f"{wait:.1f}s (> {max_wait_s:.1f}s); raise "
                "DIALOGLLM_LLM_RATE_LIMIT_MAX_WAIT_S or the limits"
            )
        if ok and wait > 0:
            log = _log().info if wait >= 1.0 else _log().debug
            log("llm_rate_limit_wait", model=self.model, wait_s=round(wait, 3))
            if self.metrics is not None:
                self.metrics.record_rate_limit_wait(self.model, wait)
        return wait if ok else -1.0

    async def reserve(
        self,
        requests: float = 1,
        tokens: float = 0,
        *,
        max_wait_s: float | None = None,
        blocking: bool = True,
    ) -> float:
        """Take ``requests`` and ``tokens`` from the bucket, waiting for them.

        Returns the seconds waited. ``blocking=False`` takes nothing and returns
        ``-1.0`` unless the cost is available now. Raises
        :class:`~dialogllm.errors.LLMRateLimitedError` when the wait would exceed
        ``max_wait_s``.

        >>> await limiter.reserve(tokens=500)       # doctest: +SKIP
        0.0
        """
        limit = (
            (max_wait_s if max_wait_s is not None else self.max_wait_s)
            if (blocking)
            else 0.0
        )
        client = self._client.get()
        with translate_redis_errors(describe(client), "reserving a rate limit"):
            ok, wait_ms = await client.eval(
                RESERVE_LUA, 1, self.key, *self._args(requests, tokens, limit, False)
            )
        wait = self._after(int(ok), wait_ms, limit, blocking)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait

    def reserve_sync(
        self, requests: float = 1, tokens: float = 0, *, blocking: bool = True
    ) -> float:
        """Blocking twin of :meth:`reserve` (needs ``sync_redis``)."""
        if self._sync is None:
            raise ConfigError("RedisRateLimiter needs sync_redis= for sync calls")
        limit = self.max_wait_s if blocking else 0.0
        with translate_redis_errors(describe(self._sync), "reserving a rate limit"):
            ok, wait_ms = self._sync.eval(
                RESERVE_LUA, 1, self.key, *self._args(requests, tokens, limit, False)
            )
        wait = self._after(int(ok), wait_ms, limit, blocking)
        if wait > 0:
            time.sleep(wait)
        return wait

    async def settle(self, tokens_delta: float) -> None:
        """Correct the token charge once real usage is known (negative: refund)."""
        if not self._tok[0] or not tokens_delta:
            return
        client = self._client.get()
        with translate_redis_errors(describe(client), "settling a rate limit"):
            await client.eval(
                RESERVE_LUA, 1, self.key, *self._args(0, tokens_delta, 0, True)
            )

    def _cost(self) -> int:
        pending = _pending_tokens.get()
        return pending if pending is not None else self.default_tokens

    def acquire(self, *, blocking: bool = True) -> bool:
        """LangChain interface: take one request (and the pending token cost)."""
        return self.reserve_sync(1, self._cost(), blocking=blocking) >= 0

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """LangChain interface, async: take one request (and the token cost)."""
        return await self.reserve(1, self._cost(), blocking=blocking) >= 0

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(model={self.model!r}, "
            f"requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute})"
        )
