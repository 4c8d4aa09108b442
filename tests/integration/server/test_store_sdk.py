"""``client.store`` of the real ``langgraph-sdk`` against a real ``dialogllm serve``:
put, get, search (filters, semantic), list namespaces, delete, what graphs wrote,
the reference's status codes, and custom auth that scopes each user's namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import PermissionDeniedError, UnprocessableEntityError

from dialogllm.store import AsyncRedisStore
from tests.conftest import REDIS_URL
from tests.integration.server.conftest import Server, start_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
STORE_APP = HERE / "store_app" / "langgraph.json"
STORE_AUTH_APP = HERE / "store_auth_app" / "langgraph.json"


@pytest.fixture(scope="module")
def store_server(module_prefix: str) -> Iterator[Server]:
    started = start_server(module_prefix, config=STORE_APP)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def store_auth_server(module_prefix: str) -> Iterator[Server]:
    started = start_server(module_prefix + "-auth", config=STORE_AUTH_APP)
    yield started
    started.stop()


async def test_put_get_search_list_delete_through_the_sdk(store_server: Server) -> None:
    client = get_client(url=store_server.url)
    ns = ["people", "ada", "facts"]
    await client.store.put_item(
        ns, key="tea", value={"text": "grows green tea", "n": 1}
    )
    await client.store.put_item(
        ns, key="cat", value={"text": "a cat named tabby", "n": 2}
    )
    await client.store.put_item(
        ["people", "bo"], key="x", value={"text": "rain", "n": 3}
    )

    item = await client.store.get_item(ns, key="tea")
    assert item["namespace"] == ns and item["key"] == "tea"
    assert item["value"] == {"text": "grows green tea", "n": 1}
    assert item["created_at"] and item["updated_at"]
    assert await client.store.get_item(ns, key="nope") is None

    found = await client.store.search_items(["people"], filter={"n": {"$gte": 2}})
    assert [i["key"] for i in found["items"]] == ["cat", "x"]
    paged = await client.store.search_items(["people"], limit=1, offset=1)
    assert [i["key"] for i in paged["items"]] == ["cat"]
    ranked = await client.store.search_items(["people"], query="a cat named tabby")
    assert ranked["items"][0]["key"] == "cat"
    assert ranked["items"][0]["score"] == pytest.approx(1.0, abs=1e-5)

    listed = await client.store.list_namespaces(prefix=["people"])
    assert listed["namespaces"] == [["people", "ada", "facts"], ["people", "bo"]]
    shallow = await client.store.list_namespaces(max_depth=2, suffix=["facts"])
    assert shallow["namespaces"] == [["people", "ada"]]

    await client.store.delete_item(ns, key="tea")
    assert await client.store.get_item(ns, key="tea") is None


async def test_what_a_graph_remembered_is_what_the_api_reads(
    store_server: Server,
) -> None:
    client = get_client(url=store_server.url)
    thread = await client.threads.create()
    values = await client.runs.wait(
        thread["thread_id"], "note", input={"text": "buy oolong tomorrow"}
    )
    assert values["known"] >= 1
    item = await client.store.get_item(["notes"], key="buy oolo")
    assert item["value"] == {"text": "buy oolong tomorrow"}
    await client.store.put_item(["notes"], key="mine", value={"text": "from the api"})
    second = await client.runs.wait(
        thread["thread_id"], "note", input={"text": "call the vet"}
    )
    assert second["known"] == values["known"] + 2


async def test_the_server_sweeps_expired_items_as_langgraph_json_says(
    store_server: Server, module_prefix: str
) -> None:
    # store_app's "ttl" has "sweep_interval_minutes": 0.002 (a sweep every 0.12 s)
    client = get_client(url=store_server.url)
    await client.store.put_item(
        ["brief"], key="k", value={"text": "soon gone"}, ttl=0.005
    )
    await asyncio.sleep(1.5)
    async with AsyncRedisStore.from_conn_string(
        REDIS_URL, cluster=False, key_prefix=module_prefix
    ) as ours:
        # the server's sweeper deleted it already: nothing is left to sweep
        assert await ours.asweep_ttl() == 0
    assert await client.store.get_item(["brief"], key="k") is None


async def test_bad_requests_get_the_references_status_codes(
    store_server: Server,
) -> None:
    client = get_client(url=store_server.url)
    async with httpx.AsyncClient(base_url=store_server.url) as http:
        bad_label = await http.put(
            "/store/items", json={"namespace": ["a", ""], "key": "k", "value": {}}
        )
        assert bad_label.status_code == 422 and "detail" in bad_label.json()
        dotted = await http.get("/store/items", params={"namespace": "", "key": "k"})
        assert dotted.status_code == 422
        no_key = await http.get("/store/items", params={"namespace": "a"})
        assert no_key.status_code == 400
        reserved = await http.put(
            "/store/items", json={"namespace": ["langgraph"], "key": "k", "value": {}}
        )
        assert reserved.status_code == 422
        not_a_dict = await http.put(
            "/store/items", json={"namespace": ["a"], "key": "k", "value": [1]}
        )
        assert not_a_dict.status_code == 422
        bad_op = await http.post(
            "/store/items/search",
            json={"namespace_prefix": ["a"], "filter": {"n": {"$regex": "x"}}},
        )
        assert bad_op.status_code == 422
        assert "$regex" in bad_op.json()["detail"]
    with pytest.raises(UnprocessableEntityError):
        await client.store.list_namespaces(prefix=["a", ""])


async def test_auth_scopes_every_users_store_to_their_namespace(
    store_auth_server: Server,
) -> None:
    def as_user(token: str):  # type: ignore[no-untyped-def]
        return get_client(
            url=store_auth_server.url, headers={"Authorization": f"Bearer {token}"}
        )

    ada, bo = as_user("token-ada"), as_user("token-bo")
    await ada.store.put_item(["prefs"], key="drink", value={"text": "tea"})
    await ada.store.put_item(
        ["prefs"], key="pin", value={"text": "1234", "secret": True}
    )
    await bo.store.put_item(["prefs"], key="drink", value={"text": "coffee"})

    assert (await ada.store.get_item(["prefs"], key="drink"))["value"] == {
        "text": "tea"
    }
    bos = await bo.store.get_item(["prefs"], key="drink")
    assert bos["value"] == {"text": "coffee"} and bos["namespace"] == ["bo", "prefs"]
    assert [i["key"] for i in (await ada.store.search_items(["prefs"]))["items"]] == [
        "drink"
    ]
    # bo names ada's namespace: the handler puts it under bo's own
    assert await bo.store.get_item(["ada", "prefs"], key="drink") is None
    assert (await bo.store.list_namespaces())["namespaces"] == [["bo", "prefs"]]
    with pytest.raises(PermissionDeniedError):
        await bo.store.delete_item(["prefs"], key="drink")
    await ada.store.delete_item(["prefs"], key="drink")
    assert await ada.store.get_item(["prefs"], key="drink") is None
    assert (await bo.store.get_item(["prefs"], key="drink"))["value"][
        "text"
    ] == "coffee"
    async with httpx.AsyncClient(base_url=store_auth_server.url) as anonymous:
        refused = await anonymous.post("/store/namespaces", json={})
        assert refused.status_code == 401
