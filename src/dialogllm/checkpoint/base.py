"""What the async and the sync Redis savers share: records, arguments, decoding.

This module owns the storage format: how a checkpoint, its metadata, its channel blobs
and its pending writes become Redis hash values and script arguments, and how script
replies become :class:`~langgraph.checkpoint.base.CheckpointTuple` objects. It does no
I/O; :mod:`dialogllm.checkpoint.aio` and :mod:`dialogllm.checkpoint.sync` send what it
builds.

Record formats (items are length-prefixed, see :func:`~dialogllm.checkpoint.keys.lp`):

* checkpoint record: ``lp(skeleton) lp(type) lp(checkpoint) lp(type) lp(metadata)``;
  the serialized checkpoint leaves out ``channel_versions`` (the skeleton has them)
* skeleton: ``lp(parent id) lp(run id)`` then ``lp(channel) lp(version)`` pairs; a
  version is :func:`encode_version`'d, and starts with NUL when the channel's value is
  ``None`` (kept inline: no blob)
* blob: ``lp(type) + bytes``; a channel version with no value has no blob at all;
  a type starting ``z:`` marks zlib-compressed bytes (delta snapshots, and values over
  ``compress_min_bytes`` when set)
* writes of a checkpoint: ``lp(write) lp(write) ...``, each write being
  ``lp(task id) lp(idx) lp(channel) lp(task path) lp(type) lp(bytes)``
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from dialogllm.checkpoint import keys
from dialogllm.errors import (
    BlockedTypeError,
    CorruptCheckpointError,
    InvalidCheckpointConfigError,
    PayloadTooLargeError,
)
from dialogllm.leases import FencingToken, fencing_token_from_config
from dialogllm.serde import StrictSerializer

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "SaverOptions",
    "ThreadRef",
    "default_serde",
    "next_version",
]

DEFAULT_KEY_PREFIX = "dialogllm"
#: Largest single serialized value accepted (Redis itself stops at 512 MiB).
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: Bound on the parent-chain walk of one delta-history call (a cycle guard).
MAX_HISTORY_DEPTH = 100_000


_INLINE_NONE = "\x00"
_COMPRESSED = "z:"


def encode_version(version: str | int | float) -> str:
    """A channel version as a skeleton item (keeps int/float versions typed).

    >>> encode_version(3), encode_version("0000000000000003.ab12cd34")
    ('#i3', '0000000000000003.ab12cd34')
    """
    if isinstance(version, bool):
        raise InvalidCheckpointConfigError("channel versions cannot be booleans")
    if isinstance(version, int):
        return f"#i{version}"
    if isinstance(version, float):
        return f"#f{version!r}"
    if version.startswith(("#", _INLINE_NONE)):
        return f"#s{version}"
    return version


def decode_version(item: str) -> str | int | float:
    """Inverse of :func:`encode_version`."""
    if item.startswith("#i"):
        return int(item[2:])
    if item.startswith("#f"):
        return float(item[2:])
    if item.startswith("#s"):
        return item[2:]
    return item


def default_serde() -> SerializerProtocol:
    """The strict serializer: LangGraph's JSON+msgpack, no pickle, and only allowed
    types revived (see :mod:`dialogllm.serde`)."""
    return StrictSerializer()


def next_version(current: str | int | float | None) -> str:
    """A channel version that sorts after ``current`` and stays unique across forks.

    Versions are ``"<16-digit counter>.<8 hex random>"`` strings (shorter than the
    in-memory saver's 32+16 digits: they are stored in every checkpoint). Versions
    written by other savers (integers, 32-digit strings) are read as their counter,
    and a narrower zero-padded counter still compares greater than a wider one of a
    smaller value, so threads migrate.

    >>> next_version(None).split(".")[0]
    '0000000000000001'
    """
    if current is None:
        counter = 0
    elif isinstance(current, int | float):
        counter = int(current)
    else:
        counter = int(current.split(".", 1)[0])
    return f"{counter + 1:016}.{random.getrandbits(32):08x}"


@dataclass(frozen=True, slots=True)
class SaverOptions:
    """Options shared by both savers (see :class:`AsyncRedisSaver` for meanings)."""

    key_prefix: str = DEFAULT_KEY_PREFIX
    ttl_seconds: float | None = None
    refresh_on_read: bool = False
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    fencing_token: FencingToken | None = None
    compress_min_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.key_prefix or any(c in self.key_prefix for c in "{}"):
            raise InvalidCheckpointConfigError(
                f"key_prefix {self.key_prefix!r} must be non-empty and brace-free"
            )
        if self.ttl_seconds is not None and self.ttl_seconds <= 0:
            raise InvalidCheckpointConfigError("ttl_seconds must be > 0 or None")

    @property
    def ttl_ms_arg(self) -> str:
        """The default TTL as a script argument ('' when none)."""
        return "" if self.ttl_seconds is None else str(int(self.ttl_seconds * 1000))


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """A (thread, namespace, checkpoint id) target parsed from a config."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None

    @classmethod
    def from_config(cls, config: RunnableConfig | None) -> ThreadRef:
        """Read the target of ``config``; a clear error when ``thread_id`` is absent."""
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if thread_id is None or thread_id == "":
            raise InvalidCheckpointConfigError(
                "config['configurable']['thread_id'] is required by the Redis "
                "checkpointer; pass {'configurable': {'thread_id': '...'}}"
            )
        ns = configurable.get("checkpoint_ns") or ""
        return cls(
            thread_id=str(thread_id),
            checkpoint_ns=str(ns),
            checkpoint_id=get_checkpoint_id(cast(RunnableConfig, config)),
        )


def thread_keys(prefix: str, thread_id: str) -> list[str]:
    """KEYS of every script, in :data:`dialogllm.checkpoint.lua.THREAD_KEYS_ORDER`."""
    if thread_id == "":
        raise InvalidCheckpointConfigError("thread_id must not be empty")
    return [
        *(keys.thread_key(prefix, thread_id, s) for s in keys.THREAD_KEY_SUFFIXES),
        keys.thread_lease(prefix, thread_id),
        keys.thread_fence_counter(prefix, thread_id),
    ]


# --- length-prefixed records ---------------------------------------------------------


def lp_join(items: Iterable[str | bytes]) -> bytes:
    """Concatenate length-prefixed items."""
    return b"".join(keys.lp(item) for item in items)


def lp_split(data: bytes, limit: int | None = None) -> list[bytes]:
    """Inverse of :func:`lp_join` (the first ``limit`` items when given)."""
    out: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end and (limit is None or len(out) < limit):
        colon = data.index(b":", pos)
        length = int(data[pos:colon])
        start = colon + 1
        out.append(data[start : start + length])
        pos = start + length
    if pos > end:
        raise ValueError("truncated record")
    return out


def _blob_type(blob: bytes, where: str) -> bytes:
    """The type prefix of a stored blob (:class:`CorruptCheckpointError` for a blob
    no saver wrote)."""
    try:
        return lp_split(blob, 1)[0]
    except (ValueError, IndexError) as exc:
        raise CorruptCheckpointError(f"malformed blob of {where}") from exc


def to_str(value: bytes | str) -> str:
    """Decode a Redis reply item."""
    return value.decode() if isinstance(value, bytes) else value


# --- the codec ------------------------------------------------------------------------


class RecordCodec:
    """Turns LangGraph objects into stored records and back, with one serializer."""

    def __init__(self, serde: SerializerProtocol, options: SaverOptions) -> None:
        self.serde = serde
        self.options = options

    # encoding ----------------------------------------------------------------------

    def _dump(self, value: Any, what: str) -> tuple[str, bytes]:
        type_, data = self.serde.dumps_typed(value)
        if len(data) > self.options.max_payload_bytes:
            raise PayloadTooLargeError(
                f"{what} serializes to {len(data)} bytes, over the limit of "
                f"{self.options.max_payload_bytes} (max_payload_bytes); nothing written"
            )
        return type_, data

    def _dump_blob(self, value: Any, what: str) -> bytes:
        type_, data = self._dump(value, what)
        threshold = self.options.compress_min_bytes
        if len(data) >= 1024 and (
            isinstance(value, _DeltaSnapshot)
            or (threshold is not None and len(data) >= threshold)
        ):
            packed = zlib.compress(data, 6 if isinstance(value, _DeltaSnapshot) else 1)
            if len(packed) < 0.9 * len(data):
                type_, data = _COMPRESSED + type_, packed
        return keys.lp(type_) + data

    def _load_blob(self, blob: bytes, where: str) -> Any:
        type_ = _blob_type(blob, where)
        data = blob[len(keys.lp(type_)) :]
        if type_.startswith(_COMPRESSED.encode()):
            try:
                data = zlib.decompress(data)
            except zlib.error as exc:
                raise CorruptCheckpointError(f"cannot decompress {where}") from exc
            type_ = type_[len(_COMPRESSED) :]
        return self._load(type_, data, where)

    def put_args(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[ThreadRef, str | None, list[bytes | str]]:
        """Script arguments of PUT after the fencing triple; also the run id."""
        ref = ThreadRef.from_config(config)
        ns = ref.checkpoint_ns
        stored: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = stored.pop("channel_values", None) or {}
        versions = stored.pop("channel_versions", None) or {}
        md = get_checkpoint_metadata(config, metadata)
        cp_type, cp_data = self._dump(stored, "checkpoint")
        md_type, md_data = self._dump(md, "checkpoint metadata")
        run_id = md.get("run_id")
        run_id_s = str(run_id) if run_id else ""
        skeleton_items: list[str | bytes] = [ref.checkpoint_id or "", run_id_s]
        for channel, version in versions.items():
            skeleton_items.append(channel)
            encoded = encode_version(version)
            inline_none = channel in values and values[channel] is None
            skeleton_items.append(_INLINE_NONE + encoded if inline_none else encoded)
        record = lp_join([lp_join(skeleton_items), cp_type, cp_data, md_type, md_data])
        member = keys.checkpoint_member(ns, checkpoint["id"])
        args: list[bytes | str] = [
            member,
            record,
            keys.lp(run_id_s) + member if run_id_s else b"",
            ref.thread_id,
        ]
        for channel, version in new_versions.items():
            if channel in values and values[channel] is not None:
                args.append(keys.blob_field(ns, channel, encode_version(version)))
                args.append(self._dump_blob(values[channel], f"channel {channel!r}"))
        return ref, run_id_s or None, args

    def put_writes_args(
        self,
        ref: ThreadRef,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> list[bytes | str]:
        """Script arguments of PUT_WRITES after the fencing triple and thread id:
        the checkpoint member, then (task id, idx, record, special) per write."""
        if ref.checkpoint_id is None:
            raise InvalidCheckpointConfigError(
                "put_writes needs config['configurable']['checkpoint_id']"
            )
        args: list[bytes | str] = [
            keys.checkpoint_member(ref.checkpoint_ns, ref.checkpoint_id)
        ]
        for position, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, position)
            type_, data = self._dump(value, f"write to channel {channel!r}")
            args.append(task_id)
            args.append(str(idx))
            args.append(lp_join([task_id, str(idx), channel, task_path, type_, data]))
            args.append("1" if channel in WRITES_IDX_MAP else "0")
        return args

    # decoding ----------------------------------------------------------------------

    def _load(self, type_: bytes, data: bytes, where: str) -> Any:
        try:
            return self.serde.loads_typed((type_.decode(), data))
        except BlockedTypeError as exc:
            raise BlockedTypeError(
                exc.module, exc.name, method=exc.method, where=where
            ) from None
        except Exception as exc:  # any decoder failure means corrupt data
            raise CorruptCheckpointError(
                f"cannot decode {where}: {type(exc).__name__}: {exc}"
            ) from exc

    def decode_write(
        self, record: bytes, where: str
    ) -> tuple[tuple[str, str, int], PendingWrite]:
        """A stored write as (sort key, pending write)."""
        try:
            task_id, idx, channel, task_path, type_, data = lp_split(record)
        except ValueError as exc:
            raise CorruptCheckpointError(f"malformed write record in {where}") from exc
        value = self._load(type_, data, f"write in {where}")
        key = writes_sort_key(task_path.decode(), task_id.decode(), int(idx))
        return key, (task_id.decode(), channel.decode(), value)

    def decode_writes(
        self, records: Sequence[bytes] | bytes, where: str
    ) -> list[PendingWrite]:
        """Stored writes (a list, or one concatenated value) in sort-key order."""
        if isinstance(records, bytes):
            try:
                records = lp_split(records)
            except ValueError as exc:
                raise CorruptCheckpointError(f"malformed writes of {where}") from exc
        decoded = [self.decode_write(r, where) for r in records]
        decoded.sort(key=lambda item: item[0])
        return [w for _, w in decoded]

    def decode_bundle(self, ref: ThreadRef, bundle: Sequence[Any]) -> CheckpointTuple:
        """A GET/LIST script bundle as a :class:`CheckpointTuple`."""
        member, record, blobs, writes = bundle
        ns = ref.checkpoint_ns
        prefix_len = len(keys.ns_part(ns))
        checkpoint_id = to_str(member[prefix_len:])
        where = f"thread {ref.thread_id!r} ns {ns!r} checkpoint {checkpoint_id!r}"
        try:
            skeleton, cp_type, cp_data, md_type, md_data = lp_split(record)
            skel = lp_split(skeleton)
        except ValueError as exc:
            raise CorruptCheckpointError(f"malformed record of {where}") from exc
        checkpoint: Any = self._load(cp_type, cp_data, f"checkpoint of {where}")
        metadata: Any = self._load(md_type, md_data, f"metadata of {where}")
        if not isinstance(checkpoint, dict) or not isinstance(metadata, dict):
            raise CorruptCheckpointError(f"checkpoint of {where} is not a mapping")
        values: dict[str, Any] = {}
        versions: dict[str, str | int | float] = {}
        stored_blobs = iter(blobs)
        for i in range(2, len(skel) - 1, 2):
            channel = skel[i].decode()
            item = skel[i + 1].decode()
            if item.startswith(_INLINE_NONE):
                versions[channel] = decode_version(item[1:])
                values[channel] = None
                continue
            versions[channel] = decode_version(item)
            blob = next(stored_blobs, b"")
            if blob:
                values[channel] = self._load_blob(
                    blob, f"channel {channel!r} of {where}"
                )
        checkpoint["channel_versions"] = versions
        checkpoint["channel_values"] = values
        parent_id = to_str(skel[0]) if skel else ""
        config: RunnableConfig = {
            "configurable": {
                "thread_id": ref.thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        parent_config: RunnableConfig | None = (
            {
                "configurable": {
                    "thread_id": ref.thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": parent_id,
                }
            }
            if parent_id
            else None
        )
        return CheckpointTuple(
            config=config,
            checkpoint=cast(Checkpoint, checkpoint),
            metadata=cast(CheckpointMetadata, metadata),
            parent_config=parent_config,
            pending_writes=self.decode_writes(writes, where),
        )

    def decode_history(
        self, ref: ThreadRef, reply: Sequence[Any], channels: Sequence[str]
    ) -> dict[str, DeltaChannelHistory]:
        """A HISTORY script reply as per-channel histories (writes oldest first)."""
        collected: dict[str, list[PendingWrite]] = {c: [] for c in channels}
        seeds: dict[str, Any] = {}
        where = f"thread {ref.thread_id!r} ns {ref.checkpoint_ns!r}"
        # reply[0] is the target member; then ancestors nearest first
        for _member, writes, seed_pairs in reversed(list(reply[1:])):
            for task_id, channel, value in self.decode_writes(writes, where):
                if channel in collected:
                    collected[channel].append((task_id, channel, value))
            for i in range(0, len(seed_pairs), 2):
                channel = to_str(seed_pairs[i])
                # a seed is a blob like any other: compressed when large
                value = self._load_blob(
                    seed_pairs[i + 1], f"channel {channel!r} of {where}"
                )
                if channel not in seeds:
                    seeds[channel] = value
        # a seed found at an ancestor subsumes writes at older ancestors: the script
        # stopped walking a channel there, so older writes were never collected.
        result: dict[str, DeltaChannelHistory] = {}
        for channel in channels:
            entry: DeltaChannelHistory = {"writes": collected[channel]}
            if channel in seeds:
                entry["seed"] = seeds[channel]
            result[channel] = entry
        return result

    def decode_metadata(self, record: bytes, where: str) -> dict[str, Any]:
        """Only the metadata of a checkpoint record."""
        try:
            _, _, _, md_type, md_data = lp_split(record)
        except ValueError as exc:
            raise CorruptCheckpointError(f"malformed record of {where}") from exc
        metadata = self._load(md_type, md_data, f"metadata of {where}")
        return cast(dict[str, Any], metadata)


def split_member(member: bytes) -> tuple[str, str]:
    """(checkpoint_ns, checkpoint_id) of an index member (decodes its length prefix).

    Raises :class:`CorruptCheckpointError` for a member no saver wrote."""
    try:
        colon = member.index(b":")
        length = int(member[:colon])
        ns = member[colon + 1 : colon + 1 + length]
        if length < 0 or len(ns) != length:
            raise ValueError("truncated namespace")
        return ns.decode(), member[colon + 1 + length :].decode()
    except ValueError as exc:  # UnicodeDecodeError included
        raise CorruptCheckpointError(
            f"malformed checkpoint index member {member[:60]!r}"
        ) from exc


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """Whether every (key, value) of ``filter`` equals the metadata's value."""
    return all(metadata.get(k) == v for k, v in filter.items())


def delta_channels(metadata: Mapping[str, Any]) -> list[str]:
    """Names of the ``DeltaChannel``s a checkpoint tracks (from its metadata)."""
    counters = metadata.get("counters_since_delta_snapshot") or {}
    return sorted(str(c) for c in counters)


def fence_args(options: SaverOptions, config: RunnableConfig | None) -> list[str]:
    """The (lease id, fence) script arguments: the config's token, else the saver's."""
    token = fencing_token_from_config(config or {}) or options.fencing_token
    if token is None:
        return ["", ""]
    return [token.lease_id, str(token.fence)]
