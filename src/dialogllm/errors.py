"""The exception hierarchy users catch.

Every error DialogueLLM raises derives from :class:`DialogueLLMError`. Each says what
happened, to what (thread id, run id, graph, URL with the password masked), and what
to do about it. Messages never contain secrets: pass URLs through
:func:`dialogllm.logging.mask_url` before putting them in a message.

>>> try:
...     raise ThreadNotFoundError("no checkpoints for thread 't-1'")
... except DialogueLLMError as exc:
...     print(type(exc).__name__)
ThreadNotFoundError
"""

from __future__ import annotations

__all__ = [
    "BlockedTypeError",
    "CheckpointError",
    "ConfigError",
    "CorruptCheckpointError",
    "CronNotFoundError",
    "DialogueLLMError",
    "DuplicateRunError",
    "FencedWriteError",
    "GraphNotFoundError",
    "InputValidationError",
    "InvalidCheckpointConfigError",
    "LLMContextLengthError",
    "LLMError",
    "LLMRateLimitedError",
    "LLMRequestError",
    "LLMUnavailableError",
    "PayloadTooLargeError",
    "QueueError",
    "RedisAuthError",
    "RedisCommandError",
    "RedisUnavailableError",
    "ResumeError",
    "RunNotFoundError",
    "SemanticSearchNotConfiguredError",
    "StoreError",
    "StoreSearchTooLargeError",
    "StoreValueError",
    "StructuredOutputError",
    "ThreadBusyError",
    "ThreadNotFoundError",
    "WebhookBlockedError",
]


class DialogueLLMError(Exception):
    """Root of every error DialogueLLM raises on purpose."""


class ConfigError(DialogueLLMError):
    """A setting (environment variable or argument) has an invalid value."""


class RedisUnavailableError(DialogueLLMError):
    """Redis could not be reached, or the connection broke during a call.

    The message names the URL with its password masked. Nothing half-written is left
    behind: every multi-key write is one atomic Redis call.
    """


class RedisAuthError(DialogueLLMError):
    """Redis refused the credentials in the URL, or the ACL user may not run a
    command or touch a key. The message names the user, never the password."""


class RedisCommandError(DialogueLLMError):
    """Redis refused a command (``WRONGTYPE``, ``OOM``, a script error, ...): not an
    outage, so retrying the same call will not help."""


class BlockedTypeError(DialogueLLMError):
    """Data read from Redis names a type that is not on the allow-list.

    Nothing was imported or called. ``module`` and ``name`` say which type; if it
    is yours and you trust everyone who can write to the Redis, allow it with
    ``DIALOGLLM_ALLOWED_MSGPACK_MODULES=module:Name`` (see :mod:`dialogllm.serde`).
    """

    def __init__(
        self, module: str, name: str, *, method: str | None = None, where: str = ""
    ) -> None:
        self.module = module
        self.name = name
        self.method = method
        self.where = where
        what = f"{module}.{name}" + (f".{method}" if method else "")
        if method:
            hint = "method calls are never revived"
        else:
            hint = (
                "if it is a type of yours and you trust every client that can write "
                f"to this Redis, allow it: DIALOGLLM_ALLOWED_MSGPACK_MODULES={module}:"
                f"{name} (or StrictSerializer(allowed=[...]), "
                "saver.with_allowlist([...]))"
            )
        place = f" in {where}" if where else ""
        super().__init__(
            f"refused to revive {what}{place}: not on the allow-list, nothing was "
            f"imported or run; {hint}"
        )


class PayloadTooLargeError(DialogueLLMError):
    """A value is larger than the configured limit and was refused before writing."""


class WebhookBlockedError(DialogueLLMError, ValueError):
    """A webhook URL the server's policy refuses (a loopback, private, link-local
    or metadata host, a port or domain not allowed): it is never requested.
    ``reason`` is the short cause, for logs."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- checkpointer -------------------------------------------------------------------


class CheckpointError(DialogueLLMError):
    """Base of the checkpointer's errors."""


class InvalidCheckpointConfigError(CheckpointError, ValueError):
    """A ``RunnableConfig`` lacks what the call needs (e.g. ``thread_id``)."""


class CorruptCheckpointError(CheckpointError):
    """Stored data could not be decoded; the key and field are named in the message."""


class FencedWriteError(CheckpointError):
    """A write carried a fencing token that no longer holds the thread's lease.

    The writer was superseded (its lease lapsed and another worker took the thread).
    The write changed nothing; the writer must stop working on the thread.
    """


class ThreadNotFoundError(CheckpointError):
    """The thread has no checkpoints."""


# --- store (long-term memory) -------------------------------------------------------


class StoreError(DialogueLLMError):
    """Base of the long-term memory store's errors (:mod:`dialogllm.store`)."""


class StoreValueError(StoreError, ValueError):
    """An item's value is not a JSON object (or is too large); nothing was written."""


class SemanticSearchNotConfiguredError(StoreError, ValueError):
    """``search(query=...)`` on a store built without ``index={"dims", "embed"}``:
    configure embeddings, or search with ``filter`` only."""


class StoreSearchTooLargeError(StoreError):
    """A search would read more items than the store's ``max_search_candidates``:
    search a narrower namespace prefix, or raise the bound."""


# --- graphs and runs ----------------------------------------------------------------


class GraphNotFoundError(DialogueLLMError):
    """A graph reference did not resolve to a compiled or compilable LangGraph graph."""


class InputValidationError(DialogueLLMError, ValueError):
    """Input failed the graph's (or a command's) schema; nothing was written."""


class ResumeError(DialogueLLMError):
    """A thread cannot be resumed as asked (not interrupted, wrong value type, ...)."""


# --- queue --------------------------------------------------------------------------


class QueueError(DialogueLLMError):
    """Base of the queue's errors."""


class RunNotFoundError(QueueError):
    """No run record exists for the run id (it never existed or has expired)."""


class CronNotFoundError(QueueError):
    """No cron exists with the cron id (it never existed or was deleted)."""


class ThreadBusyError(QueueError):
    """A run was enqueued with ``multitask="reject"`` on a thread that is busy."""


class DuplicateRunError(QueueError):
    """An idempotency key was reused with a different graph or input."""


# --- LLM ----------------------------------------------------------------------------


class LLMError(DialogueLLMError):
    """Base of the LLM layer's errors."""


class LLMUnavailableError(LLMError):
    """The LLM endpoint could not be reached (after retries), or the local model
    could not be started."""


class LLMRequestError(LLMError):
    """The endpoint refused the request in a way retrying cannot fix (bad key,
    unknown model, malformed request)."""


class LLMContextLengthError(LLMRequestError):
    """The request is larger than the model's context window: the same request fails
    the same way, so it is not retried. The message names the input's size
    (messages, characters, estimated prompt tokens, ``max_tokens``)."""


class LLMRateLimitedError(LLMError):
    """The endpoint kept answering 429 until the retry budget was spent."""


class StructuredOutputError(LLMError):
    """The model's output never validated against the schema within the budget.

    ``raw_outputs`` holds each raw reply (text) in order; ``errors`` the validation
    error of each. ``prompt_tokens``, ``completion_tokens`` and ``latency_s`` are
    what the failed attempts spent together, so a node that falls back still counts
    them (token budgets, the CLI's counter).

    >>> exc = StructuredOutputError("no", raw_outputs=["x"], errors=["bad"],
    ...                             prompt_tokens=12, completion_tokens=3)
    >>> exc.prompt_tokens + exc.completion_tokens
    15
    """

    def __init__(
        self,
        message: str,
        *,
        raw_outputs: list[str],
        errors: list[str],
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.raw_outputs = raw_outputs
        self.errors = errors
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.latency_s = latency_s
