"""Who is asking, and what they may see: LangGraph's custom-auth contract.

A ``langgraph.json`` may name a ``langgraph_sdk.Auth`` object
(``"auth": {"path": "./auth.py:auth"}``). Its ``@auth.authenticate`` handler runs on
every request (``/ok`` and the API docs excepted) with the arguments it names
(``request``, ``path``, ``method``, ``path_params``, ``query_params``, ``headers``,
``authorization``) and returns the user; its ``@auth.on…`` handlers run before each
action on threads and assistants with ``(ctx, value)`` and allow it (``None`` or
``True``), refuse it (``False``: 403), or return a *filter* on metadata
(``{"owner": "ada"}``, ``{"owner": {"$eq": "ada"}}``, ``{"tags": {"$contains":
"x"}}``) that every resource the action touches must match. A handler may also
change ``value`` (say, put ``owner`` into the metadata of what is created).

The rule a reader must not break: a resource that does not match the caller's filter
is answered exactly as one that does not exist (404), so nothing leaks; a refused
authentication is 401 with the handler's detail and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from langgraph_sdk.auth import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from langgraph_sdk.auth.types import AuthContext

from dialogllm.server.errors import ApiError

__all__ = ["ANONYMOUS", "Authorizer", "User", "is_open", "matches"]

#: Paths answered without authentication (liveness, the API's own docs, the web
#: page, where a person enters the key).
OPEN_PATHS = frozenset({"/ok", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/"})
#: Path prefixes answered without authentication: the web page's static assets.
OPEN_PREFIXES = ("/ui/",)


def is_open(path: str) -> bool:
    """Whether ``path`` is answered without authentication.

    >>> is_open("/ui/app.js"), is_open("/threads")
    (True, False)
    """
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


@dataclass(frozen=True)
class User:
    """The authenticated caller, as handlers see it (``ctx.user``)."""

    identity: str
    permissions: tuple[str, ...] = ()
    display_name: str = ""
    is_authenticated: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        """Dict-style access, as LangGraph's user objects allow
        (``user["identity"]``)."""
        if key in ("identity", "permissions", "display_name", "is_authenticated"):
            return getattr(self, key)
        return self.extra[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access with a default."""
        try:
            return self[key]
        except KeyError:
            return default

    @classmethod
    def of(cls, found: Any) -> User:
        """The user an authenticate handler returned (a string, a dict with
        ``identity``, or an object with an ``identity`` attribute)."""
        if isinstance(found, str):
            return cls(found)
        if isinstance(found, Mapping):
            data = dict(found)
            identity = data.pop("identity", None)
            if not isinstance(identity, str):
                raise ApiError(500, "the authenticate handler returned no identity")
            return cls(
                identity,
                tuple(data.pop("permissions", ()) or ()),
                str(data.pop("display_name", identity)),
                bool(data.pop("is_authenticated", True)),
                data,
            )
        identity = getattr(found, "identity", None)
        if not isinstance(identity, str):
            raise ApiError(500, "the authenticate handler returned no identity")
        return cls(
            identity,
            tuple(getattr(found, "permissions", ()) or ()),
            str(getattr(found, "display_name", identity)),
        )


ANONYMOUS = User("", is_authenticated=False)


def matches(metadata: Mapping[str, Any], condition: Mapping[str, Any] | None) -> bool:
    """Whether ``metadata`` satisfies a handler's filter (``None``: anything).

    >>> matches({"owner": "ada", "tags": ["x"]}, {"tags": {"$contains": "x"}})
    True
    """
    for key, wanted in (condition or {}).items():
        value = metadata.get(key)
        if isinstance(wanted, Mapping) and ("$eq" in wanted or "$contains" in wanted):
            if "$eq" in wanted and value != wanted["$eq"]:
                return False
            if "$contains" in wanted:
                needle = wanted["$contains"]
                if not isinstance(value, list | tuple | str) or needle not in value:
                    return False
        elif value != wanted:
            return False
    return True


class Authorizer:
    """Runs an ``Auth`` object's handlers for this server (none: everyone allowed).

    >>> authorizer = Authorizer(auth)                                # doctest: +SKIP
    >>> user = await authorizer.authenticate(request)                # doctest: +SKIP
    >>> where = await authorizer.authorize(user, "threads", "read", {"thread_id": t})
    """

    def __init__(self, auth: Auth | None) -> None:
        self.auth = auth

    @property
    def enabled(self) -> bool:
        """Whether requests are authenticated at all."""
        return self.auth is not None and self.auth._authenticate_handler is not None

    async def authenticate(self, request: Request) -> User:
        """The caller of ``request``; 401 (the handler's detail) when refused."""
        handler = self.auth._authenticate_handler if self.auth is not None else None
        if handler is None:
            return ANONYMOUS
        offered = {
            "request": request,
            "path": request.url.path,
            "method": request.method,
            "path_params": dict(request.path_params),
            "query_params": dict(request.query_params),
            "headers": {k.encode(): v.encode() for k, v in request.headers.items()},
            "authorization": request.headers.get("authorization"),
        }
        wanted = inspect.signature(handler).parameters
        try:
            found = await handler(**{k: v for k, v in offered.items() if k in wanted})
        except AuthHTTPException as exc:
            raise ApiError(exc.status_code, str(exc.detail)) from None
        return User.of(found)

    def _handler(self, resource: str, action: str) -> Any:
        if self.auth is None:
            return None
        for key in ((resource, action), (resource, "*"), ("*", action)):
            found = self.auth._handlers.get(key)
            if found:
                return found[-1]
        return self.auth._global_handlers[-1] if self.auth._global_handlers else None

    async def authorize(
        self, user: User, resource: str, action: str, value: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Run the handler for ``resource``/``action`` on ``value`` (which it may
        change); the filter it returns (``None``: no filter). 403 when it refuses."""
        handler = self._handler(resource, action)
        if handler is None:
            return None
        ctx = AuthContext(
            permissions=list(user.permissions),
            user=user,  # type: ignore[arg-type]
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            verdict = await handler(ctx=ctx, value=value)
        except AuthHTTPException as exc:
            raise ApiError(exc.status_code, str(exc.detail)) from None
        if verdict is False:
            raise ApiError(403, f"not allowed to {action} {resource}")
        if isinstance(verdict, Mapping):
            return dict(verdict)
        return None
