"""Pure parts of the checkpointer: keys, records, versions, fencing tokens."""

from __future__ import annotations

import pytest

from dialogllm.checkpoint import (
    FencingToken,
    fencing_token_from_config,
    with_fencing_token,
)
from dialogllm.checkpoint import keys as K
from dialogllm.checkpoint.base import (
    SaverOptions,
    ThreadRef,
    delta_channels,
    lp_join,
    lp_split,
    metadata_matches,
    next_version,
    split_member,
)
from dialogllm.errors import InvalidCheckpointConfigError


def test_every_key_of_a_thread_carries_the_same_hash_tag() -> None:
    thread = "odd:thread|{x}"
    tags = {
        K.thread_key("p", thread, s).split("{", 1)[1].split("}", 1)[0]
        for s in K.THREAD_KEY_SUFFIXES
    }
    tags.add(K.thread_lease("p", thread).split("{", 1)[1].split("}", 1)[0])
    assert tags == {"odd:thread|%7Bx%7D"}


def test_escape_tag_is_injective_on_braces_and_percent() -> None:
    assert K.escape_tag("%7B") != K.escape_tag("{")
    assert K.glob_escape("a*b?[c]") == "a\\*b\\?\\[c\\]"


def test_members_of_different_namespaces_never_share_a_prefix() -> None:
    a = K.checkpoint_member("a", "1b")
    ab = K.checkpoint_member("a1", "b")
    assert a != ab
    assert not a.startswith(K.ns_part("a1")) and not ab.startswith(K.ns_part("a"))
    assert split_member(K.checkpoint_member("x:y|z", "cid")) == ("x:y|z", "cid")


def test_length_prefixed_records_round_trip_binary() -> None:
    items = [b"", b"a:b", bytes(range(256)), "ünï".encode()]
    assert lp_split(lp_join(items)) == items
    assert lp_split(lp_join(items), 2) == items[:2]
    with pytest.raises(ValueError):
        lp_split(b"10:short")


def test_versions_grow_and_stay_unique_across_forks() -> None:
    v1 = next_version(None)
    v2 = next_version(v1)
    assert v2 > v1
    forks = {next_version(v1) for _ in range(200)}
    assert len(forks) == 200
    assert next_version(7).startswith("0000000000000008.")
    assert next_version(7.0) > next_version(6)
    legacy = f"{41:032}.{0.5:016}"
    assert next_version(legacy) > legacy


def test_options_and_thread_refs_validate() -> None:
    with pytest.raises(InvalidCheckpointConfigError):
        SaverOptions(key_prefix="")
    with pytest.raises(InvalidCheckpointConfigError):
        SaverOptions(ttl_seconds=0)
    assert SaverOptions(ttl_seconds=1.5).ttl_ms_arg == "1500"
    assert SaverOptions().ttl_ms_arg == ""
    ref = ThreadRef.from_config({"configurable": {"thread_id": 7}})
    assert ref == ThreadRef("7", "", None)
    with pytest.raises(InvalidCheckpointConfigError):
        ThreadRef.from_config(None)


def test_metadata_helpers() -> None:
    assert metadata_matches({"a": 1, "b": 2}, {"a": 1})
    assert not metadata_matches({"a": 1}, {"a": 2})
    assert delta_channels({"counters_since_delta_snapshot": {"t": [1, 1]}}) == ["t"]
    assert delta_channels({}) == []


def test_fencing_tokens_travel_in_config() -> None:
    token = FencingToken("lease-1", 3)
    config = with_fencing_token({"configurable": {"thread_id": "t"}}, token)
    assert fencing_token_from_config(config) == token
    as_dict = {"configurable": {"dialogllm_fence": {"lease_id": "l", "fence": "2"}}}
    assert fencing_token_from_config(as_dict) == FencingToken("l", 2)
    assert fencing_token_from_config({}) is None
    with pytest.raises(TypeError):
        fencing_token_from_config({"configurable": {"dialogllm_fence": 5}})
    with pytest.raises(ValueError):
        FencingToken("", 1)
    with pytest.raises(ValueError):
        FencingToken("x", -1)
