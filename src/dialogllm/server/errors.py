"""Errors as LangGraph's API answers them: a status code and ``{"detail": "..."}``.

Every failure a request can meet becomes one of these, so a client never gets a 500
with a traceback: a body that does not validate is 422 naming the field, an unknown
thread, run or assistant is 404, a busy thread or an existing id is 409, a Redis that
cannot be reached is 503. The detail names what happened and to what; it never
carries a secret (Redis URLs are masked by the errors it comes from).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from dialogllm.errors import (
    CronNotFoundError,
    DialogueLLMError,
    DuplicateRunError,
    GraphNotFoundError,
    InputValidationError,
    PayloadTooLargeError,
    RedisAuthError,
    RedisUnavailableError,
    RunNotFoundError,
    SemanticSearchNotConfiguredError,
    StoreSearchTooLargeError,
    StoreValueError,
    ThreadBusyError,
    ThreadNotFoundError,
    WebhookBlockedError,
)
from dialogllm.logging import get_logger
from dialogllm.server.wire import JSONResponse

__all__ = [
    "ApiError",
    "conflict",
    "install_error_handlers",
    "not_found",
    "unprocessable",
]

_log = get_logger("dialogllm.server")


class ApiError(HTTPException):
    """An HTTP error with LangGraph's body: ``{"detail": detail}``."""


def not_found(detail: str) -> ApiError:
    """404: an unknown thread, run or assistant."""
    return ApiError(404, detail)


def conflict(detail: str) -> ApiError:
    """409: a busy thread (``multitask_strategy="reject"``) or an existing id."""
    return ApiError(409, detail)


def unprocessable(detail: str) -> ApiError:
    """422: a request LangGraph's API refuses (a body, a mode, a value)."""
    return ApiError(422, detail)


_STATUS: tuple[tuple[type[DialogueLLMError], int], ...] = (
    (ThreadBusyError, 409),
    (DuplicateRunError, 409),
    (RunNotFoundError, 404),
    (CronNotFoundError, 404),
    (ThreadNotFoundError, 404),
    (GraphNotFoundError, 404),
    (PayloadTooLargeError, 413),
    (InputValidationError, 422),
    (StoreValueError, 422),
    (SemanticSearchNotConfiguredError, 422),
    (StoreSearchTooLargeError, 422),
    (WebhookBlockedError, 422),
    (RedisAuthError, 503),
    (RedisUnavailableError, 503),
)


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with LangGraph's status code and body."""

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    async def invalid_body(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(
            f"{_field(tuple(err.get('loc', ())))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return JSONResponse({"detail": detail or "invalid request"}, status_code=422)

    async def project_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DialogueLLMError)
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        if status == 500:
            _log.error("request_failed", error=type(exc).__name__, detail=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        _log.exception("request_failed", error=type(exc).__name__)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the server log"},
            status_code=500,
        )

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(DialogueLLMError, project_error)
    app.add_exception_handler(Exception, unexpected)
