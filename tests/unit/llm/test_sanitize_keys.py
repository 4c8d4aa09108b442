"""Output sanitization and the Redis key schema."""

from __future__ import annotations

import pytest

from dialogllm.config import get_settings
from dialogllm.llm import keys, sanitize_text


def test_control_characters_and_escapes_are_stripped() -> None:
    raw = "\x1b[2J\x1b]0;title\x07Hello\x00 \u202eworld\r\n\tbye\x1b[0m"
    assert sanitize_text(raw) == "Hello world\n bye"


def test_long_text_is_cut_and_marked() -> None:
    cut = sanitize_text("word " * 100, max_chars=12)
    assert cut == "word word w…" and len(cut) == 12
    assert sanitize_text("a\n\n\n\n\nb") == "a\n\nb"
    with pytest.raises(ValueError):
        sanitize_text("x", max_chars=0)


def test_keys_of_one_model_share_a_hash_tag() -> None:
    rate = keys.rate_bucket("p", "org/model x{1}")
    minute = keys.metrics_minute("p", "org/model x{1}", 42)
    tag = keys.model_tag("org/model x{1}")
    assert tag == "{llm:org/model_x_1_}"
    assert rate == f"p:{tag}:rate" and minute == f"p:{tag}:metrics:42"
    assert keys.metrics_models("p") == "p:llm:metrics:models"


def test_prefix_defaults_to_the_process_setting() -> None:
    assert keys.resolve_prefix(None) == get_settings().key_prefix
    assert keys.resolve_prefix("mine") == "mine"
