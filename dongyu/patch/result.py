"""The outcome of applying one patch."""

from __future__ import annotations

from dataclasses import dataclass, field

from dongyu.core.events import Event
from dongyu.core.labels import JSON


@dataclass(frozen=True)
class RecordError:
    """Why record ``index`` (0-based) of a patch was rejected."""

    index: int
    op: str | None
    reason: str
    """``"<code>: <detail>"``, e.g. ``"invalid_type: field 'p' must be an integer, got bool"``."""

    def to_dict(self) -> dict[str, JSON]:
        return {"index": self.index, "op": self.op, "reason": self.reason}


@dataclass(frozen=True)
class PatchResult:
    """``{applied, rejected, reason?}`` plus per-record reasons (spec 3).

    ``reason`` is ``invalid_patch: ...`` when the envelope was refused whole,
    ``duplicate_op_id`` when the op_id was seen before (nothing applied), the
    first record's reason when records were rejected, else ``None``.
    ``events`` are the changes made, in order (not part of :meth:`to_dict`).
    """

    op_id: str | None
    applied: int
    rejected: int
    reason: str | None = None
    errors: tuple[RecordError, ...] = ()
    duplicate: bool = False
    refused: bool = False
    events: tuple[Event, ...] = field(default=(), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when nothing was refused or rejected (a duplicate is ok)."""
        return not self.refused and self.rejected == 0

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "op_id": self.op_id,
            "applied": self.applied,
            "rejected": self.rejected,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.errors:
            out["errors"] = [e.to_dict() for e in self.errors]
        if self.duplicate:
            out["duplicate"] = True
        return out

    def summary(self) -> str:
        """One line for logs and the command line."""
        text = f"op_id={self.op_id} applied={self.applied} rejected={self.rejected}"
        if self.reason is not None:
            text += f" reason={self.reason}"
        return text
