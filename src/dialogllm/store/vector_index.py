"""The store's native vector index: RediSearch's KNN over the items' vectors, used
where the server has RediSearch (Redis Stack, Redis 8) and the client is not a
Cluster; everywhere else the store ranks exactly in the client.

The store's ``vector_index=`` option:

- ``"auto"`` (default): a ``FLAT`` index (exact brute force, in the server) when the
  server has RediSearch, else the exact search in the client;
- ``"exact"``: always the client's exact search (no vector hashes are written);
- ``"flat"`` / ``"hnsw"``: RediSearch required (:class:`~dialogllm.errors.ConfigError`
  where it is missing or on a Cluster); ``hnsw`` is approximate and faster on large
  namespaces.

An item's vectors stay in the namespace's vecs hash (what the exact search reads);
with an index, each vector is also a hash of its own (``P:sv:D:{R}:H:I``,
:mod:`dialogllm.store.keys`), which RediSearch indexes. The Lua scripts keep both in
step in the same atomic call. The first store to find the index missing creates it
and fills it from the vecs hashes (:data:`~dialogllm.store.lua.REINDEX`, item by
item), marking it ``building`` meanwhile (a key with a TTL, so a store killed while
filling it hands the work to the next) and ``ready`` when done; until then every
store writes vector hashes but searches exactly.

An index dropped by hand (``FT.DROPINDEX``) while its state says ``ready`` makes
searches fail with the server's error until the state key is deleted too; the next
store then builds it again.

The rule a reader must not break: every store of one key prefix and dimensions uses
the same ``vector_index`` (a store with ``"exact"`` writes no vector hashes, so the
index would miss its items).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from dialogllm.redis.requests import Command, Eval
from dialogllm.store import keys, lua

__all__ = [
    "BUILD_SECONDS",
    "VECTOR_INDEX_MODES",
    "IndexState",
    "VectorHit",
    "VectorIndex",
    "VectorIndexMode",
    "best_per_item",
    "parse_hits",
]

VectorIndexMode: TypeAlias = Literal["auto", "exact", "flat", "hnsw"]
#: The values of the store's ``vector_index`` option.
VECTOR_INDEX_MODES: Final = ("auto", "exact", "flat", "hnsw")
#: How long one store may take to fill a new index before another takes over.
BUILD_SECONDS: Final = 600


class IndexState(enum.Enum):
    """What a store knows of the native index."""

    #: not asked yet
    UNKNOWN = "unknown"
    #: no RediSearch (or ``"exact"``, or a Cluster): search exactly, write no hashes
    ABSENT = "absent"
    #: being filled: write vector hashes, search exactly, ask again on each search
    BUILDING = "building"
    #: write vector hashes and search with KNN
    READY = "ready"


@dataclass(frozen=True, slots=True)
class VectorHit:
    """One vector RediSearch found: its item and its cosine similarity."""

    namespace: tuple[str, ...]
    key: str
    score: float


@dataclass(frozen=True, slots=True)
class VectorIndex:
    """The requests of one store's index (``algorithm``: ``flat`` or ``hnsw``)."""

    prefix: str
    dims: int
    algorithm: Literal["flat", "hnsw"] = "flat"

    @property
    def name(self) -> str:
        """The RediSearch index's name."""
        return keys.vector_index_name(self.prefix, self.dims, self.algorithm)

    @property
    def bytes_per_vector(self) -> str:
        """What the scripts are told a vector's size is (float32)."""
        return str(self.dims * 4)

    def doc_base(self, namespace: tuple[str, ...], key: str) -> str:
        """The base name of an item's vector hashes."""
        return keys.vector_doc_base(self.prefix, self.dims, namespace, key)

    def create_args(self) -> list[str]:
        """``FT.CREATE``'s arguments: vectors (cosine) and the namespace tags of the
        hashes under :func:`~dialogllm.store.keys.vector_doc_prefix`."""
        algorithm = self.algorithm.upper()
        return [
            self.name,
            "ON",
            "HASH",
            "PREFIX",
            "1",
            keys.vector_doc_prefix(self.prefix, self.dims),
            "STOPWORDS",
            "0",
            "SCHEMA",
            "vec",
            "VECTOR",
            algorithm,
            "6",
            "TYPE",
            "FLOAT32",
            "DIM",
            str(self.dims),
            "DISTANCE_METRIC",
            "COSINE",
            "nsp",
            "TAG",
            "SEPARATOR",
            ",",
        ]

    @property
    def state_key(self) -> str:
        """The key of the index's state (``building`` / ``ready``)."""
        return keys.vector_index_state_key(self.prefix, self.dims, self.algorithm)

    def state_request(self) -> Eval:
        """Ask (and, when missing, create) the index: see :data:`lua.INDEX_STATE`."""
        return Eval(
            lua.INDEX_STATE,
            [self.state_key],
            [str(BUILD_SECONDS), *self.create_args()],
        )

    def ready_request(self) -> Command:
        """Mark the index filled."""
        return Command(("SET", self.state_key, "ready"))

    def knn(self, namespace_prefix: tuple[str, ...], query: bytes, k: int) -> Command:
        """The ``k`` vectors under ``namespace_prefix`` nearest to ``query`` (float32
        of unit length), nearest first."""
        where = (
            f"@nsp:{{{keys.vector_prefix_tag(namespace_prefix)}}}"
            if namespace_prefix
            else "*"
        )
        return Command(
            (
                "FT.SEARCH",
                self.name,
                f"({where})=>[KNN $k @vec $q AS dist]",
                "PARAMS",
                "4",
                "k",
                k,
                "q",
                query,
                "SORTBY",
                "dist",
                "LIMIT",
                0,
                k,
                "RETURN",
                "3",
                "ns",
                "key",
                "dist",
                "DIALECT",
                "2",
            )
        )


def parse_hits(reply: Any) -> list[VectorHit]:
    """``FT.SEARCH``'s reply (RESP2 list or RESP3 map) as hits, in its order.

    >>> parse_hits([1, b"doc", [b"ns", b"a.b", b"key", b"k", b"dist", b"0.25"]])
    [VectorHit(namespace=('a', 'b'), key='k', score=0.75)]
    """
    rows: list[Mapping[Any, Any]] = []
    if isinstance(reply, Mapping):
        for result in reply.get(b"results", reply.get("results", [])):
            attrs = result.get(b"extra_attributes", result.get("extra_attributes"))
            rows.append(attrs or {})
    else:
        for fields in reply[2::2]:
            rows.append(dict(zip(fields[::2], fields[1::2], strict=True)))
    return [_hit(row) for row in rows]


def _hit(row: Mapping[Any, Any]) -> VectorHit:
    def field(name: str) -> str:
        value = row.get(name.encode(), row.get(name))
        return value.decode() if isinstance(value, bytes) else str(value)

    distance = float(field("dist"))
    score = 1.0 - distance if math.isfinite(distance) else 0.0
    return VectorHit(keys.split_namespace(field("ns")), field("key"), score)


def best_per_item(hits: Sequence[VectorHit]) -> list[VectorHit]:
    """One hit per item, its best (the first: hits come nearest first), in order.

    >>> best_per_item([VectorHit(("a",), "k", 0.9), VectorHit(("a",), "k", 0.5)])
    [VectorHit(namespace=('a',), key='k', score=0.9)]
    """
    seen: dict[tuple[tuple[str, ...], str], VectorHit] = {}
    for hit in hits:
        seen.setdefault((hit.namespace, hit.key), hit)
    return list(seen.values())
