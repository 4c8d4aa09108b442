"""Health checks behind ``dialogllm doctor``: is this machine ready to run dialogues?

Each check returns a :class:`Check` with a status (``ok``, ``warn``, ``fail``) and a
sentence a person can act on. Redis checks: reachable, version 6.2+, persistence
(AOF or RDB), memory policy (``noeviction`` is required: any other policy lets Redis
drop queue entries and checkpoints under memory pressure). Secrets never appear: URLs
are shown with their password masked.

>>> checks = await redis_checks("redis://127.0.0.1:6379/0")   # doctest: +SKIP
>>> [c.name for c in checks]
['redis.reachable', 'redis.version', 'redis.persistence', 'redis.memory_policy']
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from dialogllm.logging import mask_url, redact_text

__all__ = ["Check", "CheckStatus", "redis_checks", "worst"]

MIN_REDIS_VERSION = (6, 2)


class CheckStatus(enum.StrEnum):
    """Outcome of one check, in increasing order of severity."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One check's outcome."""

    name: str
    status: CheckStatus
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for ``--json``)."""
        data = asdict(self)
        data["status"] = self.status.value
        return data


def worst(checks: list[Check]) -> CheckStatus:
    """The most severe status among ``checks`` (``ok`` for none)."""
    order = [CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL]
    return max((c.status for c in checks), key=order.index, default=CheckStatus.OK)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


async def redis_checks(url: str, *, timeout: float = 3.0) -> list[Check]:
    """Check the Redis at ``url``: reachable, version, persistence, memory policy."""
    shown = mask_url(url)
    client = aredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        try:
            info: dict[str, Any] = await client.info()
        except RedisError as exc:
            return [
                Check(
                    "redis.reachable",
                    CheckStatus.FAIL,
                    f"cannot reach Redis at {shown}: {redact_text(str(exc))}. Start "
                    "Redis or fix DIALOGLLM_REDIS_URL (unset it to use the embedded "
                    "Redis).",
                )
            ]
        checks = [Check("redis.reachable", CheckStatus.OK, f"Redis at {shown} answers")]
        version = str(info.get("redis_version", "0"))
        if _version(version) >= MIN_REDIS_VERSION:
            checks.append(Check("redis.version", CheckStatus.OK, f"version {version}"))
        else:
            checks.append(
                Check(
                    "redis.version",
                    CheckStatus.FAIL,
                    f"version {version} is older than 6.2, which DialogueLLM needs",
                )
            )
        aof = bool(info.get("aof_enabled"))
        try:
            save = (await client.config_get("save")).get("save", "")
        except RedisError:  # managed Redis may refuse CONFIG
            save = None
        if aof:
            checks.append(
                Check("redis.persistence", CheckStatus.OK, "AOF persistence is on")
            )
        elif save:
            checks.append(
                Check(
                    "redis.persistence",
                    CheckStatus.WARN,
                    f"only RDB snapshots ({save!r}): a crash loses the writes since "
                    "the last snapshot; turn on appendonly yes",
                )
            )
        else:
            checks.append(
                Check(
                    "redis.persistence",
                    CheckStatus.WARN,
                    "no persistence (or it cannot be read): a Redis restart loses "
                    "every checkpoint and queued run; turn on appendonly yes",
                )
            )
        policy = str(info.get("maxmemory_policy", "unknown"))
        if policy == "noeviction":
            checks.append(
                Check(
                    "redis.memory_policy", CheckStatus.OK, "maxmemory-policy noeviction"
                )
            )
        else:
            checks.append(
                Check(
                    "redis.memory_policy",
                    CheckStatus.WARN,
                    f"maxmemory-policy is {policy}: Redis may silently evict queue "
                    "entries and checkpoints; the queue requires noeviction",
                )
            )
        return checks
    finally:
        await client.aclose()
