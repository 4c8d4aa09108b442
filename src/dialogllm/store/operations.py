"""The store's operations, written once for both stores (sans I/O).

:meth:`StoreOperations.batch` turns a list of LangGraph store ops (``GetOp``,
``PutOp``, ``SearchOp``, ``ListNamespacesOp``) into Redis requests (the
checkpointer's :class:`~dialogllm.checkpoint.operations.Eval`, ``Command`` and
``Batch``) and :class:`Embed` requests; the async store drives it with ``await``,
the sync store with blocking calls, so both behave the same.

Order within one batch is ``InMemoryStore``'s: every read sees the store as it was
before the batch's writes, and of several puts to one item the last wins. Round
trips: all gets of a batch together are one; a put batch is one (plus the
embeddings call); a search of one root is two (namespaces, items), plus a TTL
refresh only when a returned item has a TTL; a search of the whole store one more.
With the native vector index a query is two too (KNN, the hits' records), more
only when a filter or expiry leaves the page short.

The rule a reader must not break: a search reads at most ``max_search_candidates``
items; beyond that it refuses (:class:`~dialogllm.errors.StoreSearchTooLargeError`)
rather than reading an unbounded namespace into memory.
"""

from __future__ import annotations

import heapq
import math
import time
from array import array
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from dialogllm.errors import (
    ConfigError,
    SemanticSearchNotConfiguredError,
    StoreSearchTooLargeError,
    StoreValueError,
)
from dialogllm.logging import get_logger
from dialogllm.redis.requests import Batch, Command, Eval
from dialogllm.store import keys, lua
from dialogllm.store.records import (
    Record,
    check_filter,
    cosine_scores,
    decode_record,
    decode_vectors,
    encode_value,
    encode_vectors,
    matches_condition,
    matches_filter,
    record_expired,
    record_seq,
    unit_vector,
)
from dialogllm.store.vector_index import (
    IndexState,
    VectorHit,
    VectorIndex,
    VectorIndexMode,
    best_per_item,
    parse_hits,
)

__all__ = ["Embed", "StoreOperations", "StoreRequest", "StoreSettings"]

_log = get_logger("dialogllm.store")


@dataclass(frozen=True, slots=True)
class Embed:
    """Embed ``texts`` with the store's embeddings (``query``: as search queries);
    the reply is one vector per text."""

    texts: Sequence[str]
    query: bool = False


StoreRequest: TypeAlias = Eval | Command | Batch | Embed
#: A search candidate: namespace, key, raw record, the record once decoded, vectors.
Candidate: TypeAlias = tuple[
    tuple[str, ...], bytes, bytes, "Record | None", "bytes | None"
]
StoreOp: TypeAlias = Generator[StoreRequest, Any, Any]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The store's options that operations read (see ``AsyncRedisStore``)."""

    key_prefix: str
    dims: int | None = None
    fields: tuple[tuple[str, list[str] | str], ...] = (("$", "$"),)
    max_search_candidates: int = 100_000
    max_payload_bytes: int = 64 * 1024 * 1024
    sweep_batch: int = 500
    vector_index: VectorIndexMode = "auto"
    cluster: bool = False

    @property
    def semantic(self) -> bool:
        """Whether an embeddings index is configured."""
        return self.dims is not None


def tokenized_fields(
    fields: Sequence[str] | None,
) -> tuple[tuple[str, list[str] | str], ...]:
    """``IndexConfig.fields`` parsed once (``"$"``: the whole value)."""
    return tuple(
        (path, path if path == "$" else tokenize_path(path))
        for path in (fields or ["$"])
    )


_last_us = 0


def now_us() -> int:
    """Microseconds since the epoch, strictly increasing within this process (the
    order of items and namespaces created by one writer is the order of its puts)."""
    global _last_us
    current = time.time_ns() // 1000
    _last_us = max(current, _last_us + 1)
    return _last_us


class StoreOperations:
    """Every store operation as a request generator."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.prefix = settings.key_prefix
        #: the native vector index's requests, where one may be used
        self.index: VectorIndex | None = None
        self.index_state = IndexState.ABSENT
        mode = settings.vector_index
        if settings.dims is not None and mode != "exact" and not settings.cluster:
            algorithm: Literal["flat", "hnsw"] = "hnsw" if mode == "hnsw" else "flat"
            self.index = VectorIndex(self.prefix, settings.dims, algorithm)
            self.index_state = IndexState.UNKNOWN

    @property
    def writes_vector_hashes(self) -> bool:
        """Whether puts and deletes keep the native index's vector hashes."""
        return self.index_state in (IndexState.BUILDING, IndexState.READY)

    def _vector_hashes(
        self, namespace: tuple[str, ...], key: str
    ) -> tuple[list[str], list[bytes | str]]:
        """The KEYS and ARGV a put, delete or sweep of one item adds to keep its
        vector hashes (the hashes' base; bytes per vector); none while the native
        index is not in use."""
        if self.index is None or not self.writes_vector_hashes:
            return [], []
        return [self.index.doc_base(namespace, key)], [self.index.bytes_per_vector]

    # --- keys -------------------------------------------------------------------------

    def _item_keys(self, namespace: tuple[str, ...]) -> list[str]:
        """items, vecs, ns, count, exp (the DELETE/SWEEP order; PUT adds seq)."""
        root = namespace[0]
        return [
            keys.namespace_key(self.prefix, namespace, "i"),
            keys.namespace_key(self.prefix, namespace, "v"),
            keys.root_key(self.prefix, root, "ns"),
            keys.root_key(self.prefix, root, "count"),
            keys.root_key(self.prefix, root, "exp"),
        ]

    # --- the batch --------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> StoreOp:
        """Results of ``ops``, in their order (``InMemoryStore``'s semantics)."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
            if isinstance(op, SearchOp):
                check_filter(op.filter)
            if isinstance(op, SearchOp) and op.query and not self.settings.semantic:
                raise SemanticSearchNotConfiguredError(
                    f"search(query={op.query!r}) needs a store built with "
                    "index={'dims': ..., 'embed': ...}; without one, search with "
                    "filter= only"
                )
        if any(
            isinstance(op, PutOp) or (isinstance(op, SearchOp) and op.query)
            for op in ops
        ):
            yield from self.resolve_index()
        results: list[Result] = [None] * len(ops)
        now_ms = time.time_ns() // 1_000_000
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            replies = yield Batch([self._get(op, now_ms) for _, op in gets])
            for (i, op), raw in zip(gets, replies, strict=True):
                results[i] = self._item(op.namespace, op.key, raw)
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = yield from self.search(op, now_ms)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self.list_namespaces(op)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, PutOp):
                puts.pop((op.namespace, op.key), None)
                puts[(op.namespace, op.key)] = op
        if puts:
            yield from self.put(list(puts.values()))
        return results

    # --- get --------------------------------------------------------------------------

    def _get(self, op: GetOp, now_ms: int) -> Eval:
        return Eval(
            lua.GET,
            [
                keys.namespace_key(self.prefix, op.namespace, "i"),
                keys.root_key(self.prefix, op.namespace[0], "exp"),
            ],
            [
                op.key,
                keys.exp_member(op.namespace, op.key),
                str(now_ms),
                "1" if op.refresh_ttl else "",
            ],
        )

    @staticmethod
    def _item(namespace: tuple[str, ...], key: str, raw: bytes | None) -> Item | None:
        if not raw:
            return None
        record = decode_record(key, raw)
        return Item(
            value=record.value,
            key=key,
            namespace=namespace,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )

    # --- put --------------------------------------------------------------------------

    def put(self, ops: Sequence[PutOp]) -> StoreOp:
        """Write (or delete, ``value=None``) items: one round trip, after embedding."""
        for op in ops:
            if op.value is not None and not op.namespace:
                raise StoreValueError("a namespace needs at least one label")
            if op.value is not None and op.namespace[0] == "langgraph":
                raise StoreValueError('the root label "langgraph" is reserved')
        encoded = {
            id(op): encode_value(op.value, self.settings.max_payload_bytes)
            for op in ops
            if op.value is not None
        }
        vectors = yield from self._embed_puts(ops)
        at_us, at_ms = now_us(), time.time_ns() // 1_000_000
        requests: list[Eval | Command] = []
        for root in sorted({op.namespace[0] for op in ops if op.value is not None}):
            requests.append(
                Command(("ZADD", keys.roots_key(self.prefix), "NX", at_us, root))
            )
        for op in ops:
            if not op.namespace:
                continue
            item_keys = self._item_keys(op.namespace)
            ns = keys.join_namespace(op.namespace)
            member = keys.exp_member(op.namespace, op.key)
            hash_keys, hash_args = self._vector_hashes(op.namespace, op.key)
            if op.value is None:
                args: list[bytes | str] = [op.key, ns, member, *hash_args]
                requests.append(Eval(lua.DELETE, [*item_keys, *hash_keys], args))
                continue
            ttl_ms = int(op.ttl * 60_000) if op.ttl else 0
            item_keys.append(keys.root_key(self.prefix, op.namespace[0], "seq"))
            args = [
                op.key,
                ns,
                member,
                str(at_us),
                str(at_ms),
                str(max(ttl_ms, 0)),
                encoded[id(op)],
                vectors.get(id(op), b""),
                *hash_args,
            ]
            if hash_keys:
                args.append(keys.vector_tags(op.namespace))
            requests.append(Eval(lua.PUT, [*item_keys, *hash_keys], args))
        if requests:
            yield Batch(requests)

    def _embed_puts(self, ops: Sequence[PutOp]) -> StoreOp:
        """The vectors of each put that is indexed: ``id(op) -> encoded``."""
        dims = self.settings.dims
        if dims is None:
            return {}
        wanted: list[tuple[int, str, str]] = []  # (op, path label, text)
        for op in ops:
            if op.value is None or op.index is False:
                continue
            paths = (
                self.settings.fields if op.index is None else tokenized_fields(op.index)
            )
            for path, tokens in paths:
                texts = get_text_at_path(op.value, tokens)
                if len(texts) > 1:
                    wanted += [(id(op), f"{path}.{i}", t) for i, t in enumerate(texts)]
                elif texts:
                    wanted.append((id(op), path, texts[0]))
        if not wanted:
            return {}
        unique = list(dict.fromkeys(text for _, _, text in wanted))
        embedded = yield Embed(unique)
        if len(embedded) != len(unique):
            raise StoreValueError(
                f"the embeddings function returned {len(embedded)} vectors for "
                f"{len(unique)} texts"
            )
        by_text = dict(zip(unique, embedded, strict=True))
        per_op: dict[int, list[tuple[str, Sequence[float]]]] = {}
        for op_id, path, text in wanted:
            per_op.setdefault(op_id, []).append((path, by_text[text]))
        return {i: encode_vectors(v, dims) for i, v in per_op.items()}

    # --- the native vector index ------------------------------------------------------

    def resolve_index(self) -> StoreOp:
        """Learn (once; while ``BUILDING``, on each call) whether the native index is
        there, creating and filling it when this store is the first to ask."""
        index = self.index
        if index is None or self.index_state in (IndexState.ABSENT, IndexState.READY):
            return self.index_state
        reply = yield index.state_request()
        answer = _text(reply[0] if isinstance(reply, list) else reply)
        explicit = self.settings.vector_index != "auto"
        if answer == "ready":
            self.index_state = IndexState.READY
        elif answer == "building":
            self._note_building()
        elif answer == "build":
            self.index_state = IndexState.BUILDING
            yield from self._fill_index(index)
            yield index.ready_request()
            self.index_state = IndexState.READY
        elif explicit:
            why = (
                "the server has no RediSearch (FT.* commands)"
                if answer == "absent"
                else f"FT.CREATE failed: {_text(reply[1])}"
            )
            raise ConfigError(
                f'vector_index="{self.settings.vector_index}" needs RediSearch '
                f'(Redis Stack or Redis 8): {why}; use "auto" or "exact"'
            )
        else:
            if answer != "absent":  # RediSearch is there but refused the index
                _log.warning(
                    "store vector index unavailable, searching exactly",
                    index=index.name,
                    reason=_text(reply[1]),
                )
            self.index_state = IndexState.ABSENT
        return self.index_state

    def _note_building(self) -> None:
        # another call of this store may have seen the index ready meanwhile
        if self.index_state is not IndexState.READY:
            self.index_state = IndexState.BUILDING

    def _fill_index(self, index: VectorIndex) -> StoreOp:
        """Write the vector hashes of every item that has vectors (item by item, from
        its vecs field as it is at that moment, so a concurrent put is not undone)."""
        roots = yield from self._roots(None)
        found = yield from self._namespaces(roots, counts=False)
        size = index.bytes_per_vector
        for ns, _, _ in found:
            vecs = keys.namespace_key(self.prefix, ns, "v")
            names = yield Command(("HKEYS", vecs))
            joined, tags = keys.join_namespace(ns), keys.vector_tags(ns)
            batch = self.settings.sweep_batch
            for start in range(0, len(names), batch):
                yield Batch(
                    [
                        Eval(
                            lua.REINDEX,
                            [vecs, index.doc_base(ns, _text(name))],
                            [name, joined, tags, size],
                        )
                        for name in names[start : start + batch]
                    ]
                )

    # --- namespaces -------------------------------------------------------------------

    def _roots(self, first: str | None) -> StoreOp:
        """The root labels to look in: ``first`` alone, or every root in use."""
        if first is not None and first != "*":
            return [first]
        members = yield Command(("ZRANGE", keys.roots_key(self.prefix), 0, -1))
        return [m.decode() for m in members]

    def _namespaces(self, roots: Sequence[str], *, counts: bool) -> StoreOp:
        """``(namespace, created µs, items)`` of ``roots`` (items: -1 unless asked)."""
        if not roots:
            return []
        requests: list[Eval | Command] = []
        for root in roots:
            ns_key = keys.root_key(self.prefix, root, "ns")
            requests.append(Command(("ZRANGE", ns_key, 0, -1, "WITHSCORES")))
            if counts:
                count_key = keys.root_key(self.prefix, root, "count")
                requests.append(Command(("HGETALL", count_key)))
        replies = yield Batch(requests)
        step = 2 if counts else 1
        found: list[tuple[tuple[str, ...], float, int]] = []
        for index in range(len(roots)):
            members = replies[index * step]
            count_of: dict[bytes, bytes] = replies[index * step + 1] if counts else {}
            pairs = _pairs(members)
            for member, score in pairs:
                found.append(
                    (
                        keys.split_namespace(member),
                        score,
                        int(count_of.get(member, 0)) if counts else -1,
                    )
                )
        return found

    def list_namespaces(self, op: ListNamespacesOp) -> StoreOp:
        """Namespaces matching every condition, sorted, ``max_depth``-truncated."""
        conditions = op.match_conditions or ()
        first: str | None = None
        for condition in conditions:
            if condition.match_type == "prefix" and condition.path:
                first = condition.path[0]
        roots = yield from self._roots(first)
        found = yield from self._namespaces(roots, counts=False)
        names = [
            ns
            for ns, _, _ in found
            if all(matches_condition(c, ns) for c in conditions)
        ]
        if op.max_depth is not None:
            names = sorted({ns[: op.max_depth] for ns in names})
        else:
            names = sorted(names)
        return names[op.offset : op.offset + op.limit]

    # --- search -----------------------------------------------------------------------

    def search(self, op: SearchOp, now_ms: int) -> StoreOp:
        """Items under ``op.namespace_prefix`` passing ``op.filter``: by similarity
        to ``op.query`` (scored), else in creation order (namespaces by creation)."""
        query: array[float] | None = None
        if op.query:
            if self.index_state is IndexState.BUILDING:
                yield from self.resolve_index()
            if self.index is not None and self.index_state is IndexState.READY:
                query = yield from self._query_vector(op)
                kept = yield from self._knn(op, self.index, query, now_ms)
                if kept is not None:
                    return (yield from self._found(op, kept, now_ms))
        kept = yield from self._scan(op, query, now_ms)
        return (yield from self._found(op, kept, now_ms))

    @staticmethod
    def _query_vector(op: SearchOp) -> StoreOp:
        """The query's embedding, of unit length."""
        (vector,) = yield Embed([op.query or ""], query=True)
        return unit_vector(vector)

    def _found(
        self,
        op: SearchOp,
        kept: Sequence[tuple[tuple[str, ...], Record, float | None]],
        now_ms: int,
    ) -> StoreOp:
        """The search's items, their TTLs refreshed when asked."""
        if op.refresh_ttl:
            yield from self._refresh([(ns, r) for ns, r, _ in kept], now_ms)
        return [
            SearchItem(
                namespace=ns,
                key=record.key,
                value=record.value,
                created_at=record.created_at,
                updated_at=record.updated_at,
                score=score,
            )
            for ns, record, score in kept
        ]

    def _knn(
        self, op: SearchOp, index: VectorIndex, query: array[float], now_ms: int
    ) -> StoreOp:
        """The page of a query by the native index, nearest first: KNN of twice the
        page's end, four times more each time filters or expiry leave too few.
        ``None`` when the index ran out before the page was full: the exact scan then
        answers, adding unindexed items as ``InMemoryStore`` does."""
        prefix, want = op.namespace_prefix, max(op.offset + op.limit, 0)
        bound = self.settings.max_search_candidates
        blob = query.tobytes()
        k = min(max(2 * want, 10), bound)
        records: dict[tuple[tuple[str, ...], str], Record | None] = {}
        created: dict[tuple[str, ...], float] = {}
        while True:
            reply = yield index.knn(prefix, blob, k)
            hits = parse_hits(reply)
            items = [
                h for h in best_per_item(hits) if h.namespace[: len(prefix)] == prefix
            ]
            yield from self._read_records(items, records, created, now_ms)
            kept: list[tuple[VectorHit, Record]] = []
            for hit in items:
                record = records[(hit.namespace, hit.key)]
                if record is not None and matches_filter(record.value, op.filter):
                    kept.append((hit, record))
            if len(kept) >= want:
                break
            if len(hits) < k:
                return None
            if k >= bound:
                raise StoreSearchTooLargeError(
                    f"a search of {prefix!r} would read more than "
                    f"max_search_candidates ({bound}) vectors to fill its page; "
                    "search a narrower namespace prefix, or raise "
                    "max_search_candidates"
                )
            k = min(k * 4, bound)
        kept.sort(
            key=lambda pair: (
                -pair[0].score,
                created[pair[0].namespace],
                pair[0].namespace,
                pair[1].seq,
            )
        )
        return [
            (hit.namespace, record, hit.score)
            for hit, record in kept[op.offset : op.offset + op.limit]
        ]

    def _read_records(
        self,
        hits: Sequence[VectorHit],
        records: dict[tuple[tuple[str, ...], str], Record | None],
        created: dict[tuple[str, ...], float],
        now_ms: int,
    ) -> StoreOp:
        """Read (one round trip) the records of ``hits`` not in ``records`` yet
        (missing and expired ones become ``None``) and the creation times of their
        namespaces not in ``created`` (ties rank as the exact search ranks them)."""
        per_ns: dict[tuple[str, ...], list[str]] = {}
        for hit in hits:
            if (hit.namespace, hit.key) not in records:
                per_ns.setdefault(hit.namespace, []).append(hit.key)
        if not per_ns:
            return None
        new_ns = [ns for ns in per_ns if ns not in created]
        requests: list[Eval | Command] = [
            Command(("HMGET", keys.namespace_key(self.prefix, ns, "i"), *names))
            for ns, names in per_ns.items()
        ]
        requests += [
            Command(
                (
                    "ZSCORE",
                    keys.root_key(self.prefix, ns[0], "ns"),
                    keys.join_namespace(ns),
                )
            )
            for ns in new_ns
        ]
        replies = yield Batch(requests)
        records_of = replies[: len(per_ns)]
        for (ns, names), raws in zip(per_ns.items(), records_of, strict=True):
            for name, raw in zip(names, raws, strict=True):
                record = decode_record(name, raw) if raw else None
                keep = record is not None and not record.expired(now_ms)
                records[(ns, name)] = record if keep else None
        for ns, score in zip(new_ns, replies[len(per_ns) :], strict=True):
            created[ns] = float(score) if score is not None else math.inf
        return None

    def _scan(self, op: SearchOp, query: array[float] | None, now_ms: int) -> StoreOp:
        """The page of a search that reads every item under the prefix (bounded by
        ``max_search_candidates``): exact ranking for a query (embedded here, once
        there are candidates, unless the caller has its vector), else creation
        order."""
        prefix = op.namespace_prefix
        roots = yield from self._roots(prefix[0] if prefix else None)
        found = yield from self._namespaces(roots, counts=True)
        chosen = [
            (ns, score, n) for ns, score, n in found if ns[: len(prefix)] == prefix
        ]
        total = sum(n for _, _, n in chosen)
        bound = self.settings.max_search_candidates
        if total > bound:
            raise StoreSearchTooLargeError(
                f"a search of {prefix!r} would read {total} items, more than "
                f"max_search_candidates ({bound}); search a narrower namespace "
                "prefix, or raise max_search_candidates"
            )
        if not chosen:
            return []
        chosen.sort(key=lambda c: (c[1], c[0]))
        semantic = bool(op.query)
        requests: list[Eval | Command] = []
        for ns, _, _ in chosen:
            requests.append(
                Command(("HGETALL", keys.namespace_key(self.prefix, ns, "i")))
            )
            if semantic:
                requests.append(
                    Command(("HGETALL", keys.namespace_key(self.prefix, ns, "v")))
                )
        replies = yield Batch(requests)
        step = 2 if semantic else 1
        # Records are taken in creation order (the header's seq orders them without
        # decoding JSON); without a query the scan stops once a page is full, and a
        # query without a filter decodes only the records it returns.
        wanted = None if semantic else max(op.offset + op.limit, 0)
        lazy = semantic and not op.filter
        candidates: list[Candidate] = []
        for index, (ns, _, _) in enumerate(chosen):
            raw_items: dict[bytes, bytes] = replies[index * step]
            raw_vecs: dict[bytes, bytes] = replies[index * step + 1] if semantic else {}
            for _, key, raw in sorted(
                (record_seq(k, v), k, v) for k, v in raw_items.items()
            ):
                if lazy:
                    if not record_expired(key, raw, now_ms):
                        candidates.append((ns, key, raw, None, raw_vecs.get(key)))
                    continue
                record = decode_record(key, raw)
                if record.expired(now_ms) or not matches_filter(
                    record.value, op.filter
                ):
                    continue
                candidates.append((ns, key, raw, record, raw_vecs.get(key)))
                if wanted is not None and len(candidates) >= wanted:
                    break
            if wanted is not None and len(candidates) >= wanted:
                break
        if semantic:
            if query is None:
                query = yield from self._query_vector(op)
            return self._rank(op, candidates, query)
        return [
            (ns, _decoded(key, raw, record), None)
            for ns, key, raw, record, _ in candidates[op.offset : op.offset + op.limit]
        ]

    def _rank(
        self, op: SearchOp, candidates: Sequence[Candidate], query: array[float]
    ) -> list[tuple[tuple[str, ...], Record, float | None]]:
        """Exact cosine ranking, best first; unindexed items follow unscored when
        fewer than ``limit`` scored ones are left (as ``InMemoryStore``)."""
        dims = self.settings.dims or 0
        scored: list[tuple[float, int]] = []
        unscored: list[int] = []
        for index, (_, _, _, _, raw_vecs) in enumerate(candidates):
            vectors = decode_vectors(raw_vecs, dims) if raw_vecs else []
            if vectors:
                scored.append((-cosine_scores(query, vectors), index))
            else:
                unscored.append(index)
        best = heapq.nsmallest(max(op.offset + op.limit, 0), scored)
        chosen: list[tuple[int, float | None]] = [(i, -s) for s, i in best[op.offset :]]
        if unscored and len(chosen) < op.limit:
            chosen += [(i, None) for i in unscored[: op.limit - len(chosen)]]
        kept: list[tuple[tuple[str, ...], Record, float | None]] = []
        for index, score in chosen:
            ns, key, raw, record, _ = candidates[index]
            kept.append((ns, _decoded(key, raw, record), score))
        return kept

    def _refresh(
        self, items: Sequence[tuple[tuple[str, ...], Record]], now_ms: int
    ) -> StoreOp:
        """Move the expiry of returned items that have a TTL (one round trip)."""
        per_ns: dict[tuple[str, ...], list[str | bytes]] = {}
        for ns, record in items:
            if record.ttl_ms > 0:
                args = per_ns.setdefault(ns, [str(now_ms)])
                args += [record.key, keys.exp_member(ns, record.key)]
        if not per_ns:
            return None
        yield Batch(
            [
                Eval(
                    lua.REFRESH,
                    [
                        keys.namespace_key(self.prefix, ns, "i"),
                        keys.root_key(self.prefix, ns[0], "exp"),
                    ],
                    args,
                )
                for ns, args in per_ns.items()
            ]
        )
        return None

    # --- TTL sweep --------------------------------------------------------------------

    def sweep(self) -> StoreOp:
        """Delete every expired item (a batch per root at a time); their number."""
        yield from self.resolve_index()
        roots = yield from self._roots(None)
        deleted = 0
        for root in roots:
            exp = keys.root_key(self.prefix, root, "exp")
            while True:
                now_ms = time.time_ns() // 1_000_000
                members = yield Command(
                    (
                        "ZRANGEBYSCORE",
                        exp,
                        "-inf",
                        now_ms,
                        "LIMIT",
                        0,
                        self.settings.sweep_batch,
                    )
                )
                if not members:
                    break
                requests: list[Eval | Command] = []
                for member in members:
                    ns, key = keys.split_exp_member(member)
                    hash_keys, hash_args = self._vector_hashes(ns, key)
                    args = [key, keys.join_namespace(ns), member, str(now_ms)]
                    sweep_keys = [*self._item_keys(ns), *hash_keys]
                    requests.append(Eval(lua.SWEEP, sweep_keys, [*args, *hash_args]))
                replies = yield Batch(requests)
                removed = sum(int(r) for r in replies)
                deleted += removed
                if len(members) < self.settings.sweep_batch or not removed:
                    break
        return deleted


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decoded(key: bytes, raw: bytes, record: Record | None) -> Record:
    return record if record is not None else decode_record(key, raw)


def _pairs(reply: Any) -> list[tuple[bytes, float]]:
    """``ZRANGE ... WITHSCORES`` as pairs (RESP2 flat list or RESP3 pairs)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(m, float(s)) for m, s in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]
