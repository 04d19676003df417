"""Per-hop timestamps carried in the messages, to follow one event through the chain.

A message's ``hops`` field is a list of ``{"hop": "<component>.<step>", "ts_us": int}``:
integer microseconds since the epoch (Matrix refuses floats in event content,
and canonical JSON integers must stay below 2**53, which nanoseconds would
not).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dongyu.core.labels import JSON
from dongyu.errors import ValidationError
from dongyu.messages.show import show

MAX_HOPS = 64
MAX_TS_US = 2**53 - 1
"""The largest ``ts_us``: Matrix's canonical JSON refuses integers beyond 2**53 - 1."""


def now_us() -> int:
    return time.time_ns() // 1_000


@dataclass(frozen=True)
class Hop:
    hop: str
    ts_us: int

    def to_dict(self) -> dict[str, JSON]:
        return {"hop": self.hop, "ts_us": self.ts_us}

    @classmethod
    def from_dict(cls, raw: object) -> Hop:
        if not isinstance(raw, dict):
            raise ValidationError(f"a hop must be an object, got {type(raw).__name__}")
        hop, ts = raw.get("hop"), raw.get("ts_us")
        if not isinstance(hop, str) or not hop:
            raise ValidationError("a hop needs a non-empty string 'hop'")
        if type(ts) is not int or not 0 <= ts <= MAX_TS_US:
            raise ValidationError(
                f"hop {show(hop)} needs an integer 'ts_us' from 0 to {MAX_TS_US}, got {show(ts)}"
            )
        return cls(hop, ts)


def parse_hops(raw: object) -> tuple[Hop, ...]:
    """The ``hops`` field of a message (absent or ``null`` gives none)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError(f"'hops' must be a list, got {type(raw).__name__}")
    if len(raw) > MAX_HOPS:
        raise ValidationError(f"'hops' has more than {MAX_HOPS} entries")
    return tuple(Hop.from_dict(h) for h in raw)


def stamp(hops: Any, name: str, ts_us: int | None = None) -> list[dict[str, JSON]]:
    """A copy of the ``hops`` list with one more entry (``hops`` may be absent)."""
    base = [h.to_dict() for h in parse_hops(hops)][-(MAX_HOPS - 1) :]
    new = Hop.from_dict({"hop": name, "ts_us": now_us() if ts_us is None else ts_us})
    return [*base, new.to_dict()]
