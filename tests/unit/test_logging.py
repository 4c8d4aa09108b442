from __future__ import annotations

import io
import json
import logging

import structlog

from dialogllm.logging import configure_logging, get_logger, mask_url, redact_text


def test_mask_url_hides_password_only() -> None:
    assert mask_url("redis://app:s3cret@h:1/0") == "redis://app:***@h:1/0"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"


def test_redact_text_masks_bearer_key_value_and_openai_keys() -> None:
    text = "Authorization: Bearer abc.def api_key=zzz9 sk-abcdefghijklmnop"
    out = redact_text(text)
    for secret in ("abc.def", "zzz9", "sk-abcdefghijklmnop"):
        assert secret not in out


def test_json_log_line_has_context_and_no_secrets() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", level="info", stream=stream)
    with structlog.contextvars.bound_contextvars(run_id="r-1", thread_id="t-1"):
        get_logger("t", node="persona").info(
            "connect",
            url="redis://u:hunter2@h:6379/0",
            api_key="sk-live-abcdefghijkl",
            headers={"Authorization": "Bearer tok123"},
            note="password=hunter2",
        )
    line = stream.getvalue().strip().splitlines()[-1]
    record = json.loads(line)
    assert record["run_id"] == "r-1"
    assert record["thread_id"] == "t-1"
    assert record["node"] == "persona"
    assert "hunter2" not in line
    assert "tok123" not in line
    assert "sk-live" not in line


def test_stdlib_logging_is_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging(fmt="console", level="debug", stream=stream)
    logging.getLogger("third.party").warning("dial redis://x:pw123@h:1")
    assert "pw123" not in stream.getvalue()
    assert "redis://x:***@h:1" in stream.getvalue()


def test_exception_logged_with_type() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", level="info", stream=stream)
    try:
        raise ValueError("boom token=abc123")
    except ValueError as exc:
        get_logger("t").error("failed", exc_info=exc)
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["exc_type"] == "ValueError"
    assert "abc123" not in json.dumps(record)


def test_urls_are_masked_in_the_userinfo_and_the_query_string() -> None:
    from dialogllm.logging import mask_url

    url = "rediss://app:pw1@h:6380/0?password=pw2&ssl_password=pw3&token=pw4&db=2"
    masked = mask_url(url)
    assert not any(f"pw{i}" in masked for i in range(1, 5)), masked
    assert masked.startswith("rediss://app:***@h:6380/0?") and masked.endswith("&db=2")
    assert mask_url("redis://h/0?password=secret#x") == "redis://h/0?password=***#x"
