"""Settings read from the environment (prefix ``DIALOGLLM_``), validated once.

This module owns the process-wide settings that are not specific to one layer: where
Redis is, the key prefix, logging. The LLM layer keeps its own settings next to its
code (``dialogllm.llm.settings``) under the prefix ``DIALOGLLM_LLM_``.

>>> import os
>>> os.environ["DIALOGLLM_REDIS_URL"] = "redis://127.0.0.1:6379/2"
>>> get_settings(reload=True).redis_url
'redis://127.0.0.1:6379/2'
>>> del os.environ["DIALOGLLM_REDIS_URL"]
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogllm.errors import ConfigError, InputValidationError

__all__ = ["Settings", "check_id", "check_ids", "get_settings", "load_settings"]

S = TypeVar("S", bound=BaseSettings)

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    """Process-wide settings.

    Every field maps to an environment variable: ``redis_url`` is
    ``DIALOGLLM_REDIS_URL``, ``key_prefix`` is ``DIALOGLLM_KEY_PREFIX``, and so on.
    """

    model_config = SettingsConfigDict(
        env_prefix="DIALOGLLM_", extra="ignore", frozen=True
    )

    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis URL (redis://, rediss:// with TLS, unix://; user:password@ for "
            "ACL users). Unset: the embedded Redis in the data directory."
        ),
    )
    redis_cluster: bool = Field(
        default=False, description="Treat DIALOGLLM_REDIS_URL as a Redis Cluster node."
    )
    key_prefix: str = Field(
        default="dialogllm",
        min_length=1,
        max_length=64,
        description="Prefix of every Redis key, so several apps can share a Redis.",
    )
    data_dir: Path = Field(
        default=Path(".dialogllm"),
        description="Where local state lives (the local model file, embedded Redis).",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description=(
            "The event loop of DialogueLLM's own processes (worker, CLI commands, "
            "serve's worker): uvloop where it is installed (Linux, macOS), else "
            "asyncio's; asyncio to debug with asyncio's own tools."
        ),
    )
    log_format: Literal["json", "console"] = Field(
        default="console", description="json in production, console for people."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level that is logged."
    )
    max_input_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description=(
            "Largest run input (JSON bytes) the queue accepts; larger is refused "
            "with PayloadTooLargeError before anything is written."
        ),
    )
    max_id_length: int = Field(
        default=200,
        ge=8,
        le=4096,
        description="Longest thread id or idempotency key accepted (characters).",
    )
    allowed_msgpack_modules: str = Field(
        default="",
        description=(
            "Your own types that checkpoints may hold, comma-separated module:Name "
            "(e.g. myapp.state:Fact); anything else read from Redis is refused."
        ),
    )
    checkpoint_ttl_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Expire a thread's checkpoints this long after its last write.",
    )
    followup_claim_seconds: float = Field(
        default=30,
        gt=0,
        description=(
            "How long an API process's claim on a run's webhook or stateless "
            "clean-up lasts unrenewed; another process takes it over after that."
        ),
    )

    alert_error_rate: float = Field(
        default=0.2, ge=0, le=1, description="Alert above this share of failed runs."
    )
    alert_dead_letters: int = Field(
        default=1, ge=1, description="Alert at this many dead-lettered runs."
    )
    alert_queue_age_seconds: float = Field(
        default=300, gt=0, description="Alert when a queued run waits this long."
    )
    alert_no_workers: bool = Field(
        default=True, description="Alert when runs wait and no worker is alive."
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_REDIS_SCHEMES):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if any(ch in value for ch in "{}") or value != value.strip():
            raise ValueError("must not contain braces or surrounding spaces")
        return value


@lru_cache(maxsize=1)
def _cached_settings() -> Settings:
    return load_settings(Settings, "settings")


def check_id(value: str, what: str, settings: Settings | None = None) -> str:
    """``value`` if it is a usable id (thread id, idempotency key): not blank, at most
    ``DIALOGLLM_MAX_ID_LENGTH`` characters; else :class:`InputValidationError`.

    >>> check_id("t-1", "thread id")
    't-1'
    """
    limit = (settings or get_settings()).max_id_length
    if not value.strip() or len(value) > limit:
        raise InputValidationError(
            f"{what} must be 1 to {limit} characters, got {len(value)} "
            "(DIALOGLLM_MAX_ID_LENGTH)"
        )
    return value


def check_ids(ids: Mapping[str, str | None], settings: Settings | None = None) -> None:
    """:func:`check_id` for each id of ``ids`` (what it is → the id) that is given
    (not ``None``).

    >>> check_ids({"thread id": "t-1", "run id": None})
    """
    settings = settings or get_settings()
    for what, value in ids.items():
        if value is not None:
            check_id(value, what, settings)


def load_settings(cls: type[S], what: str) -> S:
    """Read a settings class from its environment variables; a bad value raises a
    :class:`~dialogllm.errors.ConfigError` naming each bad variable.

    >>> load_settings(Settings, "settings").max_id_length > 0
    True
    """
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid {what}: {problems}") from None


def get_settings(*, reload: bool = False) -> Settings:
    """Return the settings, read from the environment on first use.

    ``reload=True`` reads the environment again (tests, long-lived shells).
    Raises :class:`~dialogllm.errors.ConfigError` naming each bad variable.
    """
    if reload:
        _cached_settings.cache_clear()
    return _cached_settings()
