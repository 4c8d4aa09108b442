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
    found = store_options({"index": {"dims": 2, "embed": "json:loads"}})
    assert found["index"]["dims"] == 2 and found["index"]["embed"] is not None
    provider = {"index": {"dims": 2, "embed": "openai:text-embedding-3-small"}}
    for bad in ([1], {"index": 1}, {"ttl": "x"}, {"index": {"dims": 2}}, provider):
        with pytest.raises(ConfigError):
            store_options(bad)  # type: ignore[arg-type]
