"""Chat models per role: endpoint choice, fallback chains, the local default.

This module owns how a role becomes a LangChain chat model. Every target, remote or
local, is a ``ChatOpenAI`` with client-side retries off (:func:`~dialogllm.llm.ask`
retries, so waits are logged and counted once), generation length bounded both as
``max_completion_tokens`` and — for servers that ignore it, like llama.cpp — as
``max_tokens``/``n_predict`` in the body, the process's :class:`LLMMetrics` attached,
and a :class:`RedisRateLimiter` when limits are set. A role with several targets gets
a :class:`FallbackChatModel`.

The rule: with no ``DIALOGLLM_LLM_BASE_URL`` the local default serves, started once
per process by :func:`dialogllm.llm.local.local_server`.

>>> model = get_chat_model(role="persona")          # doctest: +SKIP
>>> model.model_name
'gemma-3-270m'
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any, cast

import openai
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from dialogllm.errors import LLMError
from dialogllm.llm.local import LOCAL_MODEL_ALIAS, local_server
from dialogllm.llm.metrics import LLMMetrics, default_metrics
from dialogllm.llm.ratelimit import RedisRateLimiter
from dialogllm.llm.retry import classify
from dialogllm.llm.settings import LLMSettings, ModelTarget, get_llm_settings
from dialogllm.logging import get_logger, mask_url

__all__ = [
    "FallbackChatModel",
    "LoopSafeChatOpenAI",
    "build_chat_model",
    "find_metrics",
    "get_chat_model",
    "model_label",
]

_log = partial(get_logger, "dialogllm.llm.chat")
_NO_KEY = "not-needed"


class LoopSafeChatOpenAI(ChatOpenAI):
    """A ``ChatOpenAI`` whose async HTTP client belongs to the running event loop.

    langchain-openai shares one async HTTP client per base URL for the whole
    process; a pooled connection opened under one event loop breaks under the next
    (``Event loop is closed``) — e.g. a model built once and reused by
    ``asyncio.run`` per command or by tests. This rebuilds the client when the loop
    changes.
    """

    _client_loop: Any = PrivateAttr(default=None)

    def _bind_client_to_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._client_loop is not None and self._client_loop() is loop:
            return
        key = self.openai_api_key
        root = openai.AsyncOpenAI(
            api_key=key.get_secret_value() if isinstance(key, SecretStr) else _NO_KEY,
            organization=self.openai_organization,
            base_url=self.openai_api_base,
            timeout=cast(Any, self.request_timeout),
            max_retries=self.max_retries or 0,
            default_headers=self.default_headers,
            default_query=self.default_query,
        )
        self.root_async_client = root
        self.async_client = root.chat.completions
        self._client_loop = weakref.ref(loop)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        self._bind_client_to_loop()
        return await super()._agenerate(*args, **kwargs)

    async def _astream(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self._bind_client_to_loop()
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


class FallbackChatModel(BaseChatModel):
    """An ordered chain of chat models: the first that answers serves.

    :func:`~dialogllm.llm.ask` walks the chain itself (each model with its own
    structured mode, retries and limits); invoked directly, each model is invoked
    with its own callbacks and rate limiter, and one failing with a transient or
    endpoint error hands the call to the next one. Each switch is
    logged and counted (``dialogllm_llm_fallbacks``).

    >>> FallbackChatModel(models=[primary, backup]).invoke("hi")   # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    models: list[BaseChatModel] = Field(min_length=1)
    metrics: LLMMetrics | None = Field(default=None, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "dialogllm-fallback"

    @property
    def model_name(self) -> str:
        """The primary model's name."""
        return model_label(self.models[0])

    def note_fallback(
        self, failed: BaseChatModel, nxt: BaseChatModel, why: str
    ) -> None:
        """Log and count a switch from ``failed`` to ``nxt``."""
        src, dst = model_label(failed), model_label(nxt)
        _log().warning("llm_fallback", model=src, to=dst, reason=why)
        metrics = self.metrics or find_metrics(failed)
        if metrics is not None:
            metrics.record_fallback(src, dst)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        for i, model in enumerate(self.models):
            try:
                message = model.invoke(messages, stop=stop, **kwargs)
                return ChatResult(generations=[ChatGeneration(message=message)])
            except Exception as exc:
                if i == len(self.models) - 1 or not _falls_back(exc):
                    raise
                self.note_fallback(model, self.models[i + 1], classify(exc).kind)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        for i, model in enumerate(self.models):
            try:
                message = await model.ainvoke(messages, stop=stop, **kwargs)
                return ChatResult(generations=[ChatGeneration(message=message)])
            except Exception as exc:
                if i == len(self.models) - 1 or not _falls_back(exc):
                    raise
                self.note_fallback(model, self.models[i + 1], classify(exc).kind)
        raise AssertionError("unreachable")  # pragma: no cover


def _falls_back(exc: BaseException) -> bool:
    return isinstance(exc, LLMError) or classify(exc).kind != "other"


def model_label(model: BaseChatModel) -> str:
    """A chat model's name for logs and metrics.

    >>> model_label(ChatOpenAI(model="gpt-4o-mini", api_key="x"))
    'gpt-4o-mini'
    """
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def find_metrics(model: BaseChatModel) -> LLMMetrics | None:
    """The :class:`LLMMetrics` handler attached to ``model``, if any."""
    callbacks = model.callbacks
    handlers: Sequence[Any] = (
        callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", [])
    ) or []
    for handler in handlers:
        if isinstance(handler, LLMMetrics):
            return handler
    return (
        getattr(model, "metrics", None)
        if isinstance(model, FallbackChatModel)
        else None
    )


def build_chat_model(
    target: ModelTarget,
    *,
    metrics: LLMMetrics | None = None,
    settings: LLMSettings | None = None,
    callbacks: Sequence[BaseCallbackHandler] = (),
) -> LoopSafeChatOpenAI:
    """A ``ChatOpenAI`` for one resolved target (the local default when
    ``target.base_url`` is ``None``).

    >>> t = ModelTarget(model="m", base_url="http://127.0.0.1:9/v1")
    >>> build_chat_model(t).model_name
    'm'
    """
    settings = settings or get_llm_settings()
    if target.is_local:
        server = local_server(settings)
        base_url, model = server.base_url, LOCAL_MODEL_ALIAS
        api_key = SecretStr(server.api_key)
    else:
        base_url, model = str(target.base_url), target.model
        api_key = target.api_key or SecretStr(os.environ.get("OPENAI_API_KEY", _NO_KEY))
    handlers: list[BaseCallbackHandler] = list(callbacks)
    if metrics is not None and metrics not in handlers:
        handlers.append(metrics)
    limiter = None
    if target.requests_per_minute or target.tokens_per_minute:
        limiter = RedisRateLimiter(
            model,
            requests_per_minute=target.requests_per_minute,
            tokens_per_minute=target.tokens_per_minute,
            max_wait_s=settings.rate_limit_max_wait_s,
            default_tokens=target.max_tokens,
            metrics=metrics,
        )
    extra_body: dict[str, Any] | None = None
    if target.length_in_extra_body:
        extra_body = {"max_tokens": target.max_tokens, "n_predict": target.max_tokens}
    sampling = target.sampling()
    penalties = {
        k: sampling.pop(k)
        for k in ("presence_penalty", "frequency_penalty")
        if k in sampling
    }
    if sampling:  # llama.cpp's own repetition controls travel in the body
        extra_body = {**(extra_body or {}), **sampling}
    chat = LoopSafeChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=api_key,
        max_completion_tokens=target.max_tokens,
        temperature=target.temperature,
        timeout=target.timeout_s,
        max_retries=0,
        extra_body=extra_body,
        callbacks=handlers or None,
        rate_limiter=limiter,
        metadata={
            "dialogllm_structured_mode": target.structured_mode,
            "dialogllm_local_grammar": target.is_local,
            "dialogllm_timeout_factor": target.timeout_factor,
        },
        **penalties,
    )
    _log().debug("llm_model_built", model=model, base_url=mask_url(base_url))
    return chat


_cache: dict[tuple[str | None, int], BaseChatModel] = {}
_cache_lock = threading.Lock()


def get_chat_model(
    role: str | None = None,
    *,
    settings: LLMSettings | None = None,
    metrics: LLMMetrics | None = None,
) -> BaseChatModel:
    """The chat model serving ``role`` (a ``ChatOpenAI``, or a
    :class:`FallbackChatModel` when the role names several targets).

    With default settings the model is built once per role and reused. With no
    ``DIALOGLLM_LLM_BASE_URL`` this starts the local default model (once per
    process). Raises :class:`~dialogllm.errors.LLMUnavailableError` when the local
    model cannot start.

    >>> model = get_chat_model(role="director")       # doctest: +SKIP
    >>> reply = await ask(model, messages, schema=SpeakerChoice)  # doctest: +SKIP
    """
    cacheable = settings is None and metrics is None
    settings = settings or get_llm_settings()
    key = (role, id(settings))
    if cacheable:
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
    metrics = metrics or default_metrics()
    models = [
        build_chat_model(t, metrics=metrics, settings=settings)
        for t in settings.targets(role)
    ]
    model: BaseChatModel = (
        models[0]
        if len(models) == 1
        else FallbackChatModel(models=list(models), metrics=metrics)
    )
    if cacheable:
        with _cache_lock:
            model = _cache.setdefault(key, model)
    return model
