"""The Redis key schema of the checkpointer.

Every key of one thread carries the hash tag ``{<thread>}``, so a thread lives in one
Redis Cluster slot and every multi-key write stays one atomic Lua call. Keys are built
here and nowhere else; nothing ever parses a key by splitting it.

Per thread (``P`` is the key prefix, ``T`` the escaped thread id)::

    P:t:{T}:idx     ZSET  checkpoint members (score 0, lexicographic): ns_part + id
    P:t:{T}:cp      HASH  member -> skeleton (parent, run, channel versions) + record
    P:t:{T}:blobs   HASH  ns_part + lp(channel) + version -> typed blob (only values;
                          a channel version with no value has no field)
    P:t:{T}:w       HASH  member -> the checkpoint's pending writes, concatenated
    P:t:{T}:runs    ZSET  lp(run id) + member, for delete_for_runs
    P:t:{T}:meta    HASH  per-thread settings: ``ttl_ms`` (-1 = pinned)
    P:t:{T}:lease   HASH  the queue's lease on the thread: ``id``, ``fence``
    P:t:{T}:fence   STRING the thread's fencing counter (only grows)

The lease and fence keys (and the thread's hash tag they share with the checkpoints)
are built in :mod:`dialogllm.leases`, which the queue uses too; this module re-exports
them for the checkpointer's scripts.

Global::

    P:r:{R}         SET   thread ids that hold checkpoints of run R

``ns_part`` is ``lp(checkpoint_ns)``: a length-prefixed string (``"<bytes>:<ns>"``), so
namespaces, which contain ``:`` and ``|``, stay opaque and no member of one namespace
can be read as one of another.
"""

from __future__ import annotations

from typing import Final

from dialogllm.leases import (
    escape_tag,
    thread_base,
    thread_fence_counter,
    thread_lease,
)

__all__ = [
    "THREAD_KEY_SUFFIXES",
    "blob_field",
    "checkpoint_member",
    "escape_tag",
    "glob_escape",
    "lp",
    "ns_part",
    "run_threads",
    "thread_base",
    "thread_fence_counter",
    "thread_key",
    "thread_lease",
]

#: The per-thread keys that hold checkpoint data (all expire together under a TTL).
THREAD_KEY_SUFFIXES: Final = ("idx", "cp", "blobs", "w", "runs", "meta")


def lp(value: str | bytes) -> bytes:
    """Length-prefix ``value``: ``b"<len in bytes>:<value>"``.

    >>> lp("a:b")
    b'3:a:b'
    """
    raw = value.encode() if isinstance(value, str) else value
    return str(len(raw)).encode() + b":" + raw


def glob_escape(value: str) -> str:
    """Escape the glob characters of ``value`` for ``SCAN MATCH``."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in value)


def thread_key(prefix: str, thread_id: str, suffix: str) -> str:
    """One of the thread's keys, e.g. ``thread_key(p, t, "idx")``."""
    return f"{thread_base(prefix, thread_id)}:{suffix}"


def run_threads(prefix: str, run_id: str) -> str:
    """SET of thread ids that hold checkpoints written by run ``run_id``."""
    return f"{prefix}:r:{{{escape_tag(run_id)}}}"


def ns_part(checkpoint_ns: str) -> bytes:
    """The length-prefixed namespace that starts every member and field."""
    return lp(checkpoint_ns)


def checkpoint_member(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """Member of ``idx`` (and field of ``cp`` and ``w``) for one checkpoint."""
    return ns_part(checkpoint_ns) + checkpoint_id.encode()


def blob_field(checkpoint_ns: str, channel: str, version: str) -> bytes:
    """Field of ``blobs`` holding one channel's value at one version."""
    return ns_part(checkpoint_ns) + lp(channel) + version.encode()
