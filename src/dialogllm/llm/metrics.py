"""Per-model LLM metrics: in process, in Prometheus, and fleet-wide in Redis.

:class:`LLMMetrics` is a LangChain callback handler. Attached to a chat model it
records, per model: calls, latency (p50/p95 from a fixed histogram), prompt and
completion tokens, errors by kind; :func:`dialogllm.llm.ask` adds structured-output
retries and failures, fallbacks, and the rate limiter its waiting time. Figures go to
three places: an in-process summary (:meth:`LLMMetrics.snapshot`), Prometheus
counters/histograms (in the default registry, or the handler's ``registry``; created
there when the first figure is recorded, never at import), and per-minute Redis hashes
that expire after the window (:meth:`LLMMetrics.flush`), read back fleet-wide by
:func:`read_llm_metrics`.

The rule: recording never raises into the call being measured — a Redis outage only
costs the fleet-wide figures (logged once per flush).

>>> metrics = LLMMetrics(redis=None)
>>> model = get_chat_model(callbacks=[metrics])            # doctest: +SKIP
>>> metrics.snapshot()["gemma-3-270m"].calls               # doctest: +SKIP
1
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.llm import keys
from dialogllm.llm.retry import classify
from dialogllm.logging import get_logger
from dialogllm.redis.hashes import read_hashes
from dialogllm.redis.loop_client import ClientFactory, LoopClient

__all__ = [
    "LATENCY_BUCKETS_S",
    "LLMMetrics",
    "ModelMetrics",
    "default_metrics",
    "read_llm_metrics",
]

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    15.0,
    30.0,
    60.0,
    120.0,
)
"""Upper bounds of the latency histogram (a last, open bucket follows)."""

_log = partial(get_logger, "dialogllm.llm.metrics")
_MAX_OPEN_RUNS = 10_000
_MAX_PENDING = 2_000  # (model, minute) hashes waiting for a flush
_FLUSH_PAUSE_S = 30.0  # after a failed flush, skip flushing this long


class _Collectors:
    """The Prometheus collectors of one registry (created once per registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> PromCounter:
            return PromCounter(f"dialogllm_llm_{name}", doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: Sequence[float]) -> Histogram:
            buckets = (*buckets, float("inf"))
            return Histogram(
                f"dialogllm_llm_{name}",
                doc,
                ["model"],
                buckets=buckets,
                registry=registry,
            )

        self.calls = counter("calls", "LLM calls", "model")
        self.errors = counter("errors", "LLM call errors", "model", "kind")
        self.tokens = counter("tokens", "LLM tokens", "model", "type")
        self.latency = histogram(
            "latency_seconds", "LLM call latency", LATENCY_BUCKETS_S
        )
        self.so_retries = counter(
            "structured_retries", "Replies that failed validation", "model"
        )
        self.so_failures = counter(
            "structured_failures", "Asks that never validated", "model"
        )
        self.fallbacks = counter(
            "fallbacks", "Switches to a fallback model", "model", "to"
        )
        self.guard_reasks = counter(
            "guard_reasks",
            "Replies a dialogue guard asked again (echo, loop, off side, ...)",
            "model",
            "guard",
        )
        self.rl_wait = histogram(
            "rate_limit_wait_seconds",
            "Time spent waiting for the shared rate limiter",
            (0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )


_collectors: dict[CollectorRegistry, _Collectors] = {}
_collectors_lock = threading.Lock()


def _collectors_for(registry: CollectorRegistry) -> _Collectors:
    """The collectors of ``registry``, registered there on first use (never at
    import), shared by every handler that reports to it."""
    with _collectors_lock:
        found = _collectors.get(registry)
        if found is None:
            found = _collectors[registry] = _Collectors(registry)
        return found


class ModelMetrics(BaseModel):
    """What one model did in a window (or since the process started).

    >>> ModelMetrics(model="m").error_rate
    0.0
    """

    model_config = ConfigDict(frozen=True)

    model: str
    window_s: int | None = None
    calls: int = 0
    errors: dict[str, int] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_mean_s: float | None = None
    structured_retries: int = 0
    structured_failures: int = 0
    guard_reasks: int = 0
    fallbacks: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_s: float = 0.0

    @property
    def error_total(self) -> int:
        """All errors, whatever their kind."""
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        """Errors per call (0 with no calls)."""
        return self.error_total / self.calls if self.calls else 0.0


def _bucket_index(seconds: float) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS_S, seconds)


def _quantile(counts: list[int], q: float) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            low = LATENCY_BUCKETS_S[i - 1] if i > 0 else 0.0
            high = LATENCY_BUCKETS_S[i] if i < len(LATENCY_BUCKETS_S) else low * 2
            return low + (high - low) * max(0.0, rank - seen) / n
        seen += n
    return None  # pragma: no cover - rank <= total always stops the loop


def _summarize(
    model: str, fields: Mapping[str, int], window_s: int | None
) -> ModelMetrics:
    counts = [fields.get(f"lat:{i}", 0) for i in range(len(LATENCY_BUCKETS_S) + 1)]
    timed = sum(counts)
    return ModelMetrics(
        model=model,
        window_s=window_s,
        calls=fields.get("calls", 0),
        errors={k[4:]: v for k, v in fields.items() if k.startswith("err:") and v},
        prompt_tokens=fields.get("prompt_tokens", 0),
        completion_tokens=fields.get("completion_tokens", 0),
        latency_p50_s=_quantile(counts, 0.5),
        latency_p95_s=_quantile(counts, 0.95),
        latency_mean_s=fields.get("lat_sum_ms", 0) / 1000 / timed if timed else None,
        structured_retries=fields.get("so_retries", 0),
        structured_failures=fields.get("so_failures", 0),
        guard_reasks=fields.get("guard_reasks", 0),
        fallbacks=fields.get("fallbacks", 0),
        rate_limit_waits=fields.get("rl_waits", 0),
        rate_limit_wait_s=fields.get("rl_wait_ms", 0) / 1000,
    )


def _model_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> str:
    metadata = kwargs.get("metadata") or {}
    params = kwargs.get("invocation_params") or {}
    for candidate in (
        metadata.get("ls_model_name"),
        params.get("model"),
        params.get("model_name"),
        ((serialized or {}).get("kwargs") or {}).get("model_name"),
        params.get("_type"),
    ):
        if candidate:
            return str(candidate)
    return "unknown"


def _usage(response: LLMResult) -> tuple[int, int]:
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                return int(usage.get("input_tokens", 0)), int(
                    usage.get("output_tokens", 0)
                )
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    return int(token_usage.get("prompt_tokens", 0) or 0), int(
        token_usage.get("completion_tokens", 0) or 0
    )


class LLMMetrics(BaseCallbackHandler):
    """Callback handler recording per-model LLM metrics.

    ``redis``: an asyncio Redis client for the fleet-wide figures; ``None`` with
    ``to_redis=True`` builds one with :func:`dialogllm.redis.async_client` on first
    flush; ``to_redis=False`` keeps figures in process and Prometheus only.
    ``registry``: the Prometheus registry the collectors go to (default: the global
    ``prometheus_client.REGISTRY``), registered on the first figure recorded.

    >>> metrics = LLMMetrics(to_redis=False)
    >>> metrics.record_structured_retry("m")
    >>> metrics.snapshot()["m"].structured_retries
    1
    """

    raise_error = False

    def __init__(
        self,
        redis: Any = None,
        *,
        to_redis: bool = True,
        prefix: str | None = None,
        window_s: int = 3600,
        client_factory: ClientFactory | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.to_redis = to_redis
        self.registry = REGISTRY if registry is None else registry
        self.prefix = prefix
        self.window_s = window_s
        self._client = LoopClient(redis, client_factory)
        self._lock = threading.Lock()
        self._open: dict[UUID, tuple[str, float]] = {}
        self._totals: dict[str, Counter[str]] = defaultdict(Counter)
        self._pending: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self._paused_until = 0.0

    # --- recording ------------------------------------------------------------

    @property
    def _prom(self) -> _Collectors:
        return _collectors_for(self.registry)

    def _add(self, model: str, **fields: int) -> None:
        minute = int(time.time() // 60)
        with self._lock:
            self._totals[model].update(fields)
            if self.to_redis:
                self._pending[(model, minute)].update(fields)
                while len(self._pending) > _MAX_PENDING:  # never flushed: bound it
                    del self._pending[next(iter(self._pending))]

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        """Remember which model a run uses and when it started."""
        with self._lock:
            if len(self._open) >= _MAX_OPEN_RUNS:
                self._open.clear()
            self._open[run_id] = (_model_name(serialized, kwargs), time.perf_counter())

    def _finish(self, run_id: UUID) -> tuple[str, float]:
        with self._lock:
            model, started = self._open.pop(run_id, ("unknown", time.perf_counter()))
        return model, time.perf_counter() - started

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Count a call, its latency and tokens."""
        model, latency = self._finish(run_id)
        prompt, completion = _usage(response)
        self._prom.calls.labels(model).inc()
        self._prom.latency.labels(model).observe(latency)
        self._prom.tokens.labels(model, "prompt").inc(prompt)
        self._prom.tokens.labels(model, "completion").inc(completion)
        self._add(
            model,
            calls=1,
            prompt_tokens=prompt,
            completion_tokens=completion,
            lat_sum_ms=round(latency * 1000),
            **{f"lat:{_bucket_index(latency)}": 1},
        )

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Count a failed call by kind (timeout, rate_limited, auth, ...)."""
        model, _ = self._finish(run_id)
        kind = classify(error).kind
        self._prom.calls.labels(model).inc()
        self._prom.errors.labels(model, kind).inc()
        self._add(model, calls=1, **{f"err:{kind}": 1})

    def record_structured_retry(self, model: str) -> None:
        """A reply did not validate and the model is asked again."""
        self._prom.so_retries.labels(model).inc()
        self._add(model, so_retries=1)

    def record_structured_failure(self, model: str) -> None:
        """No reply validated within the budget."""
        self._prom.so_failures.labels(model).inc()
        self._add(model, so_failures=1)

    def record_guard_reask(self, model: str, guard: str) -> None:
        """A dialogue guard (``echo``, ``loop``, ``side``, ...) refused a reply of
        ``model`` and asks again.

        >>> metrics = LLMMetrics(to_redis=False)
        >>> metrics.record_guard_reask("m", "echo")
        >>> metrics.snapshot()["m"].guard_reasks
        1
        """
        self._prom.guard_reasks.labels(model, guard).inc()
        self._add(model, guard_reasks=1)

    def record_fallback(self, model: str, to: str) -> None:
        """``model`` failed and ``to`` serves instead."""
        self._prom.fallbacks.labels(model, to).inc()
        self._add(model, fallbacks=1)

    def record_rate_limit_wait(self, model: str, seconds: float) -> None:
        """The shared limiter made a call wait ``seconds``."""
        self._prom.rl_wait.labels(model).observe(seconds)
        self._add(model, rl_waits=1, rl_wait_ms=round(seconds * 1000))

    # --- reading and flushing -------------------------------------------------

    def snapshot(self) -> dict[str, ModelMetrics]:
        """This process's figures per model since it started."""
        with self._lock:
            totals = {m: dict(c) for m, c in self._totals.items()}
        return {m: _summarize(m, f, None) for m, f in totals.items()}

    async def flush(self) -> int:
        """Write pending figures to Redis (one pipeline); returns hashes written.

        Never raises: a failure is logged, the figures of that flush are dropped, and
        flushing pauses for 30 s so a Redis outage does not slow every call.
        """
        if not self.to_redis or time.monotonic() < self._paused_until:
            return 0
        with self._lock:
            pending, self._pending = self._pending, defaultdict(Counter)
        if not pending:
            return 0
        prefix = keys.resolve_prefix(self.prefix)
        ttl = self.window_s + 120
        try:
            client = self._client.get()
            pipe = client.pipeline(transaction=False)
            latest: dict[str, int] = {}
            for (model, minute), fields in pending.items():
                key = keys.metrics_minute(prefix, model, minute)
                for field, value in fields.items():
                    if value:
                        pipe.hincrby(key, field, value)
                pipe.expire(key, ttl)
                latest[model] = max(latest.get(model, 0), minute)
            index = keys.metrics_models(prefix)
            pipe.zadd(index, {m: minute for m, minute in latest.items()})
            oldest = int(time.time() // 60) - self.window_s // 60 - 1
            pipe.zremrangebyscore(index, "-inf", oldest)
            pipe.expire(index, ttl)
            await pipe.execute()
        except Exception as exc:
            self._paused_until = time.monotonic() + _FLUSH_PAUSE_S
            _log().warning("llm_metrics_flush_failed", error=classify(exc).detail)
            return 0
        return len(pending)


async def read_llm_metrics(
    redis: Any,
    *,
    prefix: str | None = None,
    window_s: int = 3600,
    now: float | None = None,
) -> dict[str, ModelMetrics]:
    """Fleet-wide figures per model over the last ``window_s`` seconds.

    >>> summary = await read_llm_metrics(client)                   # doctest: +SKIP
    >>> summary["gpt-4o-mini"].latency_p95_s
    1.84
    """
    prefix = keys.resolve_prefix(prefix)
    current = int((now if now is not None else time.time()) // 60)
    first = current - max(1, window_s // 60) + 1
    raw_models = await redis.zrangebyscore(keys.metrics_models(prefix), first, "+inf")
    models = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw_models)
    if not models:
        return {}
    minutes = range(first, current + 1)
    results = await read_hashes(
        redis, [keys.metrics_minute(prefix, m, t) for m in models for t in minutes]
    )
    span = len(minutes)
    out: dict[str, ModelMetrics] = {}
    for i, model in enumerate(models):
        fields: Counter[str] = Counter()
        for raw in results[i * span : (i + 1) * span]:
            for k, v in (raw or {}).items():
                name = k.decode() if isinstance(k, bytes) else str(k)
                fields[name] += int(v)
        out[model] = _summarize(model, fields, window_s)
    return out


_default: LLMMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> LLMMetrics:
    """The process-wide handler :func:`~dialogllm.llm.get_chat_model` attaches.

    Writes to Redis unless ``DIALOGLLM_LLM_METRICS_TO_REDIS=false``.
    """
    global _default
    with _default_lock:
        if _default is None:
            from dialogllm.llm.settings import get_llm_settings

            settings = get_llm_settings()
            _default = LLMMetrics(
                to_redis=settings.metrics_to_redis, window_s=settings.metrics_window_s
            )
        return _default
