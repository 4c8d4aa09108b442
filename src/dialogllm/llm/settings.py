"""Settings of the LLM layer (environment prefix ``DIALOGLLM_LLM_``).

This module owns model choice: which endpoint and model each role uses, its ordered
fallbacks, generation bounds, timeouts, retry budgets and rate limits. The rule: the
API key is a :class:`~pydantic.SecretStr` from the moment it is read; nothing here
turns it back into text except the code that builds the HTTP client.

>>> import os
>>> os.environ["DIALOGLLM_LLM_ROLES"] = '{"director": {"model": "gpt-4o-mini"}}'
>>> LLMSettings().targets("director")[0].model
'gpt-4o-mini'
>>> del os.environ["DIALOGLLM_LLM_ROLES"]
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogllm.config import load_settings

__all__ = [
    "LOCAL_MODEL",
    "LLMSettings",
    "ModelTarget",
    "RoleSettings",
    "StructuredMode",
    "get_llm_settings",
]

LOCAL_MODEL = "local"
"""Model name that means the local default (Gemma 3 270M served in-process)."""

StructuredMode = Literal[
    "auto", "json_schema", "function_calling", "json_mode", "prompt"
]


class ModelTarget(BaseModel):
    """One resolved endpoint + model a role can be served by.

    ``base_url`` ``None`` means the local default model.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    max_tokens: int = Field(default=256, gt=0)
    temperature: float | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    structured_mode: StructuredMode = "auto"
    length_in_extra_body: bool = True
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None
    dry_multiplier: float | None = None
    dry_base: float | None = None
    dry_allowed_length: int | None = None
    timeout_factor: float = Field(default=4.0, gt=0)

    def sampling(self) -> dict[str, float | int]:
        """The repetition controls this target sends, by request field name
        (llama.cpp's own ``repeat_penalty``/``dry_*`` only for the local model).

        >>> ModelTarget(model="m", presence_penalty=0.5).sampling()
        {'presence_penalty': 0.5}
        """
        names = ["presence_penalty", "frequency_penalty"]
        if self.is_local:
            names += [
                "repeat_penalty",
                "repeat_last_n",
                "dry_multiplier",
                "dry_base",
                "dry_allowed_length",
            ]
        values = {n: getattr(self, n) for n in names}
        return {n: v for n, v in values.items() if v is not None}

    @property
    def is_local(self) -> bool:
        """True when this target is the in-process local default model."""
        return self.base_url is None

    @property
    def label(self) -> str:
        """The name used in logs and metrics (the model name)."""
        return self.model


class RoleSettings(BaseModel):
    """Per-role overrides; unset fields fall back to the global settings.

    ``model`` may be a list: an ordered chain of fallbacks on the same endpoint.
    ``fallbacks`` adds further targets (other endpoints; ``"model": "local"`` is the
    local default).

    >>> RoleSettings(model=["gpt-4o", "gpt-4o-mini"]).models()
    ['gpt-4o', 'gpt-4o-mini']
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | list[str] | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    structured_mode: StructuredMode | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = Field(default=None, gt=0)
    dry_multiplier: float | None = Field(default=None, ge=0)
    fallbacks: list[RoleSettings] = Field(default_factory=list)

    def models(self) -> list[str]:
        """The model names of this entry, in order (empty when unset)."""
        if self.model is None:
            return []
        return [self.model] if isinstance(self.model, str) else list(self.model)


def _default_cache_dir() -> Path:
    data_dir = os.environ.get("DIALOGLLM_DATA_DIR")
    if data_dir:
        return Path(data_dir) / "models"
    return Path.home() / ".cache" / "dialogllm" / "models"


class LLMSettings(BaseSettings):
    """Settings of the LLM layer.

    Every field maps to ``DIALOGLLM_LLM_<NAME>``. With no ``BASE_URL`` the local
    default model serves every role that does not name its own endpoint.

    >>> LLMSettings(base_url="http://127.0.0.1:8000/v1", model="m").targets()[0].model
    'm'
    """

    model_config = SettingsConfigDict(
        env_prefix="DIALOGLLM_LLM_", extra="ignore", frozen=True
    )

    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; unset: local model."
    )
    api_key: SecretStr | None = Field(default=None, description="Endpoint API key.")
    model: str = Field(default="gpt-4o-mini", description="Model at BASE_URL.")
    roles: dict[str, RoleSettings] = Field(
        default_factory=dict, description="Per-role overrides (JSON)."
    )
    max_tokens: int = Field(default=256, gt=0, description="Generation bound.")
    temperature: float | None = Field(default=None, description="Sampling temp.")
    presence_penalty: float | None = Field(
        default=None,
        ge=-2,
        le=2,
        description="OpenAI presence penalty for endpoints (unset: the server's).",
    )
    frequency_penalty: float | None = Field(
        default=None,
        ge=-2,
        le=2,
        description="OpenAI frequency penalty for endpoints (unset: the server's).",
    )
    timeout_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Per-request timeout (the local model: the floor of a timeout scaled to "
            "max_tokens and its measured speed)."
        ),
    )
    max_retries: int = Field(default=4, ge=0, description="Transient-error retries.")
    structured_retries: int = Field(
        default=2, ge=0, description="Retries when the reply does not validate."
    )
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=20.0, gt=0)
    retry_after_max_s: float = Field(
        default=60.0, gt=0, description="Longest Retry-After honoured."
    )
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    rate_limit_max_wait_s: float = Field(default=120.0, gt=0)
    structured_mode: StructuredMode = "auto"
    length_in_extra_body: bool | None = Field(
        default=None,
        description=(
            "Also send max_tokens/n_predict in the body (servers that ignore "
            "max_completion_tokens). Unset: on for every endpoint but api.openai.com."
        ),
    )
    metrics_to_redis: bool = Field(
        default=True, description="Keep fleet-wide metrics in Redis."
    )
    metrics_window_s: int = Field(default=3600, gt=0)
    # local default model
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where the local model's GGUF is assembled.",
    )
    local_n_ctx: int = Field(default=2048, ge=256, le=32768)
    local_threads: int = Field(default=2, ge=1, le=64)
    local_parallel: int = Field(default=1, ge=1, le=16)
    local_max_tokens: int = Field(default=128, gt=0)
    local_temperature: float = Field(
        default=0.7, description="Local model's temperature for roles not listed."
    )
    local_role_temperatures: dict[str, float] = Field(
        default_factory=lambda: {
            "persona": 0.8,
            "director": 0.5,
            "judge": 0.3,
            "analyst": 0.3,
        },
        description=(
            "Local model's temperature per role (JSON; default persona 0.8, "
            "director 0.5, judge and analyst 0.3)."
        ),
    )
    local_repeat_penalty: float = Field(
        default=1.1, gt=0, description="llama.cpp repeat penalty (1: off)."
    )
    local_repeat_last_n: int = Field(
        default=64, ge=-1, description="Tokens the repeat penalty looks back."
    )
    local_presence_penalty: float = Field(
        default=0.2, ge=-2, le=2, description="Local presence penalty."
    )
    local_frequency_penalty: float = Field(
        default=0.2, ge=-2, le=2, description="Local frequency penalty."
    )
    local_dry_multiplier: float = Field(
        default=0.8, ge=0, description="llama.cpp DRY sampler strength (0: off)."
    )
    local_dry_base: float = Field(default=1.75, gt=1, description="DRY base.")
    local_dry_allowed_length: int = Field(
        default=2, ge=1, description="Longest repeat DRY lets through unpenalized."
    )
    local_timeout_factor: float = Field(
        default=4.0,
        gt=0,
        description=(
            "Local request timeout: this many times the time max_tokens takes at "
            "the measured speed (never below TIMEOUT_S)."
        ),
    )
    strip_special_tokens: bool = Field(
        default=True,
        description=(
            "Strip special tokens (<eos>, <start_of_image>) and bare HTML tags "
            "(<b>, </center>, <br />) from replies."
        ),
    )
    finish_sentences: bool = Field(
        default=True,
        description=(
            "End every reply text of 4+ words at a sentence end (cut back to the "
            "last complete sentence; never a word cut by the schema's caps)."
        ),
    )

    def _length_in_body(self, base_url: str | None) -> bool:
        if self.length_in_extra_body is not None:
            return self.length_in_extra_body
        return base_url is None or "api.openai.com" not in base_url

    def _target(
        self, model: str, entry: RoleSettings | None, role: str | None = None
    ) -> ModelTarget:
        entry = entry or RoleSettings()
        local = model == LOCAL_MODEL or (
            entry.base_url is None and self.base_url is None
        )
        base_url = None if local else (entry.base_url or self.base_url)
        local_temperature = self.local_role_temperatures.get(
            role or "", self.local_temperature
        )

        def pick(own: float | None, local_default: float, remote: float | None) -> Any:
            if own is not None:
                return own
            return local_default if local else remote

        return ModelTarget(
            model=LOCAL_MODEL if local else model,
            base_url=base_url,
            api_key=None if local else (entry.api_key or self.api_key),
            max_tokens=entry.max_tokens
            or (self.local_max_tokens if local else self.max_tokens),
            temperature=pick(entry.temperature, local_temperature, self.temperature),
            presence_penalty=pick(
                entry.presence_penalty,
                self.local_presence_penalty,
                self.presence_penalty,
            ),
            frequency_penalty=pick(
                entry.frequency_penalty,
                self.local_frequency_penalty,
                self.frequency_penalty,
            ),
            repeat_penalty=pick(entry.repeat_penalty, self.local_repeat_penalty, None),
            repeat_last_n=self.local_repeat_last_n if local else None,
            dry_multiplier=pick(entry.dry_multiplier, self.local_dry_multiplier, None),
            dry_base=self.local_dry_base if local else None,
            dry_allowed_length=self.local_dry_allowed_length if local else None,
            timeout_factor=self.local_timeout_factor,
            timeout_s=entry.timeout_s or self.timeout_s,
            requests_per_minute=entry.requests_per_minute or self.requests_per_minute,
            tokens_per_minute=entry.tokens_per_minute or self.tokens_per_minute,
            structured_mode=entry.structured_mode or self.structured_mode,
            length_in_extra_body=self._length_in_body(base_url),
        )

    def targets(self, role: str | None = None) -> list[ModelTarget]:
        """The ordered targets serving ``role`` (first is primary).

        >>> [t.model for t in LLMSettings(base_url=None).targets("persona")]
        ['local']
        """
        entry = self.roles.get(role) if role else None
        if entry is None:
            return [self._target(self.model, None, role)]
        names = entry.models() or [self.model]
        out = [self._target(name, entry, role) for name in names]
        for fallback in entry.fallbacks:
            merged = RoleSettings(
                **{
                    **entry.model_dump(exclude={"fallbacks", "model"}),
                    **fallback.model_dump(exclude_unset=True, exclude={"fallbacks"}),
                }
            )
            out += [
                self._target(n, merged, role) for n in merged.models() or [self.model]
            ]
        return out


@lru_cache(maxsize=1)
def _cached() -> LLMSettings:
    return load_settings(LLMSettings, "LLM settings")


def get_llm_settings(*, reload: bool = False) -> LLMSettings:
    """The LLM settings, read from the environment on first use.

    Raises :class:`~dialogllm.errors.ConfigError` naming each bad variable.

    >>> get_llm_settings().max_retries >= 0
    True
    """
    if reload:
        _cached.cache_clear()
    return _cached()
