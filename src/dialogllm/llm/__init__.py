"""The LLM layer: chat models per role, typed replies, shared limits, metrics.

>>> from dialogllm.llm import ask, get_chat_model
>>> from dialogllm.models import Turn
>>> model = get_chat_model(role="persona")           # doctest: +SKIP
>>> reply = await ask(model, messages, schema=Turn, max_tokens=96)  # doctest: +SKIP
>>> reply.value.message, reply.usage.completion_tokens              # doctest: +SKIP

See ``docs/llm.md``. The rule: every LLM call of the project goes through
:func:`ask` (typed, retried, metered), never ``model.invoke`` + ad-hoc parsing.
"""

from dialogllm.llm.chat import (
    FallbackChatModel,
    LoopSafeChatOpenAI,
    build_chat_model,
    find_metrics,
    get_chat_model,
    model_label,
)
from dialogllm.llm.local import (
    DOCUMENT_TEMPLATE,
    LOCAL_MODEL_ALIAS,
    LocalModelServer,
    local_server,
    shutdown_local_server,
)
from dialogllm.llm.metrics import (
    LLMMetrics,
    ModelMetrics,
    default_metrics,
    read_llm_metrics,
)
from dialogllm.llm.ratelimit import RedisRateLimiter
from dialogllm.llm.retry import backoff_delay, classify, retry_after_seconds
from dialogllm.llm.sanitize import sanitize_text
from dialogllm.llm.settings import (
    LOCAL_MODEL,
    LLMSettings,
    ModelTarget,
    RoleSettings,
    get_llm_settings,
)
from dialogllm.llm.structured import (
    Mode,
    StructuredReply,
    TokenUsage,
    ask,
    local_grammar,
    strict_json_schema,
    tidy_reply,
)

__all__ = [
    "DOCUMENT_TEMPLATE",
    "LOCAL_MODEL",
    "LOCAL_MODEL_ALIAS",
    "FallbackChatModel",
    "LLMMetrics",
    "LLMSettings",
    "LocalModelServer",
    "LoopSafeChatOpenAI",
    "Mode",
    "ModelMetrics",
    "ModelTarget",
    "RedisRateLimiter",
    "RoleSettings",
    "StructuredReply",
    "TokenUsage",
    "ask",
    "backoff_delay",
    "build_chat_model",
    "classify",
    "default_metrics",
    "find_metrics",
    "get_chat_model",
    "get_llm_settings",
    "local_grammar",
    "local_server",
    "model_label",
    "read_llm_metrics",
    "retry_after_seconds",
    "sanitize_text",
    "shutdown_local_server",
    "strict_json_schema",
    "tidy_reply",
]
