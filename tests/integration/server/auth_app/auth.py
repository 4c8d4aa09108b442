"""A ``langgraph_sdk.Auth`` as LangGraph's docs write one: a bearer token names the
user; each user sees only the threads they own."""

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
    return {"identity": USERS[token], "permissions": ["threads:write"]}


@auth.on.threads.create
async def own_new_threads(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    value.setdefault("metadata", {})["owner"] = ctx.user.identity


@auth.on.threads.create_run
async def run_on_own_threads(
    ctx: Auth.types.AuthContext, value: dict[str, Any]
) -> Auth.types.FilterType:
    value.setdefault("metadata", {})["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.threads
async def only_own_threads(
    ctx: Auth.types.AuthContext, value: dict[str, Any]
) -> Auth.types.FilterType:
    return {"owner": ctx.user.identity}


@auth.on.assistants.delete
async def nobody_deletes_assistants(
    ctx: Auth.types.AuthContext, value: dict[str, Any]
) -> bool:
    return False
