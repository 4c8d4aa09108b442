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

The rule a reader must not break: a key of a root is built with :func:`root_key` or
:func:`namespace_key` only, so it carries the root's tag.
"""

from __future__ import annotations

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
