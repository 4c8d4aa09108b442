"""Store scoping as LangGraph's docs write it: every namespace a caller names is
put under the caller's identity; bo may not delete."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

auth = Auth()

USERS = {"token-ada": "ada", "token-bo": "bo"}


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or token not in USERS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="unknown token")
    return {"identity": USERS[token]}


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    namespace = tuple(value.get("namespace") or ())
    value["namespace"] = (ctx.user.identity, *namespace)


@auth.on.store.delete
async def only_ada_deletes(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> bool:
    if ctx.user.identity != "ada":
        return False
    value["namespace"] = (ctx.user.identity, *value["namespace"])
    return True


@auth.on.store.search
async def hide_secrets(
    ctx: Auth.types.AuthContext, value: dict[str, Any]
) -> Auth.types.FilterType:
    value["namespace"] = (ctx.user.identity, *value["namespace"])
    return {"secret": {"$ne": True}}
