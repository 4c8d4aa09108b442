"""Who may see what: LangGraph's custom auth (a ``langgraph_sdk.Auth`` named in
``langgraph.json``) and the static API key, through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError

from tests.integration.server.conftest import Server, start_server

pytestmark = pytest.mark.integration

AUTH_APP = Path(__file__).with_name("auth_app") / "langgraph.json"


@pytest.fixture(scope="module")
def auth_server(module_prefix: str) -> Iterator[Server]:
    started = start_server(module_prefix, config=AUTH_APP)
    yield started
    started.stop()


def _as(server: Server, token: str):  # type: ignore[no-untyped-def]
    return get_client(url=server.url, headers={"Authorization": f"Bearer {token}"})


async def test_a_user_never_sees_another_users_threads_or_runs(
    auth_server: Server,
) -> None:
    ada, bo = _as(auth_server, "token-ada"), _as(auth_server, "token-bo")
    thread = await ada.threads.create(metadata={"topic": "tea"})
    tid = thread["thread_id"]
    values = await ada.runs.wait(tid, "count", input={"steps": 1})
    [run] = await ada.runs.list(tid)

    assert thread["metadata"]["owner"] == "ada"
    assert values["n"] == 1
    assert [t["thread_id"] for t in await ada.threads.search()] == [tid]
    assert await bo.threads.search() == []
    assert await bo.threads.count() == 0
    attempts = (
        lambda: bo.threads.get(tid),
        lambda: bo.threads.get_state(tid),
        lambda: bo.threads.get_history(tid),
        lambda: bo.runs.list(tid),
        lambda: bo.runs.get(tid, run["run_id"]),
        lambda: bo.runs.wait(tid, "count", input={"steps": 1}),
        lambda: bo.threads.update(tid, metadata={"owner": "bo"}),
        lambda: bo.threads.delete(tid),
    )
    for attempt in attempts:
        # runs.wait raises httpx's error, the other calls the SDK's typed one
        with pytest.raises((NotFoundError, httpx.HTTPStatusError)) as refused:
            await attempt()
        assert "404" in str(refused.value) or isinstance(refused.value, NotFoundError)
        assert "tea" not in str(refused.value) and "ada" not in str(refused.value)
    # nothing bo tried changed ada's thread
    after = await ada.threads.get(tid)
    assert after["metadata"]["owner"] == "ada"
    assert after["values"]["n"] == 1


async def test_a_stateless_run_belongs_to_its_caller(auth_server: Server) -> None:
    ada = _as(auth_server, "token-ada")
    result = await ada.runs.wait(
        None, "count", input={"steps": 1}, on_completion="keep"
    )
    mine = await ada.threads.search(metadata={"owner": "ada"}, limit=100)

    assert result["n"] == 1
    assert any(t["values"] == result for t in mine)


async def test_unauthenticated_and_refused_requests_get_401_and_403(
    auth_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=auth_server.url) as http:
        anonymous = await http.post("/threads/search", json={})
        wrong = await http.post(
            "/threads/search", json={}, headers={"Authorization": "Bearer nope"}
        )
        alive = await http.get("/ok")
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "unknown token"}
    assert alive.status_code == 200

    ada = _as(auth_server, "token-ada")
    [count] = await ada.assistants.search(graph_id="count")
    with pytest.raises(PermissionDeniedError):
        await ada.assistants.delete(count["assistant_id"])


def test_a_static_api_key_guards_every_endpoint_but_ok(module_prefix: str) -> None:
    server = start_server(
        f"{module_prefix}-key", env={"DIALOGLLM_SERVER_API_KEY": "s3cret"}
    )
    try:
        without = httpx.post(f"{server.url}/threads", json={})
        wrong = httpx.post(f"{server.url}/threads", json={}, headers={"x-api-key": "x"})
        right = httpx.post(
            f"{server.url}/threads", json={}, headers={"x-api-key": "s3cret"}
        )
        ok = httpx.get(f"{server.url}/ok")
    finally:
        server.stop()
    assert (without.status_code, wrong.status_code) == (401, 401)
    assert "s3cret" not in without.text + wrong.text
    assert right.status_code == 200
    assert ok.status_code == 200
    assert "s3cret" not in server.output()
