"""The event log (spec 2): every change, and every refusal, is an event."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from dongyu.core.labels import JSON, CellKey, Label

APPLIED = "applied"
REJECTED = "rejected"

# Event ops. ``create_model`` is this port's addition (a model appearing is a
# change too); ``set_labels`` is kept for wire compatibility and unused in v0.
EVENT_OPS = frozenset({"add_label", "rm_label", "set_labels", "create_model", "error"})

DEFAULT_LOG_CAPACITY = 10_000


class Event(NamedTuple):
    """One entry of the event log. Immutable."""

    event_id: int
    ts: int | None
    """Wall-clock time in integer milliseconds, when the writer gave one."""
    op: str
    model_id: int | None
    cell: CellKey | None
    label: Label | None
    prev: Label | None
    result: str
    reason: str | None
    trace_id: str | None

    def to_dict(self) -> dict[str, JSON]:
        cell = self.cell
        return {
            "event_id": self.event_id,
            "ts": self.ts,
            "op": self.op,
            "model_id": self.model_id,
            "cell": None if cell is None else {"p": cell[0], "r": cell[1], "c": cell[2]},
            "label": None if self.label is None else self.label.to_dict(),
            "prev": None if self.prev is None else self.prev.to_dict(),
            "result": self.result,
            "reason": self.reason,
            "trace_id": self.trace_id,
        }


Listener = Callable[[Event], None]


class EventLog:
    """An append-only log with strictly increasing ``event_id``s.

    Memory is bounded: only the newest ``capacity`` events are kept in memory
    (older ones are dropped; ``event_id``s keep increasing). Listeners see
    every event as it is appended, so a host that needs all of them (an SSE
    stream, a persistent audit trail) subscribes instead of reading back.
    """

    __slots__ = ("_events", "_listeners", "_next_id")

    def __init__(self, capacity: int = DEFAULT_LOG_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._events: deque[Event] = deque(maxlen=capacity)
        self._next_id = 1
        self._listeners: list[Listener] = []

    @property
    def capacity(self) -> int:
        maxlen = self._events.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def last_id(self) -> int:
        """The ``event_id`` of the newest event (0 when none was appended)."""
        return self._next_id - 1

    def append(
        self,
        op: str,
        model_id: int | None = None,
        cell: CellKey | None = None,
        label: Label | None = None,
        prev: Label | None = None,
        result: str = APPLIED,
        reason: str | None = None,
        trace_id: str | None = None,
        ts: int | None = None,
    ) -> Event:
        """Append one event (positional arguments are the fast path)."""
        event = Event(self._next_id, ts, op, model_id, cell, label, prev, result, reason, trace_id)
        self._next_id += 1
        self._events.append(event)
        if self._listeners:
            for listener in self._listeners:
                listener(event)
        return event

    def extend(self, events: list[Event]) -> None:
        """Append events built by a bulk writer.

        Their ids must continue the log (``last_id + 1``, ``+ 2``, ...):
        :meth:`append` and this method are the only ways in.
        """
        if not events:
            return
        if (
            events[0].event_id != self._next_id
            or events[-1].event_id != self._next_id + len(events) - 1
        ):
            raise ValueError("bulk events must continue the log's ids")
        self._next_id += len(events)
        self._events.extend(events)
        if self._listeners:
            for event in events:
                for listener in self._listeners:
                    listener(event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every new event; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def since(self, event_id: int) -> list[Event]:
        """The events kept in memory whose id is greater than ``event_id``."""
        return [e for e in self._events if e.event_id > event_id]

    def __iter__(self) -> Iterator[Event]:
        return iter(tuple(self._events))

    def __len__(self) -> int:
        return len(self._events)
