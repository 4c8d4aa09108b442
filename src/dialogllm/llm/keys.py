"""Redis key schema of the LLM layer: rate-limit buckets and rolling metrics.

Every key of one model carries the same hash tag (``{llm:<model>}``), so a model's
bucket and metric windows live in one Cluster slot and a Lua script may touch them
together. The rule: keys are built only here, never with f-strings elsewhere.

>>> rate_bucket("app", "gpt-4o-mini")
'app:{llm:gpt-4o-mini}:rate'
"""

from __future__ import annotations

import re

from dialogllm.config import get_settings

__all__ = [
    "metrics_minute",
    "metrics_models",
    "model_tag",
    "rate_bucket",
    "resolve_prefix",
]

_UNSAFE = re.compile(r"[{}\s]")


def resolve_prefix(prefix: str | None) -> str:
    """``prefix``, else the process-wide ``DIALOGLLM_KEY_PREFIX``."""
    return prefix if prefix is not None else get_settings().key_prefix


def model_tag(model: str) -> str:
    """The hash tag of one model's keys; braces and spaces become ``_``.

    >>> model_tag("org/my model")
    '{llm:org/my_model}'
    """
    return "{llm:" + _UNSAFE.sub("_", model) + "}"


def rate_bucket(prefix: str, model: str) -> str:
    """Hash holding the token bucket of ``model`` (fields ``r``, ``t``, ``ts``)."""
    return f"{prefix}:{model_tag(model)}:rate"


def metrics_minute(prefix: str, model: str, minute: int) -> str:
    """Hash of ``model``'s counters in one minute (unix time // 60); expires."""
    return f"{prefix}:{model_tag(model)}:metrics:{minute}"


def metrics_models(prefix: str) -> str:
    """Sorted set of model names with metrics, scored by last-seen minute."""
    return f"{prefix}:llm:metrics:models"
