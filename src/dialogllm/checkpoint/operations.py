"""The checkpointer's operations, written once for both savers (sans I/O).

Each operation is a generator that yields Redis requests (:class:`Eval`,
:class:`Command`, :class:`Scan`, :class:`Batch`, from :mod:`dialogllm.redis.requests`)
and receives their replies; the async saver drives it with ``await``, the sync saver
with blocking calls. So ``get_tuple``,
``put`` and the rest behave identically in both, and the number of round trips of an
operation is the number of requests it yields (one for ``get_tuple``, ``put``,
``put_writes`` and the delta history).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from dialogllm.checkpoint import keys, lua
from dialogllm.checkpoint.base import (
    MAX_HISTORY_DEPTH,
    RecordCodec,
    SaverOptions,
    ThreadRef,
    delta_channels,
    fence_args,
    metadata_matches,
    split_member,
    thread_keys,
    to_str,
)
from dialogllm.errors import CorruptCheckpointError, InvalidCheckpointConfigError
from dialogllm.redis.requests import Batch, Command, Eval, Scan

__all__ = ["Batch", "Command", "Emit", "Eval", "Operations", "Request", "Scan"]


@dataclass(frozen=True, slots=True)
class Page:
    """Internal: one page of a listing source, before filtering."""

    items: Sequence[CheckpointTuple]


@dataclass(frozen=True, slots=True)
class Emit:
    """Results to hand to the caller now: ``list`` streams pages this way."""

    items: Sequence[CheckpointTuple]


Request: TypeAlias = Eval | Command | Scan | Batch | Emit | Page
Op: TypeAlias = Generator[Request, Any, Any]

_RUN_CACHE_SIZE = 10_000


class Operations:
    """Every saver operation as a request generator; shared state is the codec."""

    def __init__(self, codec: RecordCodec, options: SaverOptions) -> None:
        self.codec = codec
        self.options = options
        self._registered_runs: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _keys(self, thread_id: str) -> list[str]:
        return thread_keys(self.options.key_prefix, thread_id)

    def _refresh_arg(self) -> str:
        return self.options.ttl_ms_arg if self.options.refresh_on_read else ""

    def _at_checkpoint(self, script: lua.Script, ref: ThreadRef, *args: str) -> Eval:
        """A call of a script whose first arguments name a checkpoint: the namespace
        and the id (``""``: the latest), then ``args``."""
        target: list[bytes | str] = [keys.ns_part(ref.checkpoint_ns)]
        target += [ref.checkpoint_id or "", *args]
        return Eval(script, self._keys(ref.thread_id), target)

    # --- reads ------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> Op:
        """One round trip: the checkpoint (latest or by id), blobs and writes."""
        ref = ThreadRef.from_config(config)
        reply = yield self._at_checkpoint(lua.GET, ref, self._refresh_arg())
        if not reply:
            return None
        return self.codec.decode_bundle(ref, reply)

    def list_page(self, ref: ThreadRef, before_id: str | None, page_size: int) -> Op:
        """One page of one namespace, newest first: (tuples, last id, exhausted)."""
        reply = yield Eval(
            lua.LIST,
            self._keys(ref.thread_id),
            [
                keys.ns_part(ref.checkpoint_ns),
                before_id or "",
                str(page_size),
                self._refresh_arg(),
            ],
        )
        tuples = [self.codec.decode_bundle(ref, b) for b in reply]
        last = tuples[-1].checkpoint["id"] if tuples else None
        return tuples, last, len(reply) < page_size

    def namespaces_of(self, thread_id: str) -> Op:
        """Every (namespace, checkpoint id) of a thread, newest id first."""
        members = yield Command(
            (
                "ZRANGE",
                keys.thread_key(self.options.key_prefix, thread_id, "idx"),
                0,
                -1,
            )
        )
        pairs = [split_member(m) for m in members]
        pairs.sort(key=lambda p: p[1], reverse=True)
        return pairs

    def get_many(self, thread_id: str, pairs: Sequence[tuple[str, str]]) -> Op:
        """Checkpoints of several namespaces in one round trip."""
        if not pairs:
            return []
        thread_keys_ = self._keys(thread_id)
        replies = yield Batch(
            [
                Eval(lua.GET, thread_keys_, [keys.ns_part(ns), cid, ""])
                for ns, cid in pairs
            ]
        )
        out: list[CheckpointTuple] = []
        for (ns, cid), reply in zip(pairs, replies, strict=True):
            if reply:
                out.append(
                    self.codec.decode_bundle(ThreadRef(thread_id, ns, cid), reply)
                )
        return out

    def scan_threads(self) -> Op:
        """Thread ids of every thread under the key prefix (SCAN; admin paths)."""
        pattern = f"{keys.glob_escape(self.options.key_prefix)}:t:*:meta"
        meta_keys = yield Scan(pattern)
        if not meta_keys:
            return []
        ids = yield Batch([Command(("HGET", k, "tid")) for k in meta_keys])
        return sorted({to_str(i) for i in ids if i})

    def delta_history(self, config: RunnableConfig, channels: Sequence[str]) -> Op:
        """One round trip: the parent chain's writes and seeds of ``channels``."""
        if not channels:
            return {}
        ref = ThreadRef.from_config(config)
        args = (str(MAX_HISTORY_DEPTH), "0", *channels)
        reply = yield self._at_checkpoint(lua.HISTORY, ref, *args)
        result: dict[str, DeltaChannelHistory] = self.codec.decode_history(
            ref, reply or [], channels
        )
        return result

    # --- writes -----------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Op:
        """One round trip: checkpoint, skeleton, new blobs, indexes, TTL (fenced)."""
        ref, run_id, args = self.codec.put_args(
            config, checkpoint, metadata, new_versions
        )
        script_args = [
            *fence_args(self.options, config),
            self.options.ttl_ms_arg,
            *args,
        ]
        put = Eval(lua.PUT, self._keys(ref.thread_id), script_args)
        extra = self._run_registration(ref.thread_id, run_id)
        if extra:
            replies = yield Batch([put, *extra])
            if isinstance(replies[0], Exception):
                raise replies[0]
        else:
            yield put
        return {
            "configurable": {
                "thread_id": ref.thread_id,
                "checkpoint_ns": ref.checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def _run_registration(self, thread_id: str, run_id: str | None) -> list[Command]:
        if not run_id:
            return []
        cache_key = (thread_id, run_id)
        ttl = self.options.ttl_seconds
        if cache_key in self._registered_runs and ttl is None:
            return []
        self._registered_runs[cache_key] = None
        if len(self._registered_runs) > _RUN_CACHE_SIZE:
            self._registered_runs.popitem(last=False)
        run_key = keys.run_threads(self.options.key_prefix, run_id)
        cmds = [Command(("SADD", run_key, thread_id))]
        if ttl is not None:
            cmds.append(Command(("PEXPIRE", run_key, int(ttl * 1000) * 2)))
        return cmds

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Op:
        """One round trip: special channels overwrite, others first-writer-wins."""
        ref = ThreadRef.from_config(config)
        if not writes:
            return None
        args = self.codec.put_writes_args(ref, writes, task_id, task_path)
        yield Eval(
            lua.PUT_WRITES,
            self._keys(ref.thread_id),
            [
                *fence_args(self.options, config),
                self.options.ttl_ms_arg,
                ref.thread_id,
                *args,
            ],
        )
        return None

    # --- thread administration --------------------------------------------------------

    def delete_thread(self, thread_id: str) -> Op:
        """Delete every key of the thread (all namespaces) and its run-index entries."""
        thread_keys_ = self._keys(thread_id)
        runs_key = thread_keys_[4]
        run_members = yield Command(("ZRANGE", runs_key, 0, -1))
        run_ids = {_lp_head(m) for m in run_members}
        requests: list[Eval | Command] = [Command(("DEL", *thread_keys_[:6]))]
        yield Batch(requests)
        if run_ids:
            yield Batch(
                [
                    Command(
                        (
                            "SREM",
                            keys.run_threads(self.options.key_prefix, r),
                            thread_id,
                        )
                    )
                    for r in sorted(run_ids)
                ]
            )
        return None

    def _delete_members(self, thread_id: str, pairs: Sequence[tuple[str, str]]) -> Op:
        args: list[bytes | str] = []
        for ns, cid in pairs:
            args.append(keys.checkpoint_member(ns, cid))
            args.append(keys.ns_part(ns))
        yield Eval(lua.DELETE_MEMBERS, self._keys(thread_id), args)
        return None

    def _needed_ancestors(
        self, thread_id: str, ns: str, checkpoint_id: str, metadata: Mapping[str, Any]
    ) -> Op:
        """Ancestors a checkpoint's delta channels need to be rebuilt."""
        channels = delta_channels(metadata)
        if not channels:
            return set()
        reply = yield Eval(
            lua.HISTORY,
            self._keys(thread_id),
            [keys.ns_part(ns), checkpoint_id, str(MAX_HISTORY_DEPTH), "1", *channels],
        )
        return {split_member(entry[0]) for entry in (reply or [])[1:]}

    def _records_of(self, thread_id: str, pairs: Sequence[tuple[str, str]]) -> Op:
        """The stored records of the (namespace, id) ``pairs`` that exist."""
        if not pairs:
            return {}
        cp_key = keys.thread_key(self.options.key_prefix, thread_id, "cp")
        records = yield Command(
            ("HMGET", cp_key, *(keys.checkpoint_member(ns, cid) for ns, cid in pairs))
        )
        return {pair: rec for pair, rec in zip(pairs, records, strict=True) if rec}

    def _metadata_of(self, thread_id: str, pairs: Sequence[tuple[str, str]]) -> Op:
        records = yield from self._records_of(thread_id, pairs)
        decode, where = self.codec.decode_metadata, f"thread {thread_id!r}"
        return {pair: decode(rec, where) for pair, rec in records.items()}

    def _parents_of(self, thread_id: str, pairs: Sequence[tuple[str, str]]) -> Op:
        records = yield from self._records_of(thread_id, pairs)
        return {pair: _lp_head(_lp_head_bytes(rec)) for pair, rec in records.items()}

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Op:
        """Keep the latest checkpoint per namespace (and what its delta channels
        need), or delete everything."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidCheckpointConfigError(
                f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'"
            )
        for thread_id in thread_ids:
            if strategy == "delete":
                yield from self.delete_thread(thread_id)
                continue
            pairs = yield from self.namespaces_of(thread_id)
            latest: dict[str, str] = {}
            for ns, cid in pairs:
                latest.setdefault(ns, cid)
            keep = {(ns, cid) for ns, cid in latest.items()}
            metas = yield from self._metadata_of(thread_id, sorted(keep))
            for (ns, cid), md in metas.items():
                keep |= yield from self._needed_ancestors(thread_id, ns, cid, md)
            doomed = [p for p in pairs if p not in keep]
            if doomed:
                yield from self._delete_members(thread_id, doomed)
        return None

    def delete_for_runs(self, run_ids: Sequence[str]) -> Op:
        """Delete the checkpoints (and their writes) the runs wrote, keeping any that a
        surviving checkpoint's delta channels still need."""
        if not run_ids:
            return None
        run_ids = [str(r) for r in run_ids]
        prefix = self.options.key_prefix
        run_keys = [keys.run_threads(prefix, r) for r in run_ids]
        thread_sets = yield Batch([Command(("SMEMBERS", k)) for k in run_keys])
        threads = sorted({to_str(t) for members in thread_sets for t in members})
        for thread_id in threads:
            runs_key = keys.thread_key(prefix, thread_id, "runs")
            ranges = yield Batch(
                [
                    Command(
                        (
                            "ZRANGEBYLEX",
                            runs_key,
                            b"[" + keys.lp(r),
                            b"(" + keys.lp(r) + b"\xff",
                        )
                    )
                    for r in run_ids
                ]
            )
            doomed: set[tuple[str, str]] = set()
            for run_id, members in zip(run_ids, ranges, strict=True):
                head = len(keys.lp(run_id))
                doomed |= {split_member(m[head:]) for m in members}
            if not doomed:
                continue
            all_pairs = yield from self.namespaces_of(thread_id)
            survivors = [p for p in all_pairs if p not in doomed]
            parents = yield from self._parents_of(thread_id, survivors)
            boundary = [
                p for p in survivors if parents.get(p) and (p[0], parents[p]) in doomed
            ]
            metas = yield from self._metadata_of(thread_id, boundary)
            for (ns, cid), md in metas.items():
                doomed -= yield from self._needed_ancestors(thread_id, ns, cid, md)
            if doomed:
                yield from self._delete_members(thread_id, sorted(doomed))
        yield Batch([Command(("DEL", k)) for k in run_keys])  # one slot each
        return None

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> Op:
        """Copy every checkpoint, blob and write (all namespaces) to another thread.

        Two round trips (read the source, write the target in one MULTI): the two
        threads may live in different Cluster slots.
        """
        prefix = self.options.key_prefix
        src = {
            s: keys.thread_key(prefix, source_thread_id, s)
            for s in ("idx", "cp", "blobs", "w", "runs")
        }
        dst = {s: keys.thread_key(prefix, target_thread_id, s) for s in src}
        reads: list[Eval | Command] = [
            Command(("ZRANGE", src["idx"], 0, -1)),
            Command(("HGETALL", src["cp"])),
            Command(("HGETALL", src["blobs"])),
            Command(("HGETALL", src["w"])),
            Command(("ZRANGE", src["runs"], 0, -1)),
        ]
        idx, cp, blobs, w, runs = yield Batch(reads)
        if not idx and not w:
            return None
        writes: list[Eval | Command] = []
        for name, mapping in (("cp", cp), ("blobs", blobs), ("w", w)):
            if mapping:
                flat = [x for kv in mapping.items() for x in kv]
                writes.append(Command(("HSET", dst[name], *flat)))
        for name, members in (("idx", idx), ("runs", runs)):
            if members:
                writes.append(
                    Command(("ZADD", dst[name], *(x for m in members for x in (0, m))))
                )
        meta = keys.thread_key(prefix, target_thread_id, "meta")
        writes.append(Command(("HSETNX", meta, "tid", target_thread_id)))
        yield Batch(writes, transaction=True)
        run_ids = sorted({_lp_head(m) for m in runs})
        if run_ids:
            yield Batch(
                [
                    Command(("SADD", keys.run_threads(prefix, r), target_thread_id))
                    for r in run_ids
                ]
            )
        return None

    def set_thread_ttl(self, thread_id: str, ttl_seconds: float | None) -> Op:
        """Per-thread TTL in seconds; ``None``: the saver's; ``-1``: pinned."""
        prefix = self.options.key_prefix
        data_keys = [
            keys.thread_key(prefix, thread_id, s) for s in keys.THREAD_KEY_SUFFIXES
        ]
        meta = keys.thread_key(prefix, thread_id, "meta")
        cmds: list[Eval | Command] = []
        if ttl_seconds is None:
            cmds.append(Command(("HDEL", meta, "ttl_ms")))
            effective = self.options.ttl_seconds
        else:
            cmds.append(
                Command(
                    (
                        "HSET",
                        meta,
                        "ttl_ms",
                        "-1" if ttl_seconds < 0 else str(int(ttl_seconds * 1000)),
                    )
                )
            )
            cmds.append(Command(("HSETNX", meta, "tid", thread_id)))
            effective = None if ttl_seconds < 0 else ttl_seconds
        for k in data_keys:
            if effective is None:
                cmds.append(Command(("PERSIST", k)))
            else:
                cmds.append(Command(("PEXPIRE", k, int(effective * 1000))))
        yield Batch(cmds, transaction=True)
        return None

    def list_checkpoints(
        self,
        config: RunnableConfig | None,
        *,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Op:
        """Everything ``list`` returns, newest first, streamed as :class:`Emit` pages.

        One namespace: pages of the sorted index (O(log n + limit) each). No
        ``checkpoint_ns`` in the config: every namespace of the thread. ``config``
        ``None``: every thread under the prefix (a SCAN; an admin path).
        """
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        if config is None:
            thread_ids = yield from self.scan_threads()
            refs = [ThreadRef(t, "", None) for t in thread_ids]
            all_ns = True
        else:
            refs = [ThreadRef.from_config(config)]
            all_ns = (config.get("configurable") or {}).get("checkpoint_ns") is None
        remaining = limit
        page_size = 100 if (filter or limit is None) else max(1, min(limit, 100))
        for ref in refs:
            if remaining is not None and remaining <= 0:
                break
            source: Op
            if all_ns:
                source = self._all_namespace_pages(ref.thread_id, before_id)
            elif ref.checkpoint_id:
                source = self._single_page(ref, before_id)
            else:
                source = self._index_pages(ref, before_id, page_size)
            remaining = yield from self._emit_pages(source, filter, remaining)
        return None

    def _emit_pages(
        self, source: Op, filter: Mapping[str, Any] | None, remaining: int | None
    ) -> Generator[Request, Any, int | None]:
        """Pass ``source``'s requests through; filter, cap and emit its pages."""
        try:
            request = next(source)
            while True:
                if isinstance(request, Page):
                    batch = [
                        t
                        for t in request.items
                        if not filter or metadata_matches(t.metadata, filter)
                    ]
                    if remaining is not None:
                        batch = batch[:remaining]
                        remaining -= len(batch)
                    if batch:
                        yield Emit(batch)
                    if remaining == 0:
                        source.close()
                        return 0
                    request = source.send(None)
                else:
                    reply = yield request
                    request = source.send(reply)
        except StopIteration:
            return remaining

    def _index_pages(self, ref: ThreadRef, before_id: str | None, size: int) -> Op:
        cursor = before_id
        while True:
            tuples, last, done = yield from self.list_page(ref, cursor, size)
            yield Page(tuples)
            if done or last is None:
                return None
            cursor = last

    def _single_page(self, ref: ThreadRef, before_id: str | None) -> Op:
        tup = yield from self.get_tuple(
            {
                "configurable": {
                    "thread_id": ref.thread_id,
                    "checkpoint_ns": ref.checkpoint_ns,
                    "checkpoint_id": ref.checkpoint_id,
                }
            }
        )
        if tup is not None and (not before_id or tup.checkpoint["id"] < before_id):
            yield Page([tup])
        return None

    def _all_namespace_pages(self, thread_id: str, before_id: str | None) -> Op:
        pairs = yield from self.namespaces_of(thread_id)
        if before_id:
            pairs = [p for p in pairs if p[1] < before_id]
        for start in range(0, len(pairs), 100):
            tuples = yield from self.get_many(thread_id, pairs[start : start + 100])
            yield Page(tuples)
        return None


def _lp_head_bytes(data: bytes) -> bytes:
    """First length-prefixed item of a record (:class:`CorruptCheckpointError` for
    data no saver wrote)."""
    try:
        colon = data.index(b":")
        length = int(data[:colon])
    except ValueError as exc:
        raise CorruptCheckpointError(f"malformed stored item {data[:60]!r}") from exc
    return data[colon + 1 : colon + 1 + length]


def _lp_head(data: bytes) -> str:
    """First length-prefixed item of a record, decoded."""
    head = _lp_head_bytes(data)
    try:
        return head.decode()
    except UnicodeDecodeError as exc:
        raise CorruptCheckpointError(f"malformed stored item {data[:60]!r}") from exc
