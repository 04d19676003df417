"""The management-bus envelope (spec 5): content of a ``dy.bus.v0`` Matrix event.

``{version: "v0", type, op_id, ...}`` with ``type`` one of ``ui_event``,
``snapshot_delta``, ``pin_out``, ``mbr_ready``, ``error``, and optionally
``trace``, ``source_model_id``, ``action``, ``data``, ``payload``,
``timestamp`` (integer ms) and this port's ``hops`` (see
:mod:`dongyu.messages.hops`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dongyu.core.labels import JSON, NotJSON, clean_json, type_name
from dongyu.errors import ValidationError
from dongyu.messages.hops import Hop, parse_hops
from dongyu.messages.show import show
from dongyu.patch.envelope import MAX_OP_ID_LENGTH

BUS_VERSION = "v0"
EVENT_TYPE = "dy.bus.v0"
"""The Matrix event type of bus messages."""
MESSAGE_TYPES = ("ui_event", "snapshot_delta", "pin_out", "mbr_ready", "error")


@dataclass(frozen=True)
class BusMessage:
    type: str
    op_id: str
    action: str | None = None
    data: JSON = None
    payload: JSON = None
    source_model_id: int | None = None
    timestamp: int | None = None
    trace: dict[str, JSON] | None = None
    hops: tuple[Hop, ...] = field(default=())

    @classmethod
    def from_dict(cls, raw: object) -> BusMessage:
        if not isinstance(raw, dict):
            raise ValidationError(f"a bus message must be an object, got {type_name(raw)}")
        if raw.get("version") != BUS_VERSION:
            raise ValidationError(
                f"'version' must be {BUS_VERSION!r}, got {show(raw.get('version'))}"
            )
        kind = raw.get("type")
        if kind not in MESSAGE_TYPES:
            raise ValidationError(
                f"unknown message type {show(kind)} (known: {', '.join(MESSAGE_TYPES)})"
            )
        op_id = raw.get("op_id")
        if not isinstance(op_id, str) or not op_id or len(op_id) > MAX_OP_ID_LENGTH:
            raise ValidationError(
                f"'op_id' must be a non-empty string of at most {MAX_OP_ID_LENGTH} characters"
            )
        action = raw.get("action")
        if action is not None and not isinstance(action, str):
            raise ValidationError("'action' must be a string")
        for name in ("source_model_id", "timestamp"):
            value = raw.get(name)
            if value is not None and type(value) is not int:
                raise ValidationError(f"'{name}' must be an integer, got {type_name(value)}")
        trace = raw.get("trace")
        if trace is not None and not isinstance(trace, dict):
            raise ValidationError("'trace' must be an object")
        try:
            data = clean_json(raw.get("data"))
            payload = clean_json(raw.get("payload"))
            trace = clean_json(trace)
        except NotJSON as exc:
            raise ValidationError(f"not JSON: {exc}") from exc
        return cls(
            kind,
            op_id,
            action,
            data,
            payload,
            raw.get("source_model_id"),
            raw.get("timestamp"),
            trace,
            parse_hops(raw.get("hops")),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": BUS_VERSION, "type": self.type, "op_id": self.op_id}
        for name in ("action", "data", "payload", "source_model_id", "timestamp", "trace"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.hops:
            out["hops"] = [h.to_dict() for h in self.hops]
        return out
