"""Typed replies: one call path from messages to a validated pydantic instance.

This module owns :func:`ask`. It picks the strongest structured-output mode the model
offers — ``json_schema`` (the server constrains decoding to the schema; llama.cpp
turns it into a grammar), else ``function_calling``, else ``json_mode`` with the
schema in the prompt, else plain ``prompt`` (schema in the prompt, JSON parsed from
the text; what any ``BaseChatModel`` such as a scripted fake gets). A ``400`` saying
a mode is unsupported steps down to the next mode and is remembered per model.

Failures are handled in two loops: transient ones (timeouts, connection errors, 429,
5xx) are retried with exponential backoff and jitter, honouring ``Retry-After``;
permanent ones (401, 403, 404, a request larger than the model's context, other
4xx) raise at once. A reply that does not
validate is asked again with the validation error fed back, up to a budget, then
:class:`~dialogllm.errors.StructuredOutputError` carries every raw output.

The rule: :func:`ask` returns a validated value or raises a typed error — never
``None`` (LESSONS: a skipped tool call must not pass as a reply).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, Literal, TypeVar, cast

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from dialogllm.errors import (
    LLMContextLengthError,
    LLMError,
    LLMRateLimitedError,
    LLMRequestError,
    LLMUnavailableError,
    StructuredOutputError,
)
from dialogllm.llm.chat import FallbackChatModel, find_metrics, model_label
from dialogllm.llm.local import generation_speed
from dialogllm.llm.metrics import LLMMetrics
from dialogllm.llm.ratelimit import RedisRateLimiter, pending_tokens
from dialogllm.llm.retry import Failure, backoff_delay, classify
from dialogllm.llm.settings import LLMSettings, get_llm_settings
from dialogllm.logging import get_logger, mask_url
from dialogllm.readability import finish_sentence, strip_special_tokens, words

__all__ = [
    "Mode",
    "StructuredReply",
    "TokenUsage",
    "ask",
    "is_local_model",
    "local_grammar",
    "local_timeout",
    "strict_json_schema",
    "tidy_reply",
]

T = TypeVar("T", bound=BaseModel)
Mode = Literal["json_schema", "function_calling", "json_mode", "prompt"]
_LADDER: tuple[Mode, ...] = ("json_schema", "function_calling", "json_mode", "prompt")
_log = partial(get_logger, "dialogllm.llm.ask")
_INT_CAP = 999_999
_TOKENS_PER_FIELD = 6
_CHARS_PER_TOKEN = 2
_mode_memory: dict[int, tuple[weakref.ref[BaseChatModel], Mode]] = {}


@dataclass(frozen=True)
class TokenUsage:
    """Tokens a reply cost (summed over every attempt of one :func:`ask`).

    >>> TokenUsage(prompt_tokens=10, completion_tokens=5).total_tokens
    15
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class StructuredReply(Generic[T]):
    """A validated reply: the value, the raw text it came from, and what it cost.

    >>> reply = await ask(model, messages, schema=Turn)     # doctest: +SKIP
    >>> reply.value.message, reply.attempts, reply.usage.total_tokens
    ('Green tea, always.', 1, 93)
    """

    value: T
    raw: str
    message: AIMessage
    usage: TokenUsage
    attempts: int
    latency_s: float
    model: str
    mode: Mode
    raw_outputs: list[str] = field(default_factory=list)


def strict_json_schema(
    schema: type[BaseModel], *, max_tokens: int | None = None, squeeze: int = 1
) -> dict[str, Any]:
    """The JSON schema of ``schema`` in the strict form OpenAI and llama.cpp accept:
    every property required, no additional properties, no defaults.

    With ``max_tokens``, every string's ``maxLength`` is lowered so the whole reply
    fits in that many tokens (about 6 tokens of JSON per property, the rest shared
    among the string fields at ~2 characters a token, an array counted at its
    ``maxItems`` or 2 items): a constrained decoder then
    closes the JSON instead of being cut off; integers without bounds get six
    digits at most (small models otherwise write ``1000000000...`` to the limit).
    This only narrows the schema, so a value it allows still validates. ``squeeze``
    divides the string caps further: :func:`ask` doubles it after a reply that ran
    out of tokens (text such as digits costs a token a character).

    >>> from pydantic import BaseModel
    >>> class T(BaseModel):
    ...     a: int = 1
    >>> strict_json_schema(T)["required"]
    ['a']
    """

    source = schema.model_json_schema()
    cap: int | None = None
    if max_tokens is not None:
        fields, strings = _slots(source, source.get("$defs", {}), 0)
        budget = max_tokens - _TOKENS_PER_FIELD * fields
        cap = max(8, budget * _CHARS_PER_TOKEN // max(1, strings * squeeze))

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: fix(v) for k, v in node.items() if k not in ("default", "title")}
            if out.get("type") == "object" and isinstance(out.get("properties"), dict):
                out["required"] = list(out["properties"])
                out["additionalProperties"] = False
            if cap is not None and out.get("type") == "string" and "enum" not in out:
                out["maxLength"] = min(int(out.get("maxLength", cap)), cap)
            if cap is not None and out.get("type") == "integer":
                out["maximum"] = min(out.get("maximum", _INT_CAP), _INT_CAP)
                out["minimum"] = max(out.get("minimum", -_INT_CAP), -_INT_CAP)
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    out = cast(dict[str, Any], fix(source))
    out.pop("description", None)
    return out


def _slots(node: Any, defs: dict[str, Any], depth: int) -> tuple[int, int]:
    """(properties, free strings) a value of ``node`` holds, arrays multiplied."""
    if not isinstance(node, dict) or depth > 8:
        return 0, 0
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _slots(defs.get(ref.split("/")[-1]), defs, depth + 1)
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        return max((_slots(o, defs, depth + 1) for o in options), default=(0, 0))
    kind = node.get("type")
    if kind == "object":
        fields = strings = 0
        for prop in (node.get("properties") or {}).values():
            f, s = _slots(prop, defs, depth + 1)
            fields, strings = fields + 1 + f, strings + s
        return fields, strings
    if kind == "array":
        f, s = _slots(node.get("items"), defs, depth + 1)
        count = int(node.get("maxItems", 2))
        return f * count, s * count
    return (0, 1) if kind == "string" and "enum" not in node else (0, 0)


def local_grammar(
    schema: type[BaseModel], max_tokens: int | None = None, squeeze: int = 1
) -> str:
    """A llama.cpp grammar for ``schema`` that writes compact JSON.

    llama.cpp's own ``json_schema`` grammar lets the model spend tokens on newlines
    and indentation (a small model does, and runs out of budget mid-object); this
    asks llguidance for JSON without free whitespace.

    >>> from dialogllm.models import Turn
    >>> local_grammar(Turn).startswith("%llguidance")
    True
    """
    import xllamacpp

    strict = strict_json_schema(schema, max_tokens=max_tokens, squeeze=squeeze)
    strict["x-guidance"] = {"whitespace_flexible": False}
    return str(xllamacpp.json_schema_to_grammar(json.dumps(strict)))


def _initial_mode(model: BaseChatModel, forced: Mode | None) -> Mode:
    if forced is not None:
        return forced
    remembered = _mode_memory.get(id(model))
    if remembered is not None and remembered[0]() is model:
        return remembered[1]
    if isinstance(model, ChatOpenAI):
        configured = (model.metadata or {}).get("dialogllm_structured_mode", "auto")
        return cast(Mode, configured) if configured in _LADDER else "json_schema"
    return "prompt"


def _remember(model: BaseChatModel, mode: Mode) -> None:
    _mode_memory[id(model)] = (weakref.ref(model), mode)


def _schema_prompt(schema: type[BaseModel]) -> str:
    return (
        "Reply with one JSON object, and nothing else, that matches this JSON "
        f"schema:\n{json.dumps(schema.model_json_schema(), separators=(',', ':'))}"
    )


def _feedback(error: str) -> str:
    return (
        f"That reply was not valid: {error}\n"
        "Reply again with only the corrected JSON object."
    )


_OPENAI_SAMPLING = frozenset({"presence_penalty", "frequency_penalty"})


def is_local_model(model: BaseChatModel) -> bool:
    """Whether ``model`` is the in-process local default (llama.cpp)."""
    return isinstance(model, ChatOpenAI) and bool(
        (model.metadata or {}).get("dialogllm_local_grammar")
    )


def local_timeout(model: BaseChatModel, max_tokens: int | None) -> float | None:
    """The timeout of one local request for ``max_tokens``: scaled to the model's
    measured speed (see :class:`~dialogllm.llm.local.GenerationSpeed`), never below
    the configured ``timeout_s``; ``None`` for any other model.

    >>> local_timeout(ChatOpenAI(model="m", api_key="x"), 64) is None
    True
    """
    if not is_local_model(model):
        return None
    assert isinstance(model, ChatOpenAI)
    floor = model.request_timeout
    floor_s = float(floor) if isinstance(floor, int | float) else 60.0
    factor = float((model.metadata or {}).get("dialogllm_timeout_factor", 4.0))
    bound = max_tokens or model.max_tokens or 128
    return generation_speed().timeout_s(bound, floor_s=floor_s, factor=factor)


def _bind(
    model: BaseChatModel,
    mode: Mode,
    schema: type[BaseModel],
    max_tokens: int | None,
    temperature: float | None,
    squeeze: int = 1,
    sampling: Mapping[str, float] | None = None,
    timeout_scale: float = 1.0,
) -> Runnable[Any, Any]:
    if not isinstance(model, ChatOpenAI):
        return model
    kwargs: dict[str, Any] = {}
    local = is_local_model(model)
    timeout = local_timeout(model, max_tokens)
    if timeout is not None:
        kwargs["timeout"] = timeout * timeout_scale
    for name, value in (sampling or {}).items():
        if name in _OPENAI_SAMPLING:
            kwargs[name] = value
        elif local:  # llama.cpp's own controls (repeat_penalty, dry_multiplier)
            kwargs["extra_body"] = {
                **kwargs.get("extra_body", model.extra_body or {}),
                name: value,
            }
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
        if model.extra_body and "n_predict" in model.extra_body:
            kwargs["extra_body"] = {
                **kwargs.get("extra_body", model.extra_body),
                "max_tokens": max_tokens,
                "n_predict": max_tokens,
            }
    if temperature is not None:
        kwargs["temperature"] = temperature
    name = schema.__name__
    if mode == "json_schema" and (model.metadata or {}).get("dialogllm_local_grammar"):
        kwargs["extra_body"] = {
            **kwargs.get("extra_body", model.extra_body or {}),
            "grammar": local_grammar(schema, max_tokens, squeeze),
        }
    elif mode == "json_schema":
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": name,
                "schema": strict_json_schema(
                    schema, max_tokens=max_tokens, squeeze=squeeze
                ),
                "strict": True,
            },
        }
    elif mode == "json_mode":
        kwargs["response_format"] = {"type": "json_object"}
    elif mode == "function_calling":
        tool = {
            "type": "function",
            "function": {
                "name": name,
                "description": (schema.__doc__ or name).strip()[:1000],
                "parameters": strict_json_schema(schema),
                "strict": True,
            },
        }
        return model.bind_tools([tool], tool_choice=name).bind(**kwargs)
    return model.bind(**kwargs)


def _raw_text(message: AIMessage, mode: Mode) -> str:
    if mode == "function_calling" and message.tool_calls:
        return json.dumps(message.tool_calls[0]["args"])
    content = message.content
    if isinstance(content, str):
        return content
    parts = [
        p if isinstance(p, str) else str(p.get("text", ""))
        for p in content
        if isinstance(p, str | dict)
    ]
    return "".join(parts)


def _parse(raw: str, schema: type[T]) -> T:
    try:
        return schema.model_validate_json(raw)
    except ValidationError as first:
        start = raw.find("{")
        if start < 0:
            raise
        try:
            data, _ = json.JSONDecoder().raw_decode(raw[start:])
        except json.JSONDecodeError:
            raise first from None
        return schema.model_validate(data)


def _string_caps(schema: dict[str, Any]) -> set[int]:
    """Every ``maxLength`` of a (strict) JSON schema."""
    caps: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and "maxLength" in node:
                caps.add(int(node["maxLength"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return caps


def _tidy_text(
    text: str, *, caps: set[int], cut: bool, strip: bool, finish: bool
) -> str:
    if strip:
        text = strip_special_tokens(text)
    if not finish:
        return text
    if (cut or len(text) in caps) and len(text.split()) > 1:
        text = text.rsplit(None, 1)[0]  # the cap stopped it inside a word
    return finish_sentence(text) if len(words(text)) >= 4 else text


def tidy_reply(
    value: T,
    *,
    caps: set[int] = frozenset(),  # type: ignore[assignment]
    cut: bool = False,
    strip_special: bool = True,
    finish_sentences: bool = True,
) -> T:
    """``value`` with every free text repaired: special tokens stripped, a text of
    four words or more ended at a sentence end, and a last word the schema's
    ``maxLength`` (one of ``caps``) or the token bound (``cut``) stopped inside
    dropped. Enum-like strings pass through unchanged when they are already clean.
    A list item left empty (it was only special tokens) is dropped from its list.
    Raises ``ValidationError`` when the repaired value no longer validates (e.g. a
    reply that was only special tokens, or a list left shorter than its minimum).

    >>> from dialogllm.models import Turn
    >>> tidy_reply(Turn(message="<eos>Trains are fast. Buses reach")).message
    'Trains are fast.'
    """

    def fix(node: Any) -> Any:
        if isinstance(node, str):
            return _tidy_text(
                node,
                caps=set(caps),
                cut=cut,
                strip=strip_special,
                finish=finish_sentences,
            )
        if isinstance(node, dict):
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            # an item the repair emptied (only special tokens) goes, not the reply
            pairs = [(v, fix(v)) for v in node]
            return [f for v, f in pairs if not _emptied(v, f)]
        return node

    data = value.model_dump(mode="json")
    fixed = fix(data)
    if fixed == data:
        return value
    return type(value).model_validate(fixed)


def _emptied(before: Any, after: Any) -> bool:
    """Whether the repair left nothing of a string that was not empty (only
    special tokens, or only whitespace)."""
    return isinstance(before, str) and after != before and not after.strip()


def _tidied(
    value: T,
    *,
    caps: set[int],
    cut: bool,
    strip_special: bool,
    finish_sentences: bool,
) -> T:
    """:func:`tidy_reply`, stepping back when a repair breaks the schema: a reply
    whose ended sentences no longer validate keeps only its stripped special tokens;
    one that was only special tokens raises (asked again)."""
    try:
        return tidy_reply(
            value,
            caps=caps,
            cut=cut,
            strip_special=strip_special,
            finish_sentences=finish_sentences,
        )
    except ValidationError:
        if not finish_sentences:
            raise
    return tidy_reply(value, strip_special=strip_special, finish_sentences=False)


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
    return str(exc)[:300]


def _usage(message: AIMessage) -> TokenUsage:
    usage = message.usage_metadata
    if usage:
        return TokenUsage(int(usage["input_tokens"]), int(usage["output_tokens"]))
    token_usage = (message.response_metadata or {}).get("token_usage") or {}
    return TokenUsage(
        int(token_usage.get("prompt_tokens", 0) or 0),
        int(token_usage.get("completion_tokens", 0) or 0),
    )


def _truncated_message(exc: openai.LengthFinishReasonError) -> AIMessage:
    """The partial reply of a completion cut at the length limit."""
    completion = exc.completion
    text = completion.choices[0].message.content if completion.choices else ""
    usage = completion.usage
    prompt = usage.prompt_tokens if usage else 0
    output = usage.completion_tokens if usage else 0
    return AIMessage(
        content=text or "",
        usage_metadata={
            "input_tokens": prompt,
            "output_tokens": output,
            "total_tokens": prompt + output,
        },
        response_metadata={"finish_reason": "length", "model_name": completion.model},
    )


def _scrub(text: str, model: BaseChatModel) -> str:
    """``text`` with the model's own API key masked, whatever its shape."""
    key = getattr(model, "openai_api_key", None)
    secret = key.get_secret_value() if key is not None else ""
    if len(secret) >= 6:
        text = text.replace(secret, "***")
    return text


def _endpoint(model: BaseChatModel) -> str:
    base = getattr(model, "openai_api_base", None)
    return f" at {mask_url(str(base))}" if base else ""


def _characters(messages: list[BaseMessage]) -> int:
    return sum(len(str(m.content)) for m in messages)


def _estimate_tokens(messages: list[BaseMessage], max_tokens: int | None) -> int:
    return _characters(messages) // 4 + 1 + (max_tokens or 0)


def _input_size(messages: list[BaseMessage], max_tokens: int | None) -> str:
    """How large a request was, for a refusal that says it was too large.

    >>> _input_size([HumanMessage("x" * 400)], 64)
    'The input (1 message, 400 characters, about 101 prompt tokens, plus max_tokens=64 for the reply)'
    """  # noqa: E501
    n = len(messages)
    reply = f", plus max_tokens={max_tokens} for the reply" if max_tokens else ""
    return (
        f"The input ({n} message{'s' if n != 1 else ''}, "
        f"{_characters(messages)} characters, about "
        f"{_estimate_tokens(messages, None)} prompt tokens{reply})"
    )


class _Call:
    """One model's side of an :func:`ask`: transient retries and mode steps."""

    def __init__(
        self,
        model: BaseChatModel,
        schema: type[BaseModel],
        settings: LLMSettings,
        mode: Mode | None,
        max_tokens: int | None,
        temperature: float | None,
        max_retries: int,
        sampling: Mapping[str, float] | None = None,
    ) -> None:
        self.model = model
        self.sampling = sampling
        self.timeout_scale = 1.0  # doubled after a local timeout: never the same wait
        self.schema = schema
        self.settings = settings
        self.forced = mode is not None
        self.mode = _initial_mode(model, mode)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_retries = max_retries
        self.squeeze = 1  # divisor of the schema's string caps; doubled on truncation
        self.label = model_label(model)
        limiter = getattr(model, "rate_limiter", None)
        self.limiter = limiter if isinstance(limiter, RedisRateLimiter) else None

    def _messages(self, conversation: list[BaseMessage]) -> list[BaseMessage]:
        if self.mode in ("json_mode", "prompt"):
            return [*conversation, HumanMessage(content=_schema_prompt(self.schema))]
        return conversation

    def _failure_log(self, failure: Failure) -> Any:
        """The logger of one failed request: the model, the failure's kind and
        HTTP status on every line."""
        return _log(model=self.label, kind=failure.kind, status=failure.status)

    def _refusal(
        self, failure: Failure, detail: str, where: str, messages: list[BaseMessage]
    ) -> LLMError:
        """Log a refusal that retrying cannot fix and build its error: a request
        too large for the context is its own kind, naming the input size."""
        sizes: dict[str, int] = {}
        if failure.kind == "context_length":
            sizes = {"messages": len(messages), "characters": _characters(messages)}
        self._failure_log(failure).error("llm_request_refused", detail=detail, **sizes)
        refused = f"{where} refused the request ({failure.kind}, HTTP {failure.status})"
        if failure.kind == "context_length":
            return LLMContextLengthError(
                f"{refused}: {detail}. "
                f"{_input_size(messages, self.max_tokens)} does not fit the "
                "model's context window. Retrying cannot fix this: shorten "
                "the input (fewer or shorter messages), lower max_tokens, "
                "or use a model with a longer context."
            )
        return LLMRequestError(
            f"{refused}: {detail}. Retrying cannot fix "
            "this: check DIALOGLLM_LLM_API_KEY, DIALOGLLM_LLM_MODEL and "
            "DIALOGLLM_LLM_BASE_URL."
        )

    async def invoke(self, conversation: list[BaseMessage]) -> AIMessage:
        attempt = 0
        while True:
            messages = self._messages(conversation)
            runnable = _bind(
                self.model,
                self.mode,
                self.schema,
                self.max_tokens,
                self.temperature,
                self.squeeze,
                self.sampling,
                self.timeout_scale,
            )
            estimate = _estimate_tokens(messages, self.max_tokens)
            token = pending_tokens().set(estimate)
            sent = time.perf_counter()
            try:
                result = await runnable.ainvoke(messages)
            except LLMError:
                raise
            except openai.LengthFinishReasonError as exc:
                result = _truncated_message(exc)
            except Exception as exc:
                failure = classify(exc)
                if failure.kind == "unsupported" and not self.forced:
                    nxt = _LADDER[min(_LADDER.index(self.mode) + 1, len(_LADDER) - 1)]
                    if nxt != self.mode:
                        _log().info(
                            "llm_structured_mode_step_down",
                            model=self.label,
                            mode=self.mode,
                            to=nxt,
                            reason=failure.detail,
                        )
                        self.mode = nxt
                        _remember(self.model, nxt)
                        continue
                if failure.kind == "other":
                    raise
                where = f"model {self.label!r}{_endpoint(self.model)}"
                detail = _scrub(failure.detail, self.model)
                if failure.kind == "context_length" or not failure.transient:
                    raise self._refusal(failure, detail, where, messages) from None
                attempt += 1
                if failure.kind == "timeout" and is_local_model(self.model):
                    self.timeout_scale *= 2
                if attempt > self.max_retries:
                    cls = (
                        LLMRateLimitedError
                        if failure.kind == "rate_limited"
                        else LLMUnavailableError
                    )
                    raise cls(
                        f"{where} failed {attempt} times ({failure.kind}): "
                        f"{detail}. Check that the endpoint is up, or raise "
                        "DIALOGLLM_LLM_MAX_RETRIES / DIALOGLLM_LLM_TIMEOUT_S."
                    ) from None
                delay = backoff_delay(
                    attempt,
                    base_s=self.settings.backoff_base_s,
                    max_s=self.settings.backoff_max_s,
                    retry_after_s=failure.retry_after_s,
                    retry_after_max_s=self.settings.retry_after_max_s,
                )
                self._failure_log(failure).warning(
                    "llm_retry",
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    retry_after_s=failure.retry_after_s,
                )
                await asyncio.sleep(delay)
                continue
            finally:
                pending_tokens().reset(token)
            message = (
                result if isinstance(result, AIMessage) else AIMessage(str(result))
            )
            if is_local_model(self.model):
                generation_speed().record(
                    _usage(message).completion_tokens, time.perf_counter() - sent
                )
            if self.limiter is not None:
                actual = _usage(message).total_tokens
                if actual:
                    await self.limiter.settle(actual - estimate)
            return message


async def _ask_one(
    model: BaseChatModel,
    messages: list[BaseMessage],
    schema: type[T],
    settings: LLMSettings,
    *,
    mode: Mode | None,
    max_tokens: int | None,
    temperature: float | None,
    structured_retries: int,
    max_retries: int,
    metrics: LLMMetrics | None,
    sampling: Mapping[str, float] | None = None,
) -> StructuredReply[T]:
    started = time.perf_counter()
    call = _Call(
        model, schema, settings, mode, max_tokens, temperature, max_retries, sampling
    )
    caps = (
        _string_caps(strict_json_schema(schema, max_tokens=max_tokens))
        if max_tokens is not None
        else set()
    )
    conversation = list(messages)
    raws: list[str] = []
    errors: list[str] = []
    usage = TokenUsage()
    for attempt in range(1, structured_retries + 2):
        message = await call.invoke(conversation)
        usage = usage + _usage(message)
        raw = _raw_text(message, call.mode)
        finish = (message.response_metadata or {}).get("finish_reason")
        try:
            value = _parse(raw, schema)
            value = _tidied(
                value,
                caps=caps
                | _string_caps(
                    strict_json_schema(
                        schema, max_tokens=max_tokens, squeeze=call.squeeze
                    )
                )
                if max_tokens is not None
                else caps,
                cut=finish == "length",
                strip_special=settings.strip_special_tokens,
                finish_sentences=settings.finish_sentences,
            )
        except (ValidationError, ValueError) as exc:
            raws.append(raw)
            errors.append(_short_error(exc))
            _log().info(
                "llm_structured_invalid",
                model=call.label,
                attempt=attempt,
                error=errors[-1],
            )
            if attempt <= structured_retries:
                if metrics is not None:
                    metrics.record_structured_retry(call.label)
                if finish == "length" and max_tokens is not None:
                    # cut off, not wrong: ask the same again with tighter caps
                    call.squeeze *= 2
                    conversation = list(messages)
                else:
                    conversation = [
                        *messages,
                        AIMessage(content=raw or "(empty)"),
                        HumanMessage(content=_feedback(errors[-1])),
                    ]
            continue
        name = (message.response_metadata or {}).get("model_name") or call.label
        return StructuredReply(
            value=value,
            raw=raw,
            message=message,
            usage=usage,
            attempts=attempt,
            latency_s=time.perf_counter() - started,
            model=str(name),
            mode=call.mode,
            raw_outputs=[*raws, raw],
        )
    if metrics is not None:
        metrics.record_structured_failure(call.label)
    raise StructuredOutputError(
        f"model {call.label!r} gave no reply matching {schema.__name__} in "
        f"{structured_retries + 1} attempts; last error: {errors[-1]}",
        raw_outputs=raws,
        errors=errors,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_s=time.perf_counter() - started,
    )


async def ask(
    model: BaseChatModel,
    messages: list[BaseMessage],
    *,
    schema: type[T],
    max_tokens: int | None = None,
    temperature: float | None = None,
    mode: Mode | None = None,
    structured_retries: int | None = None,
    max_retries: int | None = None,
    metrics: LLMMetrics | None = None,
    settings: LLMSettings | None = None,
    sampling: Mapping[str, float] | None = None,
) -> StructuredReply[T]:
    """Ask ``model`` for a reply validated against ``schema``.

    Every free text of the reply is tidied (:func:`tidy_reply`: special tokens
    stripped, ended at a sentence end; ``DIALOGLLM_LLM_STRIP_SPECIAL_TOKENS``,
    ``DIALOGLLM_LLM_FINISH_SENTENCES``). ``sampling`` overrides this request's
    repetition controls: ``presence_penalty``/``frequency_penalty`` for any
    ``ChatOpenAI``, and for the local model also llama.cpp's ``repeat_penalty``,
    ``repeat_last_n``, ``dry_multiplier``, ``dry_base``, ``dry_allowed_length``. The
    local model's timeout scales with ``max_tokens`` and its measured speed.

    Works with any ``BaseChatModel``; ``ChatOpenAI`` gets schema-constrained
    decoding. ``max_tokens`` bounds the generation (sent so llama.cpp honours it
    too). A :class:`FallbackChatModel` is walked in order: a model that fails
    (unreachable, refusing, or never validating) hands over to the next.

    Raises :class:`~dialogllm.errors.StructuredOutputError` (with ``raw_outputs``),
    :class:`~dialogllm.errors.LLMRequestError` (401/404/4xx, at once; its subclass
    :class:`~dialogllm.errors.LLMContextLengthError` when the input is larger than
    the model's context),
    :class:`~dialogllm.errors.LLMRateLimitedError` or
    :class:`~dialogllm.errors.LLMUnavailableError` (retries spent).

    >>> from dialogllm.models import Turn
    >>> reply = await ask(model, [HumanMessage("Ada:")], schema=Turn)  # doctest: +SKIP
    >>> reply.value.message
    'Hello there.'
    """
    settings = settings or get_llm_settings()
    chain = model.models if isinstance(model, FallbackChatModel) else [model]
    last: LLMError | None = None
    # what models that never validated spent: the reply (or the last such error)
    # carries it, so a fallback chain's tokens are all counted
    spent, spent_s = TokenUsage(), 0.0
    for i, candidate in enumerate(chain):
        try:
            reply = await _ask_one(
                candidate,
                messages,
                schema,
                settings,
                mode=mode,
                max_tokens=max_tokens,
                temperature=temperature,
                structured_retries=(
                    settings.structured_retries
                    if structured_retries is None
                    else structured_retries
                ),
                max_retries=settings.max_retries
                if max_retries is None
                else max_retries,
                metrics=metrics or find_metrics(candidate),
                sampling=sampling,
            )
            return replace(
                reply, usage=spent + reply.usage, latency_s=spent_s + reply.latency_s
            )
        except LLMError as exc:
            if isinstance(exc, StructuredOutputError):
                spent += TokenUsage(exc.prompt_tokens, exc.completion_tokens)
                spent_s += exc.latency_s
                exc.prompt_tokens = spent.prompt_tokens
                exc.completion_tokens = spent.completion_tokens
                exc.latency_s = spent_s
            last = exc
            if i + 1 < len(chain):
                assert isinstance(model, FallbackChatModel)
                model.note_fallback(candidate, chain[i + 1], type(exc).__name__)
        finally:
            await _flush(metrics or find_metrics(candidate))
    assert last is not None
    raise last


async def _flush(metrics: LLMMetrics | None) -> None:
    if metrics is not None:
        await metrics.flush()
