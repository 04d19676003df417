"""The persistence contract (spec 2); implementations live in :mod:`dongyu.store`.

- ``load(checkpoint_id=None)``: the newest flushed snapshot, or the one of a
  given checkpoint; ``None`` when nothing was ever flushed.
- ``flush(snapshot)``: make ``snapshot`` the current state; returns its id.
- ``checkpoint(reason)``: keep the current state under a new id, with a
  reason, so it can be loaded later even after more flushes.
"""

from __future__ import annotations

from typing import Any, Protocol

Snapshot = dict[str, Any]


class Store(Protocol):
    def load(self, checkpoint_id: int | None = None) -> Snapshot | None: ...

    def flush(self, snapshot: Snapshot) -> int: ...

    def checkpoint(self, reason: str) -> int: ...
