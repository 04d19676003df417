"""Bounded memory of the ``op_id``s already applied.

A receiver keeps the set of seen ``op_id``s and applies each once (spec 3).
The set cannot grow forever, so it is a FIFO window: the newest ``capacity``
distinct ``op_id``s. A retransmission is caught as long as fewer than
``capacity`` other patches arrived in between. Memory is about
``capacity * (90 + len(op_id))`` bytes (about 12 MB for the default
100,000 ids of 30 characters).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

DEFAULT_CAPACITY = 100_000


class OpIdWindow:
    """The newest ``capacity`` distinct op_ids, oldest evicted first."""

    __slots__ = ("_capacity", "_seen")

    def __init__(self, capacity: int = DEFAULT_CAPACITY, seen: Iterable[str] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        for op_id in seen:
            self.add(op_id)

    @property
    def capacity(self) -> int:
        return self._capacity

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, op_id: str) -> None:
        """Remember ``op_id`` (moving it to the newest end if it was known)."""
        seen = self._seen
        if op_id in seen:
            seen.move_to_end(op_id)
            return
        seen[op_id] = None
        if len(seen) > self._capacity:
            seen.popitem(last=False)

    def export(self) -> list[str]:
        """The remembered op_ids, oldest first (to persist and restore the window)."""
        return list(self._seen)
