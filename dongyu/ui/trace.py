"""The hops of the replies the UI server applied, kept for a while and readable by op_id.

Each applied ``snapshot_delta`` is recorded with its ``hops`` (plus the UI
server's own ``ui_server.applied`` stamp) and a sequence number in the order
the server applied them. The newest ``capacity`` records are kept. A lookup by
the op_id of the UI event also finds its reply (``<op_id>:reply``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from dongyu.core.labels import JSON
from dongyu.messages.hops import Hop

REPLY_SUFFIX = ":reply"
DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True)
class Trace:
    seq: int
    op_id: str
    hops: tuple[Hop, ...]
    ok: bool = True

    def to_dict(self) -> dict[str, JSON]:
        return {
            "seq": self.seq,
            "op_id": self.op_id,
            "ok": self.ok,
            "hops": [h.to_dict() for h in self.hops],
        }


class TraceLog:
    """A bounded, ordered record of applied replies."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._by_op: OrderedDict[str, Trace] = OrderedDict()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._by_op)

    @property
    def last_seq(self) -> int:
        return self._seq

    def add(self, op_id: str, hops: tuple[Hop, ...], *, ok: bool = True) -> Trace:
        """Record one applied reply; a repeated op_id replaces its older record."""
        self._seq += 1
        trace = Trace(self._seq, op_id, hops, ok)
        self._by_op.pop(op_id, None)
        self._by_op[op_id] = trace
        while len(self._by_op) > self.capacity:
            self._by_op.popitem(last=False)
        return trace

    def get(self, op_id: str) -> Trace | None:
        """The record of ``op_id``, or of its reply ``<op_id>:reply``."""
        found = self._by_op.get(op_id)
        if found is None and not op_id.endswith(REPLY_SUFFIX):
            found = self._by_op.get(op_id + REPLY_SUFFIX)
        return found

    def since(self, seq: int, limit: int = 1000) -> list[Trace]:
        """Records with a sequence number above ``seq``, oldest first, at most ``limit``."""
        out: list[Trace] = []
        if seq >= self._seq or limit <= 0:
            return out
        # records are in seq order: walk back from the newest to the first one wanted
        newer: list[Trace] = []
        for trace in reversed(self._by_op.values()):
            if trace.seq <= seq:
                break
            newer.append(trace)
        newer.reverse()
        out.extend(newer[:limit])
        return out
