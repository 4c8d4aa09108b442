"""What the async and the sync store shells share: options, embeddings, the blocking
API. :mod:`dialogllm.store.aio` and :mod:`dialogllm.store.sync` add only how requests
are sent (a :mod:`dialogllm.redis.requests` sender, async or blocking), as the
checkpointer's shells do.

The rule a reader must not break: the client is one from :mod:`dialogllm.redis`
(or the caller's) with ``decode_responses=False``; records are bytes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, IndexConfig, TTLConfig, ensure_embeddings

from dialogllm.checkpoint.base import DEFAULT_KEY_PREFIX, DEFAULT_MAX_PAYLOAD_BYTES
from dialogllm.errors import ConfigError, StoreError
from dialogllm.loader import (
    LangGraphConfig,
    config_files,
    is_file_reference,
    load_object,
)
from dialogllm.redis.requests import AsyncSender, Calls, SyncSender
from dialogllm.store.operations import StoreOperations, StoreSettings, tokenized_fields
from dialogllm.store.vector_index import VECTOR_INDEX_MODES, VectorIndexMode

__all__ = [
    "DEFAULT_MAX_SEARCH_CANDIDATES",
    "RedisStoreBase",
    "configured_store_options",
    "resolve_embeddings",
    "store_options",
]

ClientT = TypeVar("ClientT")
SenderT = TypeVar("SenderT", AsyncSender, SyncSender)
_CALLS = Calls("a store call", StoreError, "store records are raw bytes")

DEFAULT_MAX_SEARCH_CANDIDATES = 100_000
"""How many items one search may read at most (see ``max_search_candidates``)."""


def resolve_embeddings(embed: Any, *, base: Path | None = None) -> Embeddings:
    """``IndexConfig["embed"]`` as LangChain ``Embeddings``: an ``Embeddings``, a sync
    or async function of a list of texts, a reference ``"pkg.mod:attr"`` /
    ``"path/file.py:attr"`` to one of those (as ``langgraph.json`` names it), or a
    provider string LangChain's ``init_embeddings`` knows (``"openai:..."``).

    >>> resolve_embeddings(lambda texts: [[1.0, 0.0] for _ in texts]).embed_query("a")
    [1.0, 0.0]
    """
    if isinstance(embed, str):
        target, _, attr = embed.rpartition(":")
        module_ref = attr.isidentifier() and ("." in target or _is_module(target))
        if is_file_reference(target) or module_ref:
            embed = load_object(embed, base=base)
    if embed is None:
        raise ConfigError('an index needs "embed": a function, Embeddings or reference')
    try:
        return ensure_embeddings(embed)
    except ValueError as exc:
        raise ConfigError(f"the store index's embed {embed!r}: {exc}") from exc


def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable module: ``"mymod:embed"`` is a reference,
    ``"openai:text-embedding-3-small"`` (no identifier after the colon) a provider
    string even though ``openai`` is importable."""
    try:
        return bool(name) and importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def store_options(
    config: Mapping[str, Any] | None, *, base: Path | None = None
) -> dict[str, Any]:
    """A ``langgraph.json`` ``"store"`` section as store options: ``index`` (its
    ``embed`` reference resolved relative to ``base``), ``ttl`` and (DialogueLLM's
    own key) ``vector_index``.

    >>> store_options({"ttl": {"default_ttl": 60}})
    {'ttl': {'default_ttl': 60}}
    """
    if not config:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError('"store" in langgraph.json must be an object')
    options: dict[str, Any] = {}
    index = config.get("index")
    if index is not None:
        if not isinstance(index, Mapping):
            raise ConfigError('"store.index" in langgraph.json must be an object')
        resolved = dict(index)
        resolved["embed"] = resolve_embeddings(index.get("embed"), base=base)
        options["index"] = resolved
    ttl = config.get("ttl")
    if ttl is not None:
        if not isinstance(ttl, Mapping):
            raise ConfigError('"store.ttl" in langgraph.json must be an object')
        options["ttl"] = dict(ttl)
    vector_index = config.get("vector_index")
    if vector_index is not None:
        if vector_index not in VECTOR_INDEX_MODES:
            raise ConfigError(
                '"store.vector_index" in langgraph.json must be one of '
                + ", ".join(VECTOR_INDEX_MODES)
            )
        options["vector_index"] = vector_index
    return options


def configured_store_options(start: Path | None = None) -> dict[str, Any]:
    """The store options of the nearest ``langgraph.json`` (the one graph names
    resolve from first: ``start``, default the working directory, then its parents;
    see :func:`dialogllm.loader.config_files`): its ``"store"`` section as
    :func:`store_options` reads it, references resolved from that file's folder.
    ``{}`` when there is no such file or it has no ``"store"``.

    What ``dialogllm worker``, ``python -m dialogllm.queue`` and the
    ``DialogueRunner`` give the store they open, as ``dialogllm serve`` does with the
    ``langgraph.json`` it serves.

    >>> AsyncRedisStore(client, **configured_store_options())     # doctest: +SKIP
    """
    nearest = next(config_files(start), None)
    if nearest is None:
        return {}
    config = LangGraphConfig.read(nearest)
    return store_options(config.store, base=config.folder)


class RedisStoreBase(BaseStore, Generic[ClientT, SenderT]):
    """The part of a Redis store that does no I/O (see ``AsyncRedisStore`` for the
    meaning of each option); a shell names its sender (async or blocking)."""

    supports_ttl = True
    _sender_type: Callable[..., SenderT]

    def __init__(
        self,
        client: ClientT,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        max_search_candidates: int = DEFAULT_MAX_SEARCH_CANDIDATES,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        vector_index: VectorIndexMode = "auto",
    ) -> None:
        self.sender: SenderT = self._sender_type(client, _CALLS)
        self.client = client
        self.is_cluster = self.sender.is_cluster
        self.url = self.sender.url
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        self.embeddings: Embeddings | None = None
        dims: int | None = None
        fields = tokenized_fields(None)
        if index:
            if not isinstance(index.get("dims"), int) or index["dims"] <= 0:
                raise ConfigError('an index needs "dims": a positive number')
            dims = index["dims"]
            self.embeddings = resolve_embeddings(index.get("embed"))
            fields = tokenized_fields(index.get("fields"))
        if vector_index not in VECTOR_INDEX_MODES:
            raise ConfigError(
                f"vector_index must be one of {', '.join(VECTOR_INDEX_MODES)}, "
                f"not {vector_index!r}"
            )
        if vector_index in ("flat", "hnsw") and self.is_cluster:
            raise ConfigError(
                f'vector_index="{vector_index}" needs RediSearch on one server; a '
                'Redis Cluster client searches exactly: use "auto" or "exact"'
            )
        self.ttl_config = ttl
        self.settings = StoreSettings(
            key_prefix=key_prefix,
            dims=dims,
            fields=fields,
            max_search_candidates=max_search_candidates,
            max_payload_bytes=max_payload_bytes,
            vector_index=vector_index,
            cluster=self.is_cluster,
        )
        self.ops = StoreOperations(self.settings)
        self._created()

    def _created(self) -> None:
        """Hook for a shell to finish its own set-up (the async one notes its loop)."""

    def start_configured_ttl_sweeper(self) -> bool:
        """Start the TTL sweeper when ``ttl`` has ``sweep_interval_minutes`` (what
        ``from_conn_string``, a worker and ``dialogllm serve`` do with the store they
        open); ``True`` if it started.

        >>> store.start_configured_ttl_sweeper()                  # doctest: +SKIP
        True
        """
        if not self.sweep_interval_s:
            return False
        self.start_ttl_sweeper()
        return True

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> object:
        """Sweep expired items in the background (each shell has its own)."""
        raise NotImplementedError  # pragma: no cover - both shells define it

    @property
    def sweep_interval_s(self) -> float | None:
        """Seconds between sweeps of ``ttl["sweep_interval_minutes"]`` (``None``:
        the sweeper does not start by itself)."""
        minutes = (self.ttl_config or {}).get("sweep_interval_minutes")
        return float(minutes) * 60 if minutes else None

    def _embed_sync(self, texts: Sequence[str], query: bool) -> list[list[float]]:
        embeddings = self._embeddings()
        if query:
            return [embeddings.embed_query(t) for t in texts]
        return embeddings.embed_documents(list(texts))

    async def _embed_async(
        self, texts: Sequence[str], query: bool
    ) -> list[list[float]]:
        embeddings = self._embeddings()
        if query:
            return [await embeddings.aembed_query(t) for t in texts]
        return await embeddings.aembed_documents(list(texts))

    def _embeddings(self) -> Embeddings:
        if self.embeddings is None:  # pragma: no cover - operations check first
            raise StoreError("this store has no embeddings")
        return self.embeddings


def interval(value: float | None, fallback: Callable[[], float | None]) -> float:
    """Sweep interval in seconds: ``value`` minutes, else the store's, else 5 min."""
    if value is not None:
        return float(value) * 60
    return fallback() or 300.0
