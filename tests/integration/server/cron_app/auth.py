"""A ``langgraph_sdk.Auth`` for crons: a bearer token names the user; each user sees
only the threads and crons they own."""

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


@auth.on.threads.create
async def own_new_threads(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    value.setdefault("metadata", {})["owner"] = ctx.user.identity


@auth.on.threads
async def only_own_threads(
    ctx: Auth.types.AuthContext, value: dict[str, Any]
) -> Auth.types.FilterType:
    return {"owner": ctx.user.identity}


@auth.on.crons.create
async def own_new_crons(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    value.setdefault("metadata", {})["owner"] = ctx.user.identity


@auth.on.crons
async def only_own_crons(
    ctx: Auth.types.AuthContext, value: dict[str, Any]
) -> Auth.types.FilterType:
    return {"owner": ctx.user.identity}
