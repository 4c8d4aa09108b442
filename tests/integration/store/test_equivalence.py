"""The same cases against LangGraph's ``InMemoryStore`` and against ours (async and
sync, on Redis, on a Redis Cluster, on the embedded Redis): every assertion holds for
all of them, so a graph sees no difference when it moves to Redis."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from .conftest import StoreMaker, index

pytestmark = pytest.mark.integration


def view(items: list[Any]) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    return [(tuple(i.namespace), i.key, i.value) for i in items]


async def test_put_get_update_delete_at_any_depth(maker: StoreMaker) -> None:
    store = maker.make()
    deep = ("users", "ada", "notes", "2026", "december")
    await store.aput(deep, "n1", {"text": "likes tea", "n": 1})
    await store.aput(("solo",), "k", {"a": [1, 2, {"b": None}]})
    item = await store.aget(deep, "n1")
    assert item is not None and item.value == {"text": "likes tea", "n": 1}
    assert item.namespace == deep and item.key == "n1"
    assert (await store.aget(("solo",), "k")).value == {"a": [1, 2, {"b": None}]}
    await store.aput(deep, "n1", {"text": "likes coffee now"})
    assert (await store.aget(deep, "n1")).value == {"text": "likes coffee now"}
    await store.adelete(deep, "n1")
    assert await store.aget(deep, "n1") is None
    assert await store.aget(("nowhere",), "n1") is None
    await store.adelete(("nowhere",), "n1")  # deleting nothing is no error


async def test_search_filters_with_every_operator(maker: StoreMaker) -> None:
    store = maker.make()
    ns = ("shop", "items")
    rows = [
        ("a", {"name": "tea", "price": 3, "tags": ["hot"], "meta": {"origin": "in"}}),
        ("b", {"name": "coffee", "price": 4.5, "tags": ["hot", "bitter"]}),
        ("c", {"name": "juice", "price": 2, "meta": {"origin": "es"}}),
        ("d", {"name": "water", "price": 0, "active": True}),
    ]
    for key, value in rows:
        await store.aput(ns, key, value)

    async def keys(flt: dict[str, Any]) -> list[str]:
        return [i.key for i in await store.asearch(("shop",), filter=flt)]

    assert await keys({"name": "tea"}) == ["a"]
    assert await keys({"price": {"$gt": 2}}) == ["a", "b"]
    assert await keys({"price": {"$gte": 3}}) == ["a", "b"]
    assert await keys({"price": {"$lt": 3}}) == ["c", "d"]
    assert await keys({"price": {"$lte": 2}}) == ["c", "d"]
    assert await keys({"price": {"$gt": 1, "$lt": 4}}) == ["a", "c"]
    assert await keys({"name": {"$ne": "tea"}}) == ["b", "c", "d"]
    assert await keys({"name": {"$eq": "juice"}}) == ["c"]
    assert await keys({"meta": {"origin": "es"}}) == ["c"]
    assert await keys({"tags": ["hot", "bitter"]}) == ["b"]
    assert await keys({"active": True}) == ["d"]
    assert await keys({"name": "tea", "price": 4.5}) == []
    assert await keys({"price": 4.5}) == ["b"]


async def test_limit_offset_in_creation_order_across_namespaces(
    maker: StoreMaker,
) -> None:
    store = maker.make()
    for i in range(7):
        await store.aput(("log", "x" if i % 2 else "y"), f"k{i}", {"i": i})
    await store.aput(("other",), "o", {"i": 99})
    await store.aput(("log", "y"), "k0", {"i": 0, "updated": True})  # keeps place
    everything = [i.key for i in await store.asearch(("log",), limit=100)]
    assert everything == ["k0", "k2", "k4", "k6", "k1", "k3", "k5"]
    page = [i.key for i in await store.asearch(("log",), limit=3, offset=2)]
    assert page == everything[2:5]
    assert [i.key for i in await store.asearch(("log", "x"))] == ["k1", "k3", "k5"]
    assert len(await store.asearch((), limit=100)) == 8
    assert [i.key for i in await store.asearch(())][:1] == ["k0"]
    assert await store.asearch(("log", "z")) == []
    assert await store.asearch(("lo",)) == []  # a prefix is whole labels


async def test_list_namespaces_prefix_suffix_wildcard_depth(maker: StoreMaker) -> None:
    store = maker.make()
    for ns in [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("x", "v1"),
        ("y", "z", "v1"),
    ]:
        await store.aput(ns, "k", {"v": 1})
    assert await store.alist_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert await store.alist_namespaces(suffix=("f",)) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
    ]
    assert await store.alist_namespaces(prefix=("a", "*", "f")) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
    ]
    assert await store.alist_namespaces(suffix=("*", "v1")) == [
        ("x", "v1"),
        ("y", "z", "v1"),
    ]
    assert await store.alist_namespaces(prefix=("*", "z")) == [("y", "z", "v1")]
    assert await store.alist_namespaces(max_depth=1) == [("a",), ("x",), ("y",)]
    assert await store.alist_namespaces(prefix=("a",), suffix=("e",)) == [
        ("a", "b", "d", "e")
    ]
    all_ns = await store.alist_namespaces()
    assert len(all_ns) == 7 and all_ns == sorted(all_ns)
    assert await store.alist_namespaces(limit=2, offset=1) == all_ns[1:3]
    ops = [
        ListNamespacesOp(
            match_conditions=(MatchCondition("prefix", ("a", "b", "d")),), limit=1
        )
    ]
    assert await store.abatch(ops) == [[("a", "b", "d", "e")]]


async def test_a_batch_reads_before_its_writes_and_the_last_put_wins(
    maker: StoreMaker,
) -> None:
    store = maker.make()
    ns = ("batch",)
    await store.aput(ns, "k", {"v": "old"})
    results = await store.abatch(
        [
            PutOp(ns, "k", {"v": "new"}),
            GetOp(ns, "k"),
            PutOp(ns, "k", {"v": "newest"}),
            SearchOp(ns),
            PutOp(ns, "j", {"v": 1}),
            PutOp(ns, "j", None),
        ]
    )
    assert results[0] is None and results[2] is None
    assert results[1].value == {"v": "old"}
    assert view(results[3]) == [(ns, "k", {"v": "old"})]
    assert (await store.aget(ns, "k")).value == {"v": "newest"}
    assert await store.aget(ns, "j") is None


async def test_invalid_namespaces_are_refused(maker: StoreMaker) -> None:
    store = maker.make()
    for bad in [(), ("langgraph", "x"), ("a.b",), ("",)]:
        with pytest.raises(InvalidNamespaceError):
            await store.aput(bad, "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        await store.aget(("a.b",), "k")
    with pytest.raises(InvalidNamespaceError):
        await store.alist_namespaces(prefix=("a.b",))


# --- semantic search ---------------------------------------------------------------


async def _fill_pets(store: Any) -> None:
    ns = ("people", "ada")
    await store.aput(ns, "cat", {"text": "a cat named tabby", "kind": "pet"})
    await store.aput(ns, "dog", {"text": "a dog called rex", "kind": "pet"})
    await store.aput(ns, "tea", {"text": "green tea at noon", "kind": "food"})
    await store.aput(ns, "plain", {"text": "zzz"}, index=False)
    await store.aput(
        ("people", "bob"),
        "list",
        {"text": "x", "notes": [{"t": "cats and kittens"}, {"t": "tax forms"}]},
        index=["notes[*].t"],
    )


async def test_semantic_search_matches_in_memory_scores(maker: StoreMaker) -> None:
    store = maker.make(index=index(["text"]))
    reference = InMemoryStore(index=index(["text"]))
    for target in (store, reference):
        await _fill_pets(target)

    async def ranked(target: Any, **kwargs: Any) -> list[tuple[str, float | None]]:
        found = await target.asearch(("people",), **kwargs)
        return [(i.key, None if i.score is None else round(i.score, 4)) for i in found]

    for kwargs in [
        {"query": "cat"},
        {"query": "kitten tax", "limit": 2},
        {"query": "dog rex", "filter": {"kind": "pet"}},
        {"query": "tea", "offset": 1, "limit": 2},
        {"query": "noon", "limit": 10},
    ]:
        assert await ranked(store, **kwargs) == await ranked(reference, **kwargs)
    best = (await store.asearch(("people",), query="a cat named tabby"))[0]
    assert best.key == "cat" and best.score == pytest.approx(1.0, abs=1e-5)
    # without a query, no scores: filter order
    plain = await store.asearch(("people", "ada"), filter={"kind": "pet"})
    assert [(i.key, i.score) for i in plain] == [("cat", None), ("dog", None)]


async def test_semantic_search_of_the_whole_value(maker: StoreMaker) -> None:
    store = maker.make(index=index())
    reference = InMemoryStore(index=index())
    for target in (store, reference):
        await target.aput(("docs",), "a", {"title": "tea", "body": "green"})
        await target.aput(("docs",), "b", {"title": "coffee", "body": "black"})
    mine = [(i.key, round(i.score, 4)) for i in await store.asearch((), query="tea")]
    theirs = [
        (i.key, round(i.score, 4)) for i in await reference.asearch((), query="tea")
    ]
    assert mine == theirs


async def test_sync_api_behaves_as_the_async_one(maker: StoreMaker) -> None:
    if maker.kind in ("redis", "cluster", "embedded", "stack"):
        pytest.skip("the async store's sync API is tested from a thread elsewhere")
    store = maker.make()
    store.put(("s",), "k", {"v": 1})
    assert store.get(("s",), "k").value == {"v": 1}
    assert [i.key for i in store.search(("s",), filter={"v": 1})] == ["k"]
    assert store.list_namespaces() == [("s",)]
    store.delete(("s",), "k")
    assert store.get(("s",), "k") is None
