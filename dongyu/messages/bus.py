"""The management-bus envelope (spec 5): content of a ``dy.bus.v0`` Matrix event.

``{version: "v0", type, op_id, ...}`` with ``type`` one of ``ui_event``,
``snapshot_delta``, ``pin_out``, ``mbr_ready``, ``error``, and optionally
``trace``, ``source_model_id``, ``action``, ``data``, ``payload``,
``timestamp`` (integer ms) and this port's ``hops`` (see
:mod:`dongyu.messages.hops`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dongyu.core.labels import JSON, NotJSON, clean_json, type_name
from dongyu.errors import ValidationError
from dongyu.messages.hops import Hop, parse_hops
from dongyu.messages.show import show
from dongyu.patch.envelope import MAX_OP_ID_LENGTH, loads_json

BUS_VERSION = "v0"
EVENT_TYPE = "dy.bus.v0"
"""The Matrix event type of bus messages."""
MESSAGE_TYPES = ("ui_event", "snapshot_delta", "pin_out", "mbr_ready", "error")


MATRIX_INT_MAX = 2**53 - 1
MAX_JSON_TEXT = 1_000_000


def matrix_safe(value: object) -> bool:
    """Whether Matrix accepts ``value`` in event content (canonical JSON: no floats,
    integers within +-(2**53-1))."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -MATRIX_INT_MAX <= value <= MATRIX_INT_MAX
    if isinstance(value, list):
        return all(matrix_safe(v) for v in value)
    if isinstance(value, dict):
        return all(matrix_safe(v) for v in value.values())
    return False


def _field_or_text(raw: dict[str, Any], name: str) -> JSON:
    """``raw[name]``, or the JSON text in ``raw[name + '_json']``, cleaned."""
    text = raw.get(f"{name}_json")
    if text is None:
        return clean_json(raw.get(name))
    if not isinstance(text, str) or len(text) > MAX_JSON_TEXT:
        raise NotJSON(f"'{name}_json' must be JSON text of at most {MAX_JSON_TEXT} characters")
    try:
        return clean_json(loads_json(text))
    except (ValueError, RecursionError) as exc:
        raise NotJSON(f"'{name}_json' is not JSON text: {exc}") from None


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
            if value is not None and not -MATRIX_INT_MAX <= value <= MATRIX_INT_MAX:
                raise ValidationError(f"'{name}' is outside Matrix's integer range (+-2**53-1)")
        trace = raw.get("trace")
        if trace is not None and not isinstance(trace, dict):
            raise ValidationError("'trace' must be an object")
        try:
            data = _field_or_text(raw, "data")
            payload = _field_or_text(raw, "payload")
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
        """The event content. ``data`` / ``payload`` that Matrix would refuse (floats,
        integers beyond 2**53) travel as JSON text in ``data_json`` / ``payload_json``."""
        out: dict[str, Any] = {"version": BUS_VERSION, "type": self.type, "op_id": self.op_id}
        for name in ("action", "data", "payload", "source_model_id", "timestamp", "trace"):
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("data", "payload") and not matrix_safe(value):
                out[f"{name}_json"] = json.dumps(value, separators=(",", ":"), allow_nan=False)
            else:
                out[name] = value
        if self.hops:
            out["hops"] = [h.to_dict() for h in self.hops]
        return out
