"""The store's pure parts: key schema, records, filters, namespace matching, the
``langgraph.json`` "store" section (no Redis needed)."""

from __future__ import annotations

import pytest
from langgraph.store.base import MatchCondition

from dialogllm.errors import ConfigError, CorruptCheckpointError, StoreValueError
from dialogllm.store import keys as K
from dialogllm.store import store_options
from dialogllm.store.records import (
    check_filter,
    decode_record,
    encode_value,
    matches_condition,
    matches_filter,
    record_expired,
    record_seq,
)


def test_keys_of_one_root_share_its_tag_and_unknown_suffixes_are_refused() -> None:
    assert K.root_key("p", "a{b}", "exp") == "p:s:{a%7Bb%7D}:exp"
    assert K.namespace_key("p", ("r", "x"), "v") == "p:s:{r}:v:r.x"
    with pytest.raises(ValueError, match="suffix"):
        K.root_key("p", "r", "items")
    with pytest.raises(ValueError, match="suffix"):
        K.namespace_key("p", ("r",), "x")
    member = K.exp_member(("r", "x"), "k\x00ey")
    assert K.split_exp_member(member) == (("r", "x"), "k\x00ey")


def test_records_round_trip_and_corrupt_ones_are_typed_errors() -> None:
    raw = b"10 20 3 0 0\n" + encode_value({"a": [1, "b"]}, 100)
    record = decode_record(b"k", raw)
    assert (record.key, record.value, record.seq) == ("k", {"a": [1, "b"]}, 3)
    assert record_seq(b"k", raw) == 3 and not record_expired(b"k", raw, 10**15)
    assert record_expired(b"k", b"1 1 1 5 1\n{}", 6)
    for bad in (b"junk", b"1 2\n{}", b"1 2 3 0 0\n[1]", b"1 2 x 0 0\n{}"):
        with pytest.raises(CorruptCheckpointError):
            decode_record(b"k", bad)
    with pytest.raises(CorruptCheckpointError):
        record_seq(b"k", b"junk")
    with pytest.raises(CorruptCheckpointError):
        record_expired(b"k", b"junk", 1)
    with pytest.raises(StoreValueError, match="dict"):
        encode_value([1], 100)  # type: ignore[arg-type]


def test_filters_and_their_operators() -> None:
    value = {"n": 3, "s": "b", "flag": True, "d": {"x": 1}, "l": [1, 2]}
    assert matches_filter(value, None)
    assert matches_filter(value, {"$and": [{"n": {"$gte": 3}}, {"s": {"$lt": "c"}}]})
    assert not matches_filter(value, {"$and": [{"n": 3}, {"s": "a"}]})
    assert not matches_filter(value, {"s": {"$gt": 1}})  # str vs number: no match
    assert not matches_filter(value, {"missing": {"$lt": 1}})
    assert not matches_filter(value, {"n": {"x": 1}})  # nested dict vs a number
    assert matches_filter(value, {"flag": {"$eq": True}, "l": [1, 2]})
    assert not matches_filter(value, {"l": [1]})
    check_filter({"$and": [{"d": {"x": {"$ne": 2}}}]})
    for bad in ({"n": {"$in": [3]}}, {"$and": [{"d": {"x": {"$re": "1"}}}]}):
        with pytest.raises(StoreValueError, match="unsupported filter operator"):
            check_filter(bad)
    with pytest.raises(StoreValueError, match=r"\$in"):
        matches_filter(value, {"n": {"$in": [3]}})


def test_namespace_conditions() -> None:
    assert matches_condition(MatchCondition("prefix", ("a", "*")), ("a", "b", "c"))
    assert not matches_condition(MatchCondition("prefix", ("a", "b", "c")), ("a",))
    with pytest.raises(StoreValueError, match="match type"):
        matches_condition(MatchCondition("infix", ("a",)), ("a",))  # type: ignore[arg-type]


def test_the_store_section_of_langgraph_json() -> None:
    assert store_options(None) == {}
    assert store_options({"ttl": {"default_ttl": 1}}) == {"ttl": {"default_ttl": 1}}
    assert store_options({"vector_index": "hnsw"}) == {"vector_index": "hnsw"}
    found = store_options({"index": {"dims": 2, "embed": "json:loads"}})
    assert found["index"]["dims"] == 2 and found["index"]["embed"] is not None
    provider = {"index": {"dims": 2, "embed": "openai:text-embedding-3-small"}}
    bad_index = {"vector_index": "faiss"}
    for bad in (
        [1],
        {"index": 1},
        {"ttl": "x"},
        {"index": {"dims": 2}},
        provider,
        bad_index,
    ):
        with pytest.raises(ConfigError):
            store_options(bad)  # type: ignore[arg-type]


def test_vector_hash_names_carry_the_root_tag_and_never_a_nul() -> None:
    base = K.vector_doc_base("p", 8, ("r{x}", "a"), "k\x00:0")
    assert base.startswith("p:sv:8:{r%7Bx%7D}:") and base.endswith(":")
    assert "\x00" not in base
    assert base != K.vector_doc_base("p", 8, ("r{x}", "a"), "k")
    assert base != K.vector_doc_base("p", 8, ("r{x}", "a", "k"), ":0")
    assert base.startswith(K.vector_doc_prefix("p", 8))
    assert not K.vector_index_state_key("p", 8, "flat").startswith(
        K.vector_doc_prefix("p", 8)
    )
    tags = K.vector_tags(("a", "b", "c")).split(",")
    assert tags == [
        K.vector_prefix_tag(p) for p in (("a",), ("a", "b"), ("a", "b", "c"))
    ]
    assert all(t.isalnum() for t in tags) and len(set(tags)) == 3


def test_knn_replies_parse_in_resp2_and_resp3() -> None:
    from dialogllm.store.vector_index import VectorHit, VectorIndex, parse_hits

    resp2 = [
        2,
        b"doc:0",
        [b"ns", b"a.b", b"key", b"k", b"dist", b"0.25"],
        b"doc:1",
        [b"ns", b"a", b"key", b"j", b"dist", b"nan"],
    ]
    expected = [VectorHit(("a", "b"), "k", 0.75), VectorHit(("a",), "j", 0.0)]
    assert parse_hits(resp2) == expected
    resp3 = {
        b"total_results": 2,
        b"results": [
            {
                b"id": b"doc:0",
                b"extra_attributes": {b"ns": b"a.b", b"key": b"k", b"dist": b"0.25"},
            },
            {
                b"id": b"doc:1",
                b"extra_attributes": {b"ns": b"a", b"key": b"j", b"dist": b"nan"},
            },
        ],
    }
    assert parse_hits(resp3) == expected
    assert parse_hits([0]) == []
    index = VectorIndex("p", 4, "hnsw")
    everything = index.knn((), b"q" * 16, 5).args
    assert everything[2] == "(*)=>[KNN $k @vec $q AS dist]"
    scoped = index.knn(("a",), b"q" * 16, 5).args
    assert scoped[2].startswith(f"(@nsp:{{{K.vector_prefix_tag(('a',))}}})")
    assert "HNSW" in index.create_args() and index.bytes_per_vector == "16"
