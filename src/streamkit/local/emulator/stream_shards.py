"""Shards that live like DynamoDB's: several per table, rolling over, trimmed after 24 hours.

moto keeps one list of stream records per table (``StreamShard.items``; a record's sequence
number is its index plus the shard's starting number) and reports it as one shard that never
closes. DynamoDB Streams splits a stream into shards that close and hand over to child shards
(about every four hours, "shards are ephemeral: they are created and deleted automatically",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Processing),
and keeps records for 24 hours.

Here moto's list stays the table's record log (so moto's own writes, transactions and their
roll-back keep working), and a :class:`ShardChain` spreads its entries over logical shards:

- a table starts with :data:`Settings.initial_shards` open shards; an item's key picks the
  shard (its hash), so one item's records stay in order in one shard;
- an open shard that holds ``shard_max_records`` records, or is older than ``shard_seconds``
  and holds any, closes when the next record for it arrives (or at DescribeStream); a child
  shard (``ParentShardId``) takes its place;
- records older than ``retention_seconds`` are trimmed: they are no longer read, and a closed
  shard whose records are all trimmed leaves DescribeStream.

Sequence numbers stay the log index plus a starting number, now different for every table (moto
starts every table at the same number), so they rise within a shard and along its lineage.

Settings come from the environment at the moment they are needed (see :class:`Settings`), so
a test can shorten them for the in-process emulator.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogicalShard", "Settings", "ShardChain", "apply_shard_patches", "chain_of"]

_ATTRIBUTE = "_streamkit_chain"
_chain_lock = threading.Lock()
_table_counter = itertools.count()


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw is not None else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """The stream's clock, from ``STREAMKIT_EMULATOR_*`` environment variables.

    ====================================  =========  ============================================
    variable                              default    meaning
    ====================================  =========  ============================================
    STREAMKIT_EMULATOR_SHARDS             1          open shards a new table's stream starts with
    STREAMKIT_EMULATOR_SHARD_MAX_RECORDS  0 (none)   records after which a shard closes
    STREAMKIT_EMULATOR_SHARD_SECONDS      14400      age after which a shard closes (AWS: ~4 h)
    STREAMKIT_EMULATOR_ITERATOR_SECONDS   900        shard iterator lifetime (AWS: 15 minutes)
    STREAMKIT_EMULATOR_RETENTION_SECONDS  86400      how long records stay (AWS: 24 hours)
    ====================================  =========  ============================================
    """

    initial_shards: int = 1
    shard_max_records: int = 0
    shard_seconds: float = 4 * 3600.0
    iterator_seconds: float = 900.0
    retention_seconds: float = 24 * 3600.0

    @classmethod
    def from_env(cls) -> Settings:
        """The settings the environment gives now (built again only when it changed)."""
        raw = tuple(os.environ.get(name) for name in _ENV_NAMES)
        cached = _settings_cache.get(raw)
        if cached is None:
            _settings_cache.clear()
            cached = _settings_cache[raw] = cls._parse()
        return cached

    @classmethod
    def _parse(cls) -> Settings:
        return cls(
            initial_shards=max(1, int(_env_float("STREAMKIT_EMULATOR_SHARDS", 1))),
            shard_max_records=max(0, int(_env_float("STREAMKIT_EMULATOR_SHARD_MAX_RECORDS", 0))),
            shard_seconds=_env_float("STREAMKIT_EMULATOR_SHARD_SECONDS", 4 * 3600.0),
            iterator_seconds=_env_float("STREAMKIT_EMULATOR_ITERATOR_SECONDS", 900.0),
            retention_seconds=_env_float("STREAMKIT_EMULATOR_RETENTION_SECONDS", 24 * 3600.0),
        )


_ENV_NAMES = (
    "STREAMKIT_EMULATOR_SHARDS",
    "STREAMKIT_EMULATOR_SHARD_MAX_RECORDS",
    "STREAMKIT_EMULATOR_SHARD_SECONDS",
    "STREAMKIT_EMULATOR_ITERATOR_SECONDS",
    "STREAMKIT_EMULATOR_RETENTION_SECONDS",
)
_settings_cache: dict[tuple[str | None, ...], Settings] = {}


def _new_shard_id(now: float) -> str:
    # AWS's form: shardId-<20 digits>-<8 hex>, e.g. shardId-00000001541626099285-f35f62ef.
    return f"shardId-{int(now * 1000):020d}-{uuid.uuid4().hex[:8]}"


@dataclass
class LogicalShard:
    """One shard: the log indices of its records, in order."""

    shard_id: str
    parent_id: str | None
    opened_at: float  # epoch seconds
    first_index: int  # the log length when it opened: its starting sequence number
    indices: list[int] = field(default_factory=list)
    closed: bool = False

    def position_of(self, index: int) -> int:
        """Where ``index`` (or the first later index) sits in this shard's list."""
        return bisect.bisect_left(self.indices, index)


class ShardChain:
    """The logical shards over one moto StreamShard's record log."""

    def __init__(self, moto_shard: Any, settings: Settings) -> None:
        self.moto_shard = moto_shard
        now = time.time()
        self.base: int = int(moto_shard.starting_sequence_number)
        self.epochs: list[float] = []  # per log index: when the record was written
        start = len(moto_shard.items)
        self.shards: list[LogicalShard] = []
        self.open: list[LogicalShard] = []
        for _ in range(settings.initial_shards):
            shard = LogicalShard(_new_shard_id(now), None, now, start)
            self.shards.append(shard)
            self.open.append(shard)
        for index in range(start):  # records written before the chain existed (none, usually)
            self.epochs.append(now)
            self.open[0].indices.append(index)

    # -- writes ----------------------------------------------------------------------------

    def sync(self) -> None:
        """Forget log entries a cancelled transaction removed (moto truncates its list)."""
        length = len(self.moto_shard.items)
        if len(self.epochs) <= length:
            return
        del self.epochs[length:]
        for shard in self.shards:
            while shard.indices and shard.indices[-1] >= length:
                shard.indices.pop()

    def place(self, index: int, keys: Any, settings: Settings) -> None:
        """File the record at log ``index`` (just appended) under its key's open shard."""
        self.sync()
        if index < len(self.epochs):  # filed when the chain was built over an existing log
            return
        now = time.time()
        while len(self.epochs) < index:  # defensive: keep epochs aligned with the log
            self.epochs.append(now)
        self.epochs.append(now)
        slot = (
            zlib.crc32(json.dumps(keys, sort_keys=True).encode()) % len(self.open)
            if len(self.open) > 1
            else 0
        )
        shard = self.open[slot]
        if self._due(shard, now, settings):
            shard = self._roll_over(slot, index, now)
        shard.indices.append(index)

    def roll_over_aged(self, settings: Settings) -> None:
        """Close every open shard past its age that holds records (DescribeStream calls it)."""
        now = time.time()
        for slot, shard in enumerate(list(self.open)):
            if shard.indices and now - shard.opened_at >= settings.shard_seconds:
                self._roll_over(slot, len(self.moto_shard.items), now)

    @staticmethod
    def _due(shard: LogicalShard, now: float, settings: Settings) -> bool:
        if not shard.indices:
            return False
        if settings.shard_max_records and len(shard.indices) >= settings.shard_max_records:
            return True
        return now - shard.opened_at >= settings.shard_seconds

    def _roll_over(self, slot: int, next_index: int, now: float) -> LogicalShard:
        parent = self.open[slot]
        parent.closed = True
        child = LogicalShard(_new_shard_id(now), parent.shard_id, now, next_index)
        self.shards.append(child)
        self.open[slot] = child
        return child

    # -- reads -----------------------------------------------------------------------------

    def sequence_number(self, index: int) -> int:
        return self.base + index

    def find(self, shard_id: str) -> LogicalShard | None:
        return next((s for s in self.shards if s.shard_id == shard_id), None)

    def trim_index(self, settings: Settings, now: float | None = None) -> int:
        """The first log index still within the retention period."""
        horizon = (now if now is not None else time.time()) - settings.retention_seconds
        return bisect.bisect_left(self.epochs, horizon)

    def visible_shards(self, settings: Settings) -> list[LogicalShard]:
        """Shards DescribeStream lists: every open one, and closed ones with untrimmed records."""
        trimmed = self.trim_index(settings)
        return [s for s in self.shards if not s.closed or (s.indices and s.indices[-1] >= trimmed)]


def chain_of(moto_shard: Any) -> ShardChain:
    chain: ShardChain | None = getattr(moto_shard, _ATTRIBUTE, None)
    if chain is None:
        with _chain_lock:
            chain = getattr(moto_shard, _ATTRIBUTE, None)
            if chain is None:
                chain = ShardChain(moto_shard, Settings.from_env())
                setattr(moto_shard, _ATTRIBUTE, chain)
    return chain


def _starting_sequence_number() -> int:
    # Unique per table, rising with time, 22 digits like AWS's (21 to 40 allowed).
    return int(time.time() * 1000) * 10**9 + (next(_table_counter) % 1000) * 10**6


def apply_shard_patches() -> None:
    """Give each stream its own starting number and a chain fed by every write (idempotent)."""
    from moto.dynamodb.models import table as table_models

    shard_cls = table_models.StreamShard
    if getattr(shard_cls.add, "_streamkit_chained", False):
        return
    original_init: Callable[..., None] = shard_cls.__init__
    original_add: Callable[[Any, Any, Any], None] = shard_cls.add

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.starting_sequence_number = _starting_sequence_number()
        chain_of(self)  # built now: the settings at table creation decide the initial shards

    def add(self: Any, old: Any, new: Any) -> None:
        before = len(self.items)
        original_add(self, old, new)
        if len(self.items) > before:
            record = self.items[-1].record
            chain_of(self).place(
                len(self.items) - 1, record["dynamodb"]["Keys"], Settings.from_env()
            )

    add._streamkit_chained = True  # type: ignore[attr-defined]
    shard_cls.__init__ = __init__  # type: ignore[method-assign]
    shard_cls.add = add  # type: ignore[method-assign]
