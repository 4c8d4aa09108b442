"""One redis-py failure is one project error and one CLI exit code, whichever
component met it: the mapping itself, the checkpointer, the queue and the LLM rate
limiter. The failures are injected into real redis-py clients (the claim under test is
the mapping, not Redis)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoPermissionError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.cli.exit_codes import exit_code_for
from dialogllm.errors import (
    CorruptCheckpointError,
    DialogueLLMError,
    FencedWriteError,
    RedisAuthError,
    RedisCommandError,
    RedisUnavailableError,
)
from dialogllm.llm import RedisRateLimiter
from dialogllm.queue import Queue
from dialogllm.redis import is_outage, map_redis_error, translate_redis_errors

URL = "redis://app:s3cret@cache:6380/0"

TABLE: list[tuple[BaseException, type[DialogueLLMError], int]] = [
    (RedisConnectionError("Connection refused"), RedisUnavailableError, 4),
    (RedisTimeoutError("Timeout reading from socket"), RedisUnavailableError, 4),
    (
        BusyLoadingError("LOADING Redis is loading the dataset"),
        RedisUnavailableError,
        4,
    ),
    (ClusterDownError("CLUSTERDOWN The cluster is down"), RedisUnavailableError, 4),
    (TryAgainError("TRYAGAIN Multiple keys request"), RedisUnavailableError, 4),
    (ClusterError("TTL exhausted."), RedisUnavailableError, 4),  # MOVED storm
    (MovedError("3999 127.0.0.1:6381"), RedisUnavailableError, 4),
    (AskError("3999 127.0.0.1:6381"), RedisUnavailableError, 4),
    (
        RedisClusterException("Redis Cluster cannot be connected"),
        RedisUnavailableError,
        4,
    ),
    (
        ReadOnlyError("READONLY You can't write against a replica"),
        RedisUnavailableError,
        4,
    ),
    (
        AuthenticationError("WRONGPASS invalid username-password pair"),
        RedisAuthError,
        4,
    ),
    (NoPermissionError("NOPERM this user has no permissions"), RedisAuthError, 4),
    (ResponseError("WRONGTYPE Operation against a key"), RedisCommandError, 1),
    (ResponseError("OOM command not allowed"), RedisCommandError, 1),
    (ResponseError("DIALOGLLM_FENCED token 3 < 4"), FencedWriteError, 1),
    (ResponseError("DIALOGLLM_CORRUPT bad record"), CorruptCheckpointError, 1),
]
IDS = [f"{type(e).__name__}-{expected.__name__}" for e, expected, _ in TABLE]


class FailingClient(aredis.Redis):
    """A real asyncio client whose every command fails with one given error."""

    def __init__(self, error: BaseException, *, decode: bool) -> None:
        super().__init__(host="cache", port=6380, decode_responses=decode)
        self.error = error

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(("error", "expected", "code"), TABLE, ids=IDS)
def test_the_mapping(
    error: BaseException, expected: type[DialogueLLMError], code: int
) -> None:
    mapped = map_redis_error(error, URL, "enqueueing")
    assert type(mapped) is expected
    assert exit_code_for(mapped) == code
    assert "s3cret" not in str(mapped)
    assert is_outage(error) is (expected is RedisUnavailableError)


@pytest.mark.parametrize(("error", "expected", "code"), TABLE, ids=IDS)
async def test_every_component_raises_the_same_error(
    error: BaseException, expected: type[DialogueLLMError], code: int
) -> None:
    raised: list[BaseException] = []

    saver = AsyncRedisSaver(FailingClient(error, decode=False), key_prefix="t")
    with pytest.raises(DialogueLLMError) as info:
        await saver.aget_tuple({"configurable": {"thread_id": "x"}})
    raised.append(info.value)

    queue = Queue(FailingClient(error, decode=True), key_prefix="t")
    with pytest.raises(DialogueLLMError) as info:
        await queue.enqueue("app.graphs:chat", {"topic": "x"})
    raised.append(info.value)

    limiter = RedisRateLimiter(
        "m", requests_per_minute=60, redis=FailingClient(error, decode=False)
    )
    with pytest.raises(DialogueLLMError) as info:
        await limiter.reserve()
    raised.append(info.value)

    for exc in raised:
        assert type(exc) is expected, (type(exc), exc)
        assert exit_code_for(exc) == code
        assert exc.__cause__ is error


def test_auth_errors_name_the_user_never_the_password() -> None:
    mapped = map_redis_error(AuthenticationError("WRONGPASS"), URL, "enqueueing")
    assert "authentication failed for user 'app'" in str(mapped)
    assert "s3cret" not in str(mapped) and "unreachable" not in str(mapped)


def test_translate_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), translate_redis_errors(URL, "x"):
        raise KeyError("not a Redis error")
    with pytest.raises(RedisUnavailableError), translate_redis_errors(URL, "x"):
        raise RedisConnectionError("gone")
