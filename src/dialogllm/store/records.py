"""What the store keeps and how it reads it back: records, filters, vectors (no I/O).

A record is a header line (creation and update time, the item's place in its root,
its expiry and TTL) and the value as JSON. Values are decoded with plain JSON only:
nothing in a value is ever revived as a Python type (stricter than the
checkpointer's allow-list, :mod:`dialogllm.serde`, which revives no arbitrary type
either), so anyone who can write to the Redis can plant data but not code.

Filters behave as LangGraph's ``InMemoryStore`` evaluates them: a plain value is
equality (nested dicts and lists compared element by element), ``$eq $ne $gt $gte
$lt $lte`` compare; ordering compares numbers as numbers and strings as strings, and
an item whose field is missing or of another type does not match (where
``InMemoryStore`` would raise). A top-level ``{"$and": [filter, ...]}`` (what the
server sends when an auth handler adds a filter) needs every filter to match.

The rule a reader must not break: a value is written only after
:func:`encode_value` accepted it, so every stored record decodes.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from langgraph.store.base import MatchCondition

from dialogllm.errors import CorruptCheckpointError, StoreValueError

__all__ = [
    "FILTER_OPERATORS",
    "Record",
    "check_filter",
    "cosine_scores",
    "decode_record",
    "decode_vectors",
    "encode_value",
    "encode_vectors",
    "matches_condition",
    "matches_filter",
    "record_expired",
    "record_seq",
    "unit_vector",
]

#: The comparison operators a filter may use.
FILTER_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


@dataclass(frozen=True, slots=True)
class Record:
    """One stored item as read back (times in µs / ms since the epoch)."""

    key: str
    value: dict[str, Any]
    created_us: int
    updated_us: int
    seq: int
    expires_ms: int
    ttl_ms: int

    def expired(self, now_ms: int) -> bool:
        """Whether the item's TTL has run out (it is hidden until swept)."""
        return 0 < self.expires_ms <= now_ms

    @property
    def created_at(self) -> datetime:
        """Creation time, UTC."""
        return _datetime(self.created_us)

    @property
    def updated_at(self) -> datetime:
        """Time of the last put, UTC."""
        return _datetime(self.updated_us)


def _datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def encode_value(value: Mapping[str, Any], max_bytes: int) -> bytes:
    """The value as JSON; :class:`StoreValueError` if it is not a JSON object.

    >>> encode_value({"food": "tea"}, 1024)
    b'{"food":"tea"}'
    """
    if not isinstance(value, Mapping):
        raise StoreValueError(
            f"a store value must be a dict, not {type(value).__name__}"
        )
    try:
        data = orjson.dumps(dict(value))
    except TypeError as exc:
        raise StoreValueError(
            f"a store value must be JSON (strings, numbers, booleans, null, lists "
            f"and dicts with string keys): {exc}"
        ) from exc
    if len(data) > max_bytes:
        raise StoreValueError(
            f"the value is {len(data)} bytes, more than max_payload_bytes "
            f"({max_bytes}); store less, or raise the limit"
        )
    return data


def decode_record(key: str | bytes, raw: bytes) -> Record:
    """A stored record (see :mod:`dialogllm.store.lua` for the layout)."""
    name = key.decode() if isinstance(key, bytes) else key
    head, sep, body = raw.partition(b"\n")
    parts = head.split(b" ")
    try:
        if not sep or len(parts) != 5:
            raise ValueError("no header")
        value = orjson.loads(body)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        created, updated, seq, expires, ttl = (int(p) for p in parts)
    except ValueError as exc:
        raise CorruptCheckpointError(
            f"store item {name!r} is corrupt ({exc}); delete it and put it again"
        ) from exc
    return Record(name, value, created, updated, seq, expires, ttl)


def record_seq(key: bytes, raw: bytes) -> int:
    """The item's place in its root, read from the header alone (no JSON decoded).

    >>> record_seq(b"k", b"1 2 7 0 0\\n{}")
    7
    """
    try:
        return int(raw.split(b" ", 3)[2])
    except (IndexError, ValueError):
        return decode_record(key, raw).seq  # raises CorruptCheckpointError


def record_expired(key: bytes, raw: bytes, now_ms: int) -> bool:
    """Whether a record's TTL has run out, read from the header alone.

    >>> record_expired(b"k", b"1 2 7 5 1\\n{}", 10)
    True
    """
    try:
        expires = int(raw.split(b" ", 4)[3])
    except (IndexError, ValueError):
        return decode_record(key, raw).expired(now_ms)  # raises: corrupt
    return 0 < expires <= now_ms


# --- filters ---------------------------------------------------------------------


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item's value passes a search filter.

    >>> matches_filter({"n": 3, "tag": "a"}, {"n": {"$gt": 2}, "tag": "a"})
    True
    """
    if not filter:
        return True
    return all(
        all(matches_filter(value, f) for f in want)
        if k == "$and" and isinstance(want, list)
        else _compare(value.get(k), want)
        for k, want in filter.items()
    )


def check_filter(filter: Mapping[str, Any] | None) -> None:
    """Refuse (:class:`StoreValueError`) a filter with an operator the store does
    not know, before any item is read (so an empty namespace refuses it too).

    >>> check_filter({"n": {"$gt": 2}, "tag": "a"})  # {"$regex": ...} would raise
    """
    for key, want in (filter or {}).items():
        if key == "$and" and isinstance(want, list):
            for part in want:
                check_filter(part)
        else:
            _check_condition(want)


def _check_condition(want: Any) -> None:
    if isinstance(want, dict):
        for key, value in want.items():
            if isinstance(key, str) and key.startswith("$"):
                if key not in FILTER_OPERATORS:
                    raise StoreValueError(_unsupported(key))
            else:
                _check_condition(value)


def _unsupported(op: str) -> str:
    return f"unsupported filter operator {op!r}; use one of " + ", ".join(
        sorted(FILTER_OPERATORS)
    )


def _compare(have: Any, want: Any) -> bool:
    if isinstance(want, dict):
        if any(isinstance(k, str) and k.startswith("$") for k in want):
            return all(_operator(have, op, arg) for op, arg in want.items())
        if not isinstance(have, dict):
            return False
        return all(_compare(have.get(k), v) for k, v in want.items())
    if isinstance(want, list | tuple):
        return (
            isinstance(have, list | tuple)
            and len(have) == len(want)
            and all(_compare(h, w) for h, w in zip(have, want, strict=True))
        )
    return bool(have == want)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _operator(have: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(have == arg)
    if op == "$ne":
        return bool(have != arg)
    compare = _ORDER.get(op)
    if compare is None:
        raise StoreValueError(_unsupported(op))
    left, right = _number(have), _number(arg)
    if left is not None and right is not None:
        return compare(left, right)
    if isinstance(have, str) and isinstance(arg, str):
        return compare(have, arg)
    return False


def matches_condition(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether ``namespace`` matches a ``list_namespaces`` prefix/suffix condition
    (``"*"`` matches any one label).

    >>> matches_condition(MatchCondition("suffix", ("*", "v1")), ("a", "b", "v1"))
    True
    """
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise StoreValueError(f"unsupported match type {condition.match_type!r}")
    return all(p == "*" or n == p for n, p in pairs)


# --- vectors ---------------------------------------------------------------------


def _unit(vector: Sequence[float]) -> array[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    scale = 1.0 / norm if norm > 0 else 0.0
    return array("f", (x * scale for x in vector))


def encode_vectors(vectors: Iterable[tuple[str, Sequence[float]]], dims: int) -> bytes:
    """An item's vectors (path, vector) as stored: each path length-prefixed, then
    the vector as ``dims`` float32 of unit length (cosine becomes a dot product).

    >>> len(encode_vectors([("text", [3.0, 4.0])], 2))  # b"4:text" + 2 float32
    14
    """
    out = bytearray()
    for path, vector in vectors:
        if len(vector) != dims:
            raise StoreValueError(
                f"the embeddings function returned {len(vector)} dimensions, the "
                f"store's index says dims={dims}"
            )
        raw = path.encode()
        out += str(len(raw)).encode() + b":" + raw + _unit(vector).tobytes()
    return bytes(out)


def decode_vectors(raw: bytes, dims: int) -> list[array[float]]:
    """The unit vectors of one item (see :func:`encode_vectors`)."""
    out: list[array[float]] = []
    pos, size = 0, dims * 4
    while pos < len(raw):
        colon = raw.index(b":", pos)
        start = colon + 1 + int(raw[pos:colon])
        vector = array("f")
        vector.frombytes(raw[start : start + size])
        out.append(vector)
        pos = start + size
    return out


def unit_vector(vector: Sequence[float]) -> array[float]:
    """``vector`` scaled to length 1 (the zero vector stays zero): normalize a query
    once, then score it against many items with :func:`cosine_scores`."""
    return _unit(vector)


def cosine_scores(unit_query: array[float], vectors: Sequence[array[float]]) -> float:
    """The best cosine similarity of a unit query to any of an item's unit vectors
    (LangGraph's max pooling).

    >>> stored = decode_vectors(encode_vectors([("a", [2.0, 0.0])], 2), 2)
    >>> round(cosine_scores(unit_vector([1.0, 0.0]), stored), 3)
    1.0
    """
    mul = operator.mul
    return max(float(sum(map(mul, unit_query, v))) for v in vectors)
