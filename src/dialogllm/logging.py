"""structlog set-up: JSON or console output, bound context, secret redaction.

Every log line passes through :func:`redact_secrets`, so a password in a URL, an API
key, a token or an ``Authorization`` header never reaches a log line, whichever module
logged it. Bind context with ``structlog.contextvars.bound_contextvars(run_id=...,
thread_id=..., node=...)``.

>>> configure_logging(fmt="json", level="info")
>>> get_logger("demo").info("connected", url="redis://user:hunter2@host:6379/0")
... # doctest: +SKIP
{"url": "redis://user:***@host:6379/0", "event": "connected", ...}
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = [
    "configure_logging",
    "get_logger",
    "mask_url",
    "redact_secrets",
    "redact_text",
]

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authorization|auth|credential|cookie)",
    re.IGNORECASE,
)
# scheme://user:password@host  -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
# ?password=x / &ssl_password=x / &token=x -> ...=***
_QUERY_SECRET = re.compile(
    r"([?&;][^=&#\s]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|credential)"
    r"[^=&#\s]*=)[^&#\s]*",
    re.IGNORECASE,
)
# "Bearer abc", "api_key=abc", "sk-..." style secrets inside free text.
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_KV_SECRET = re.compile(
    r"(?i)\b(api[_-]?key|password|passwd|secret|token|access[_-]?key)"
    r"(\s*[=:]\s*)([\"']?)[^\s\"',;&]+"
)
_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")


def mask_url(url: str) -> str:
    """Return ``url`` with every secret replaced by ``***``: the password of the
    userinfo, and query parameters that carry one (``password``, ``ssl_password``,
    ``token``, ``api_key``, ...). Every URL the project prints goes through here.

    >>> mask_url("rediss://app:s3cret@cache:6380/0")
    'rediss://app:***@cache:6380/0'
    >>> mask_url("redis://cache/0?password=s3cret&ssl_password=x&db=1")
    'redis://cache/0?password=***&ssl_password=***&db=1'
    """
    url = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", url)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", url)


def redact_text(text: str) -> str:
    """Mask secrets that appear inside free text (URLs, bearer tokens, key=value).

    >>> redact_text("GET failed: Authorization: Bearer abc.def")
    'GET failed: Authorization: Bearer ***'
    """
    text = mask_url(text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _KV_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _OPENAI_KEY.sub(REDACTED, text)


def _redact_value(key: str | None, value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if key is not None and _SECRET_KEY.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(None, v, depth + 1) for v in value)
    if hasattr(value, "get_secret_value"):
        return REDACTED
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking fields and secrets inside strings."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(
            key if key != "event" else None, event_dict[key]
        )
    return event_dict


def _render_exception(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    exc = event_dict.get("exc_info")
    if isinstance(exc, BaseException):
        event_dict["exc_type"] = type(exc).__name__
        event_dict["exc_info"] = (type(exc), exc, exc.__traceback__)
    return event_dict


def configure_logging(
    *,
    fmt: Literal["json", "console"] = "console",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and the stdlib root logger) for the process.

    ``fmt="json"`` writes one JSON object a line (production); ``"console"`` is for
    people. Context bound with ``structlog.contextvars`` appears on every line.
    """
    out = stream or sys.stderr
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _render_exception,
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _LibraryLogger:
    """A structlog logger once the application configured structlog (the CLI and
    the worker do, through :func:`configure_logging`); until then a library's
    logger: lines go to the stdlib logger of the same name, which prints nothing
    below WARNING unless the application set logging up."""

    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self._name = name
        self._context = context
        self._structlog = structlog.get_logger(name, component=name, **context)

    def bind(self, **context: Any) -> _LibraryLogger:
        return _LibraryLogger(self._name, {**self._context, **context})

    def __getattr__(self, method: str) -> Any:
        if structlog.is_configured():
            return getattr(self._structlog, method)
        level = _LEVELS.get(method)
        if level is None:
            raise AttributeError(method)
        std = logging.getLogger(self._name)

        def log(event: str, *args: Any, **fields: Any) -> None:
            if std.isEnabledFor(level):
                values = redact_secrets(None, "", {**self._context, **fields})
                detail = " ".join(f"{k}={v}" for k, v in values.items())
                std.log(level, "%s %s", event % args if args else event, detail)

        return log


def get_logger(name: str, **context: Any) -> Any:
    """Return a logger for ``name`` (logged as ``component``) with ``context`` bound.

    A library stays silent unless asked: until the application configures
    structlog (:func:`configure_logging`, or its own ``structlog.configure``),
    lines go to the stdlib logger ``name``, which shows only warnings and errors
    by default.

    >>> log = get_logger("dialogllm.queue", worker="w-1")
    """
    # the structlog logger is lazy: configured on first use, so module-level
    # loggers follow configure_logging() called later
    return _LibraryLogger(name, context)
