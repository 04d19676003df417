"""The UI server's pure logic (spec 7.1, 7.2, 7.5).

- :meth:`UiCore.accept` validates a browser event, puts it in the mailbox
  (model -1, cell (0,0,1), ``ui_event``), runs ``forward_ui_events`` and
  returns the Matrix message(s) it produced;
- :meth:`UiCore.apply_delta` applies a ``snapshot_delta`` from the bridge
  (untrusted), records its hops (stamped ``ui_server.applied``) in
  :attr:`UiCore.traces` and returns the changes to push to browsers.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from dongyu.core.events import Event
from dongyu.core.labels import JSON, PIN_DECL_CELL, UI_MAILBOX_MODEL, Label
from dongyu.errors import ProgramError, ValidationError
from dongyu.messages.bus import BusMessage
from dongyu.messages.hops import parse_hops, stamp
from dongyu.messages.ui_event import UiEvent
from dongyu.patch.result import PatchResult
from dongyu.program.host import OutboxHost
from dongyu.program.runtime import Runtime
from dongyu.ui.trace import Trace, TraceLog

log = logging.getLogger("dongyu.ui.core")

FORWARD_FUNCTION = "forward_ui_events"
MAILBOX_KEY = "ui_event"


@dataclass(frozen=True)
class Accepted:
    op_id: str
    messages: tuple[dict[str, JSON], ...]
    seq: int = 0
    """The order in which this server accepted the event (1, 2, ...), which is the
    order its messages are sent to the management bus."""


def change_of(event: Event) -> dict[str, JSON] | None:
    """A table change as pushed to browsers, or ``None`` for events that are not changes."""
    if event.result != "applied" or event.cell is None or event.op not in ("add_label", "rm_label"):
        return None
    p, r, c = event.cell
    label = event.label if event.op == "add_label" else event.prev
    if label is None:
        return None
    change: dict[str, JSON] = {"model_id": event.model_id, "p": p, "r": r, "c": c, "k": label.k}
    if event.op == "add_label":
        change["t"], change["v"] = label.t, label.v
    else:
        change["removed"] = True
    return change


class UiCore:
    def __init__(self, runtime: Runtime, outbox: OutboxHost, *, traces_kept: int = 5000) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self.traces = TraceLog(traces_kept)
        self.accepted = 0
        self.duplicate_deltas = 0
        if runtime.find_function(FORWARD_FUNCTION) is None:
            raise ProgramError(
                f"the UI server's program model has no '{FORWARD_FUNCTION}' function"
            )
        runtime.table.ensure_model(UI_MAILBOX_MODEL)

    def accept(self, body: object, *, now_ms: int) -> Accepted:
        """Validate and forward one UI event. :class:`ValidationError` for bad input."""
        event = UiEvent.from_dict(body)
        op_id = event.op_id or f"ui-{uuid.uuid4().hex}"
        event = event.with_op_id(op_id)
        value = {**event.to_dict(), "timestamp": now_ms, "hops": stamp(None, "ui_server.received")}
        table = self.runtime.table
        table.put_label(
            UI_MAILBOX_MODEL, PIN_DECL_CELL, Label(MAILBOX_KEY, "event", value), op_id, now_ms
        )
        log.info("ui_event %s received: %s on model %d", op_id, event.action, event.target.model_id)
        runs = self.runtime.run_function(FORWARD_FUNCTION, trace_id=op_id, op_id=op_id)
        matrix, _ = self.outbox.drain()
        if not runs or not runs[0].ok:
            error = runs[0].error if runs else "not run"
            raise ProgramError(f"{FORWARD_FUNCTION} failed for {op_id}: {error}")
        self.accepted += 1
        return Accepted(op_id, tuple(matrix), self.accepted)

    def apply_delta(self, message: BusMessage) -> tuple[PatchResult, list[dict[str, JSON]]]:
        """Apply a ``snapshot_delta``'s patch (untrusted); the changes for browsers."""
        if message.type != "snapshot_delta":
            raise ValidationError(f"not a snapshot_delta: {message.type}")
        result = self.runtime.apply_patch(message.payload, trace_id=message.op_id)
        if result.duplicate:
            self.duplicate_deltas += 1
        else:
            self._remember_trace(message, ok=result.ok)
        changes = [c for c in (change_of(e) for e in result.events) if c is not None]
        if result.ok:
            log.info("snapshot_delta %s applied: %d change(s)", message.op_id, len(changes))
        else:
            log.warning("snapshot_delta %s: %s", message.op_id, result.reason)
        return result, changes

    def _remember_trace(self, message: BusMessage, *, ok: bool) -> None:
        payload = message.payload if isinstance(message.payload, dict) else {}
        try:
            hops = parse_hops(stamp(payload.get("hops"), "ui_server.applied"))
        except ValidationError:
            return
        self.traces.add(message.op_id, hops, ok=ok)

    def trace(self, op_id: str) -> list[dict[str, JSON]] | None:
        """The hops of the reply to ``op_id`` (or of the delta ``op_id``) applied here, the
        last being ``ui_server.applied``; ``None`` if none of the newest was for it."""
        found = self.traces.get(op_id)
        return None if found is None else [h.to_dict() for h in found.hops]

    def traces_since(self, seq: int, limit: int = 1000) -> list[Trace]:
        """The replies applied after the one numbered ``seq``, in the order applied."""
        return self.traces.since(seq, limit)
