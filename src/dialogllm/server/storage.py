"""The server's own records in Redis: threads and assistants as LangGraph's API shows
them.

A thread's *state* lives in the checkpointer and its *runs* in the queue; what only
the API knows (a thread's metadata and times, the assistants a client created and
their versions) is kept here. Key schema (``P`` is the key prefix, ``T`` an escaped
thread id, ``A`` an assistant id)::

    P:srv:th:{T}            HASH  created, updated (ms), metadata (JSON), last_run,
                                  ttl_ms (a TTL, refreshed by every update)
    P:srv:threads           ZSET  thread ids, scored by creation ms
    P:srv:as:{A}            HASH  the assistant's latest version (JSON fields)
    P:srv:as:{A}:versions   LIST  every version as JSON, oldest first
    P:srv:assistants        ZSET  assistant ids a client created, by creation ms

The rule a reader must not break: every value is JSON written by this module (never
pickle); a record that cannot be decoded reads as empty metadata, never an error.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from dialogllm.leases import escape_tag
from dialogllm.queue.models import dumps
from dialogllm.redis.clients import AsyncClient
from dialogllm.redis.hashes import read_hashes

__all__ = ["AssistantRecord", "ServerStore", "ThreadRecord", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch (what every stored time is)."""
    return int(time.time() * 1000)


def _json(value: Any, default: Any) -> Any:
    try:
        data = json.loads(value) if value else default
    except ValueError:
        return default
    return data if isinstance(data, type(default)) else default


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """What the API stores of a thread (its state is the checkpointer's)."""

    thread_id: str
    created_ms: int
    updated_ms: int
    metadata: dict[str, Any] = field(default_factory=dict)
    last_run: str | None = None
    #: the metadata as stored (what an update compares before it writes)
    metadata_json: str = ""


@dataclass(frozen=True, slots=True)
class RunNote:
    """A run noted as a thread's latest, with what that replaced: enough to take
    the note back should the run's enqueue fail (:meth:`ServerStore.take_back`)."""

    thread_id: str
    run_id: str
    #: the thread's latest run before this one (``None``: it had none)
    replaced: str | None = None
    #: the note made the thread (a run's new thread)
    created: bool = False


@dataclass(frozen=True, slots=True)
class AssistantRecord:
    """One version of an assistant: a graph with its configuration."""

    assistant_id: str
    graph_id: str
    name: str
    version: int
    created_ms: int
    updated_ms: int
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def to_json(self) -> str:
        """The version as stored."""
        return dumps(
            {
                "assistant_id": self.assistant_id,
                "graph_id": self.graph_id,
                "name": self.name,
                "version": self.version,
                "created_ms": self.created_ms,
                "updated_ms": self.updated_ms,
                "config": self.config,
                "context": self.context,
                "metadata": self.metadata,
                "description": self.description,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes | None) -> AssistantRecord | None:
        """A stored version; ``None`` when it cannot be decoded."""
        data = _json(text, {})
        try:
            return cls(
                assistant_id=str(data["assistant_id"]),
                graph_id=str(data["graph_id"]),
                name=str(data.get("name") or data["graph_id"]),
                version=int(data.get("version", 1)),
                created_ms=int(data.get("created_ms", 0)),
                updated_ms=int(data.get("updated_ms", 0)),
                config=_json(dumps(data.get("config")), {}),
                context=_json(dumps(data.get("context")), {}),
                metadata=_json(dumps(data.get("metadata")), {}),
                description=data.get("description"),
            )
        except (KeyError, TypeError, ValueError):
            return None


_CREATE_THREAD = """
-- KEYS: the thread. ARGV: now ms, thread id, metadata JSON, last run ('' none)
if redis.call('HSETNX', KEYS[1], 'created', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'updated', ARGV[1], 'metadata', ARGV[3], 'tid', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'last_run', ARGV[4]) end
return 1
"""

_TOUCH_THREAD = """
-- KEYS: the thread. ARGV: now ms, last run ('' keep), metadata JSON ('' keep), the
-- metadata JSON it replaces. 0: no such thread; {'metadata', current}: the metadata
-- changed since the caller read it (merge into current, try again); {'done', the
-- latest run it replaced ('' none)}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' then
  local current = redis.call('HGET', KEYS[1], 'metadata') or ''
  if current ~= ARGV[4] then return {'metadata', current} end
  redis.call('HSET', KEYS[1], 'metadata', ARGV[3])
end
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
local replaced = redis.call('HGET', KEYS[1], 'last_run') or ''
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'last_run', ARGV[2]) end
local ttl = redis.call('HGET', KEYS[1], 'ttl_ms')
if ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {'done', replaced}
"""

_TAKE_BACK_RUN = """
-- KEYS: the thread. ARGV: the run noted as its latest, the one it replaced ('' none),
-- '1' when the note made the thread (then the record goes). 1: taken back; 0: no
-- such thread, or its latest run is another now
if redis.call('HGET', KEYS[1], 'last_run') ~= ARGV[1] then return 0 end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
elseif ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'last_run')
else
  redis.call('HSET', KEYS[1], 'last_run', ARGV[2])
end
return 1
"""

#: How often an update merges again when the metadata keeps changing under it.
_MERGE_TRIES = 16


class ServerStore:
    """Redis access for the API's thread and assistant records.

    Args:
        client: a ``redis.asyncio`` client with ``decode_responses=True``.
        prefix: the key prefix shared with the checkpointer and the queue.

    >>> store = ServerStore(async_client(url, decode=True), prefix="dialogllm")
    >>> await store.create_thread("t-1", {"user": "ada"})       # doctest: +SKIP
    """

    def __init__(self, client: AsyncClient, *, prefix: str) -> None:
        self.client: Any = client  # redis-py's reply types are too loose to use
        self.prefix = prefix
        self._create = self.client.register_script(_CREATE_THREAD)
        self._touch = self.client.register_script(_TOUCH_THREAD)
        self._take_back = self.client.register_script(_TAKE_BACK_RUN)

    # --- keys ---------------------------------------------------------------------

    def _thread_key(self, thread_id: str) -> str:
        return f"{self.prefix}:srv:th:{{{escape_tag(thread_id)}}}"

    @property
    def _threads(self) -> str:
        return f"{self.prefix}:srv:threads"

    def _assistant_key(self, assistant_id: str) -> str:
        return f"{self.prefix}:srv:as:{{{escape_tag(assistant_id)}}}"

    @property
    def _assistants(self) -> str:
        return f"{self.prefix}:srv:assistants"

    # --- threads --------------------------------------------------------------------

    async def create_thread(
        self, thread_id: str, metadata: dict[str, Any], *, last_run: str | None = None
    ) -> ThreadRecord | None:
        """Create the thread's record (noting ``last_run`` as its latest run);
        ``None`` when it exists already. One round trip: the record and the
        thread index are written side by side (a reader of the index skips an id
        whose record it cannot find)."""
        now = now_ms()
        text = dumps(metadata)
        created, _ = await asyncio.gather(
            self._create(
                keys=[self._thread_key(thread_id)],
                args=[now, thread_id, text, last_run or ""],
            ),
            self.client.zadd(self._threads, {thread_id: now}, nx=True),
        )
        if not created:
            return None
        return ThreadRecord(thread_id, now, now, metadata, last_run, text)

    async def thread(self, thread_id: str) -> ThreadRecord | None:
        """The thread's record, or ``None``."""
        raw = await self.client.hgetall(self._thread_key(thread_id))
        return self._thread_from(thread_id, raw)

    def _thread_from(self, thread_id: str, raw: Any) -> ThreadRecord | None:
        if not raw or "created" not in raw:
            return None
        try:
            created = int(raw["created"])
            updated = int(raw.get("updated") or created)
        except ValueError:
            created = updated = 0
        return ThreadRecord(
            thread_id,
            created,
            updated,
            _json(raw.get("metadata"), {}),
            raw.get("last_run") or None,
            raw.get("metadata") or "",
        )

    async def threads(self, thread_ids: list[str]) -> list[ThreadRecord]:
        """The records of ``thread_ids`` that exist, in that order (one pipeline)."""
        keys = [self._thread_key(t) for t in thread_ids]
        raws = await read_hashes(self.client, keys)
        found = (self._thread_from(t, r) for t, r in zip(thread_ids, raws, strict=True))
        return [record for record in found if record is not None]

    async def thread_ids(self, *, newest_first: bool = True) -> list[str]:
        """Every thread id the API knows, by creation time."""
        ids = await self.client.zrange(self._threads, 0, -1, desc=newest_first)
        return [str(i) for i in ids]

    async def update_thread(
        self,
        thread_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        last_run: str | None = None,
        known: ThreadRecord | None = None,
    ) -> bool:
        """Merge ``metadata`` into the thread's, note ``last_run`` as its latest run,
        touch it (a TTL starts again). ``known``: the record as the caller read it,
        so the merge needs no read (one round trip; the metadata changed meanwhile
        costs one more). ``False`` when there is no such thread (nothing is
        created).

        >>> await store.update_thread("t-1", metadata={"graph_id": "chat"})
        True
        """
        done = await self._touch_thread(thread_id, metadata, last_run, known)
        return done is not None

    async def note_run(
        self,
        thread: ThreadRecord,
        run_id: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> RunNote | None:
        """:meth:`update_thread` of ``thread`` (as the caller read it) noting
        ``run_id`` as its latest run, returning what it replaced (for
        :meth:`take_back`); ``None`` when the thread is gone.

        >>> note = await store.note_run(thread, "run-2", metadata={"graph_id": "g"})
        >>> note.replaced
        'run-1'
        """
        replaced = await self._touch_thread(thread.thread_id, metadata, run_id, thread)
        if replaced is None:
            return None
        return RunNote(thread.thread_id, run_id, replaced=replaced or None)

    async def _touch_thread(
        self,
        thread_id: str,
        metadata: dict[str, Any] | None,
        last_run: str | None,
        known: ThreadRecord | None,
    ) -> str | None:
        """Run the touch script: the latest run it replaced (``""``: none), or
        ``None`` when there is no such thread."""
        key = self._thread_key(thread_id)
        current = None if known is None else known.metadata_json
        for _ in range(_MERGE_TRIES):
            merged = ""
            if metadata is not None:
                if current is None:
                    current = await self.client.hget(key, "metadata") or ""
                merged = dumps({**_json(current, {}), **metadata})
            reply = await self._touch(
                keys=[key], args=[now_ms(), last_run or "", merged, current or ""]
            )
            if not isinstance(reply, list):
                return None
            if reply[0] == "done":
                return str(reply[1])
            current = str(reply[1])
        raise RuntimeError(  # pragma: no cover - needs 16 writers racing one thread
            f"thread {thread_id}'s metadata kept changing during an update"
        )

    async def take_back(self, note: RunNote) -> bool:
        """Undo ``note`` (its run's enqueue failed): the thread names the run it
        replaced again, or, made by the note, is deleted; only while its latest run
        is still the noted one. Whether it was taken back. (Metadata the note
        merged stays.)

        >>> await store.take_back(note)
        True
        """
        taken = await self._take_back(
            keys=[self._thread_key(note.thread_id)],
            args=[note.run_id, note.replaced or "", "1" if note.created else ""],
        )
        if taken and note.created:
            await self.client.zrem(self._threads, note.thread_id)
        return bool(taken)

    async def expire_thread(self, thread_id: str, seconds: float) -> None:
        """Let the thread's record expire ``seconds`` from now (its index entry is
        skipped once the record is gone)."""
        key, ttl_ms = self._thread_key(thread_id), int(seconds * 1000)
        await self.client.hset(key, "ttl_ms", ttl_ms)
        await self.client.pexpire(key, ttl_ms)

    async def delete_thread(self, thread_id: str) -> bool:
        """Delete the thread's record; whether it existed."""
        removed = await self.client.delete(self._thread_key(thread_id))
        await self.client.zrem(self._threads, thread_id)
        return bool(removed)

    # --- assistants -----------------------------------------------------------------

    async def put_assistant(self, record: AssistantRecord) -> None:
        """Store ``record`` as the assistant's latest version."""
        key = self._assistant_key(record.assistant_id)
        text = record.to_json()
        # the version keys share a slot; the index is elsewhere: no MULTI
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping={"latest": text})
        pipe.rpush(f"{key}:versions", text)
        pipe.zadd(self._assistants, {record.assistant_id: record.created_ms}, nx=True)
        await pipe.execute()

    async def set_latest_assistant(self, record: AssistantRecord) -> None:
        """Make an existing version the latest one (no new version)."""
        await self.client.hset(
            self._assistant_key(record.assistant_id), "latest", record.to_json()
        )

    async def assistant(self, assistant_id: str) -> AssistantRecord | None:
        """The assistant's latest version, or ``None``."""
        text = await self.client.hget(self._assistant_key(assistant_id), "latest")
        return AssistantRecord.from_json(text)

    async def assistant_versions(self, assistant_id: str) -> list[AssistantRecord]:
        """Every version of the assistant, newest first."""
        texts = await self.client.lrange(
            f"{self._assistant_key(assistant_id)}:versions", 0, -1
        )
        found = (AssistantRecord.from_json(t) for t in reversed(texts))
        return [record for record in found if record is not None]

    async def assistants(self) -> list[AssistantRecord]:
        """Every stored assistant's latest version, oldest first."""
        ids = [str(i) for i in await self.client.zrange(self._assistants, 0, -1)]
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for assistant_id in ids:
            pipe.hget(self._assistant_key(assistant_id), "latest")
        found = (AssistantRecord.from_json(t) for t in await pipe.execute())
        return [record for record in found if record is not None]

    async def delete_assistant(self, assistant_id: str) -> bool:
        """Delete every version of the assistant; whether it existed."""
        key = self._assistant_key(assistant_id)
        removed = await self.client.delete(key, f"{key}:versions")
        await self.client.zrem(self._assistants, assistant_id)
        return bool(removed)
