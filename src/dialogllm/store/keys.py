"""The Redis key schema of the long-term memory store.

Every key that holds items of one top-level namespace label ``R`` (the first label
of a namespace: ``("users", "u-1", "facts")`` lives under ``users``) carries the hash
tag ``{R}``, so a root's items, vectors, namespace index and expiry index share one
Redis Cluster slot and each write is one atomic Lua call. Keys are built here and
nowhere else; nothing ever parses a key.

Per root (``P`` is the key prefix, ``R`` the escaped first label, ``N`` the
namespace's labels joined with ``.``, which no label may contain)::

    P:s:{R}:ns      ZSET    namespaces of the root that hold items; score: the
                            namespace's creation time (µs), the listing order
    P:s:{R}:count   HASH    namespace -> number of items (0 removes it from ``ns``)
    P:s:{R}:seq     STRING  a counter: each new item's place in the root
    P:s:{R}:exp     ZSET    ``N NUL key`` -> expiry time (ms) of items with a TTL
    P:s:{R}:i:N     HASH    key -> record (a header line, then the value's JSON)
    P:s:{R}:v:N     HASH    key -> the item's vectors (semantic search only)

Global (its own slot; only ever added to)::

    P:s:roots       ZSET    root labels; score: first use (µs). A search of the
                            whole store (prefix ``()``) reads the roots from here.

The native vector index (RediSearch, where the server has it; see
:mod:`dialogllm.store.vector_index`), ``D`` the index's dimensions, ``A`` its
algorithm (``flat`` or ``hnsw``)::

    P:sv:D:{R}:H:I           HASH    one of an item's vectors (``I`` from 0; ``H`` a
                                     hash of its namespace and key): ``vec``
                                     (float32), ``nsp`` (tags of the namespace's
                                     prefixes), ``ns``, ``key``
    P:svs:D:A                STRING  the index's state: ``building`` (with a TTL,
                                     while one store fills it) or ``ready``

and the RediSearch index itself, ``P:sv:D:A`` (an index name, not a key), over the
hashes whose names start with ``P:sv:D:``.

The rule a reader must not break: a key of a root is built with :func:`root_key` or
:func:`namespace_key` only, so it carries the root's tag.
"""

from __future__ import annotations

import hashlib
from typing import Final

from dialogllm.leases import escape_tag

__all__ = [
    "NAMESPACE_SUFFIXES",
    "ROOT_SUFFIXES",
    "SEPARATOR",
    "exp_member",
    "join_namespace",
    "namespace_key",
    "root_key",
    "roots_key",
    "split_exp_member",
    "split_namespace",
    "vector_doc_base",
    "vector_doc_prefix",
    "vector_index_name",
    "vector_index_state_key",
    "vector_prefix_tag",
    "vector_tags",
]

#: Joins the labels of a namespace (LangGraph forbids ``.`` in labels).
SEPARATOR: Final = "."

#: The per-root keys (besides the per-namespace ones).
ROOT_SUFFIXES: Final = ("ns", "count", "seq", "exp")

#: The per-namespace keys: items and vectors.
NAMESPACE_SUFFIXES: Final = ("i", "v")


def roots_key(prefix: str) -> str:
    """ZSET of the root labels in use (the one global key of the store).

    >>> roots_key("app")
    'app:s:roots'
    """
    return f"{prefix}:s:roots"


def _base(prefix: str, root: str) -> str:
    return f"{prefix}:s:{{{escape_tag(root)}}}"


def root_key(prefix: str, root: str, suffix: str) -> str:
    """One of the root's own keys (``ns``, ``count``, ``seq``, ``exp``).

    >>> root_key("app", "users", "ns")
    'app:s:{users}:ns'
    """
    if suffix not in ROOT_SUFFIXES:
        raise ValueError(f"unknown root key suffix {suffix!r}")
    return f"{_base(prefix, root)}:{suffix}"


def namespace_key(prefix: str, namespace: tuple[str, ...], suffix: str) -> str:
    """The items (``i``) or vectors (``v``) hash of one namespace.

    >>> namespace_key("app", ("users", "u-1"), "i")
    'app:s:{users}:i:users.u-1'
    """
    if suffix not in NAMESPACE_SUFFIXES:
        raise ValueError(f"unknown namespace key suffix {suffix!r}")
    return f"{_base(prefix, namespace[0])}:{suffix}:{join_namespace(namespace)}"


def join_namespace(namespace: tuple[str, ...]) -> str:
    """The namespace as stored in ``ns``, ``count`` and key names.

    >>> join_namespace(("users", "u-1"))
    'users.u-1'
    """
    return SEPARATOR.join(namespace)


def split_namespace(text: str | bytes) -> tuple[str, ...]:
    """Undo :func:`join_namespace` (a stored member, never a key).

    >>> split_namespace(b"users.u-1")
    ('users', 'u-1')
    """
    raw = text.decode() if isinstance(text, bytes) else text
    return tuple(raw.split(SEPARATOR))


def exp_member(namespace: tuple[str, ...], key: str) -> bytes:
    """Member of ``exp`` for one item: the namespace, NUL, the key (labels hold no
    NUL, so the first NUL ends the namespace).

    >>> exp_member(("users", "u-1"), "k")
    b'users.u-1\\x00k'
    """
    return join_namespace(namespace).encode() + b"\x00" + key.encode()


def split_exp_member(member: bytes) -> tuple[tuple[str, ...], str]:
    """Undo :func:`exp_member`.

    >>> split_exp_member(b"users.u-1\\x00k")
    (('users', 'u-1'), 'k')
    """
    ns, _, key = member.partition(b"\x00")
    return split_namespace(ns), key.decode()


# --- the native vector index -------------------------------------------------------


def vector_doc_prefix(prefix: str, dims: int) -> str:
    """What the names of every vector hash of ``dims`` dimensions start with (the
    index's ``PREFIX``).

    >>> vector_doc_prefix("app", 64)
    'app:sv:64:'
    """
    return f"{prefix}:sv:{dims}:"


def vector_doc_base(
    prefix: str, dims: int, namespace: tuple[str, ...], key: str
) -> str:
    """An item's vector hashes are this name followed by 0, 1, ... (one per vector;
    the Lua scripts append the number). Under the root's hash tag; the item is
    named by a hash of its namespace and key (RediSearch cannot load a hash whose
    name holds a NUL, and a key may hold anything), its ``ns`` and ``key`` fields
    say which item it is.

    >>> vector_doc_base("app", 64, ("users", "u-1"), "k")
    'app:sv:64:{users}:9dbcad743e3079238654436305742384:'
    """
    tag = escape_tag(namespace[0])
    item = join_namespace(namespace).encode() + b"\x00" + key.encode()
    name = hashlib.blake2b(item, digest_size=16).hexdigest()
    return f"{vector_doc_prefix(prefix, dims)}{{{tag}}}:{name}:"


def vector_index_name(prefix: str, dims: int, algorithm: str) -> str:
    """The RediSearch index's name.

    >>> vector_index_name("app", 64, "flat")
    'app:sv:64:flat'
    """
    return f"{prefix}:sv:{dims}:{algorithm}"


def vector_index_state_key(prefix: str, dims: int, algorithm: str) -> str:
    """STRING: ``building`` or ``ready`` (outside the indexed ``sv`` names).

    >>> vector_index_state_key("app", 64, "flat")
    'app:svs:64:flat'
    """
    return f"{prefix}:svs:{dims}:{algorithm}"


def vector_prefix_tag(namespace_prefix: tuple[str, ...]) -> str:
    """The TAG a vector hash carries for one prefix of its namespace: a hash of the
    labels in hex, so no label needs escaping in a query.

    >>> vector_prefix_tag(("users",))
    '889b3fb8e93e603e'
    """
    joined = join_namespace(namespace_prefix).encode()
    return hashlib.blake2b(joined, digest_size=8).hexdigest()


def vector_tags(namespace: tuple[str, ...]) -> str:
    """The ``nsp`` field of a vector hash: the tags of every prefix of its namespace
    (so a search of any prefix finds it), comma separated.

    >>> vector_tags(("a", "b")).count(",")
    1
    """
    return ",".join(
        vector_prefix_tag(namespace[:depth]) for depth in range(1, len(namespace) + 1)
    )
