"""Thread leases and fencing: the one home of what the queue and the checkpointer share.

A lease gives one queue worker the right to run a thread and write its checkpoints. It
is a Redis HASH (:func:`thread_lease`) with the fields ``id`` (random, one per
acquisition), ``fence`` (taken from the thread's counter, :func:`thread_fence_counter`,
so it only grows) and ``run`` (the run that holds it), set with a TTL and renewed by
the holder's heartbeat. Both keys live in the thread's hash-tag slot
(:func:`thread_base`), next to the thread's checkpoints, so the checkpointer checks a
write's :class:`FencingToken` inside the same atomic Lua call as the write, and a
write whose token no longer matches the lease is refused with
:class:`~dialogllm.errors.FencedWriteError`, changing nothing.

This module owns the lease and fence key names, the Lua that takes, renews, releases
and checks a lease (:data:`LEASE_FUNCS`, :data:`CHECK_FENCE` as fragments for larger
scripts; :data:`LEASE_ACQUIRE`, :data:`LEASE_RENEW`, :data:`LEASE_RELEASE` as whole
scripts), and the token a writer carries. :mod:`dialogllm.checkpoint` and
:mod:`dialogllm.queue` both import it; it imports neither.

The rule a reader must not break: a write that carries a token is applied only if the
lease key holds exactly that ``id`` and ``fence`` at the moment of the write.

>>> token = FencingToken(lease_id="9f1c...", fence=7)
>>> config = with_fencing_token({"configurable": {"thread_id": "t-1"}}, token)
>>> fencing_token_from_config(config) == token
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.runnables import RunnableConfig

__all__ = [
    "CHECK_FENCE",
    "FENCE_CONFIG_KEY",
    "LEASE_ACQUIRE",
    "LEASE_FUNCS",
    "LEASE_RELEASE",
    "LEASE_RENEW",
    "FencingToken",
    "escape_tag",
    "fencing_token_from_config",
    "thread_base",
    "thread_fence_counter",
    "thread_lease",
    "with_fencing_token",
]

# --- keys ----------------------------------------------------------------------------


def escape_tag(value: str) -> str:
    """Escape ``value`` for use inside a hash tag (no braces, injective).

    >>> escape_tag("a{b}%")
    'a%7Bb%7D%25'
    """
    return value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def thread_base(prefix: str, thread_id: str) -> str:
    """``P:t:{T}``: the common start of every key of one thread (its Cluster slot)."""
    return f"{prefix}:t:{{{escape_tag(thread_id)}}}"


def thread_lease(prefix: str, thread_id: str) -> str:
    """HASH ``id``/``fence``/``run`` of the lease a queue worker holds on the thread."""
    return thread_base(prefix, thread_id) + ":lease"


def thread_fence_counter(prefix: str, thread_id: str) -> str:
    """STRING counter from which each new lease on the thread takes its fence number."""
    return thread_base(prefix, thread_id) + ":fence"


# --- Lua (the thread's slot) ---------------------------------------------------------

#: Lua functions ``lease_acquire(KL, KF, lease, run, ttl_ms, counter_ttl_ms)`` (returns
#: ``{1, fence}`` or ``{0, holder run, pttl}``) and ``lease_release(KL, lease)`` (1 when
#: released, 0 when the lease was not ours any more), for scripts to include.
LEASE_FUNCS: Final = r"""
-- take the lease KL (fence counter KF) for run `run`; {1, fence} or {0, holder, pttl}
local function lease_acquire(KL, KF, lease, run, ttl_ms, counter_ttl_ms)
  -- keys someone else wrote must not hold the thread for good: a lease of another
  -- type or without expiry (every lease is taken with one) is nobody's lease; a
  -- counter that is not a whole number restarts at the server time in ms, above
  -- any count it reached (a write still needs the lease's own random id too)
  local kind = redis.call('TYPE', KL)['ok']
  if kind ~= 'none' and (kind ~= 'hash' or redis.call('PTTL', KL) < 0) then
    redis.call('DEL', KL)
  end
  kind = redis.call('TYPE', KF)['ok']
  local n = kind == 'string' and redis.call('GET', KF)
  if kind ~= 'none' and not (n and #n < 16 and string.match(n, '^%d+$')) then
    redis.call('SET', KF, redis.call('TIME')[1] .. '000')
  end
  local cur = redis.call('HMGET', KL, 'id', 'run')
  if cur[1] and cur[1] ~= lease then
    return {0, cur[2] or '', redis.call('PTTL', KL)}
  end
  local fence = redis.call('INCR', KF)
  redis.call('PEXPIRE', KF, counter_ttl_ms)
  redis.call('HSET', KL, 'id', lease, 'fence', fence, 'run', run)
  redis.call('PEXPIRE', KL, ttl_ms)
  return {1, fence}
end
local function lease_release(KL, lease)
  if redis.call('HGET', KL, 'id') == lease then
    redis.call('DEL', KL)
    return 1
  end
  return 0
end
"""

#: Lua function ``check_fence(KL, lease_id, fence)``: nothing when the write may go
#: ahead (no token, or the lease ``KL`` holds exactly that id and fence), else a
#: ``DIALOGLLM_FENCED`` error reply for the script to return.
CHECK_FENCE: Final = r"""
local function check_fence(KL, lease_id, fence)
  if lease_id == '' then return end
  local cur = redis.call('HMGET', KL, 'id', 'fence')
  if cur[1] ~= lease_id or cur[2] ~= fence then
    return redis.error_reply('DIALOGLLM_FENCED lease ' .. lease_id .. ' fence ' ..
      fence .. ' no longer holds the thread (holder: ' .. tostring(cur[1]) ..
      ' fence ' .. tostring(cur[2]) .. ')')
  end
end
"""

LEASE_ACQUIRE: Final = (
    LEASE_FUNCS
    + r"""
-- KEYS: lease, fence counter.  ARGV: lease_id, run_id, ttl_ms, counter_ttl_ms
return lease_acquire(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

LEASE_RENEW: Final = r"""
-- KEYS: lease.  ARGV: lease_id, ttl_ms.  1 when renewed, 0 when no longer held.
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

LEASE_RELEASE: Final = (
    LEASE_FUNCS
    + r"""
-- KEYS: lease.  ARGV: lease_id.  1 when released, 0 when it was not ours any more.
return lease_release(KEYS[1], ARGV[1])
"""
)

# --- the token a writer carries ------------------------------------------------------

#: Key of ``config["configurable"]`` that carries the token. It is not a plain
#: string, so LangGraph does not copy it into checkpoint metadata.
FENCE_CONFIG_KEY = "dialogllm_fence"


@dataclass(frozen=True, slots=True)
class FencingToken:
    """The lease a write claims to hold: its ``lease_id`` and ``fence`` number."""

    lease_id: str
    fence: int

    def __post_init__(self) -> None:
        if not self.lease_id:
            raise ValueError("lease_id must not be empty")
        if self.fence < 0:
            raise ValueError("fence must be >= 0")


def with_fencing_token(config: RunnableConfig, token: FencingToken) -> RunnableConfig:
    """Return a copy of ``config`` whose writes carry ``token``."""
    configurable = dict(config.get("configurable") or {})
    configurable[FENCE_CONFIG_KEY] = token
    return {**config, "configurable": configurable}


def fencing_token_from_config(config: Mapping[str, Any]) -> FencingToken | None:
    """The token in ``config`` (a :class:`FencingToken` or a dict of its fields)."""
    value = (config.get("configurable") or {}).get(FENCE_CONFIG_KEY)
    if value is None or isinstance(value, FencingToken):
        return value
    if isinstance(value, Mapping):
        return FencingToken(lease_id=str(value["lease_id"]), fence=int(value["fence"]))
    raise TypeError(f"{FENCE_CONFIG_KEY} must be a FencingToken, got {type(value)}")
