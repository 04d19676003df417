"""Matrix <-> MQTT translations of the MBR (spec 7.3, 7.4). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dongyu.core.labels import JSON
from dongyu.errors import InvalidPatch, ValidationError
from dongyu.messages.bus import BusMessage
from dongyu.messages.hops import parse_hops, stamp
from dongyu.messages.ui_event import ACTION_TO_OP, UiEvent
from dongyu.patch.envelope import PATCH_VERSION, parse_envelope

EVENT_PIN = "event_in"
"""A model that declares this ``PIN_IN`` gets UI events forwarded whole (spec 7.3)."""
PATCH_IN_PIN = "patch_in"
"""The pin translated UI events are published on for other models (the worker routes
an undeclared pin to ``mqtt_in``, spec 6)."""
PATCH_OUT_PIN = "patch_out"


_MODEL_LEVEL = re.compile(r"0|-?[1-9][0-9]*", re.ASCII)


def topic_for(base: str, model_id: int, pin: str) -> str:
    return f"{base.strip('/')}/{model_id}/{pin}"


def parse_topic(base: str, topic: str) -> tuple[int, str]:
    """``<base>/<model_id>/<pin>`` -> ``(model_id, pin)``; :class:`ValidationError` otherwise."""
    prefix = base.strip("/") + "/"
    if not topic.startswith(prefix):
        raise ValidationError(f"topic {topic!r} is not under {prefix!r}")
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 2 or not parts[1]:
        raise ValidationError(f"topic {topic!r} is not <base>/<model_id>/<pin>")
    # Only the form topic_for writes: int() would also take " 7", "+7", "0_7" or non-ASCII digits.
    if not _MODEL_LEVEL.fullmatch(parts[0]):
        raise ValidationError(f"topic {topic!r}: model id {parts[0]!r} is not an integer")
    try:
        model_id = int(parts[0])
    except ValueError:  # more than 4,300 digits
        raise ValidationError(f"topic {topic!r}: model id is too long") from None
    return model_id, parts[1]


def _ui_event_of(message: BusMessage) -> UiEvent:
    """Re-validate the UI event carried by a ``ui_event`` bus message."""
    if message.type != "ui_event":
        raise ValidationError(f"expected a ui_event message, got {message.type!r}")
    data = message.data if isinstance(message.data, dict) else None
    if data is None:
        raise ValidationError("ui_event message has no 'data' object")
    payload: dict[str, Any] = {"action": message.action, "meta": {"op_id": message.op_id}, **data}
    return UiEvent.from_dict({"source": "bus", "type": "ui_event", "payload": payload})


def ui_event_to_mqtt(
    message: BusMessage, base: str, has_event_pin: Callable[[int], bool]
) -> tuple[str, dict[str, JSON]]:
    """The topic and mt.v0 payload the MBR publishes for a ``ui_event`` (spec 7.3).

    A model with an event pin gets the event whole (``records: []`` plus
    ``action``, ``data``, ``timestamp``) on that pin; any other model gets the
    action translated to one record, on ``patch_in``. ``hops`` go along, with
    the MBR's own stamp.
    """
    event = _ui_event_of(message)
    model_id = event.target.model_id
    common: dict[str, JSON] = {
        "version": PATCH_VERSION,
        "op_id": message.op_id,
        "action": event.action,
        "data": event.data(),
        "timestamp": message.timestamp,
        "hops": stamp([h.to_dict() for h in message.hops], "mbr.to_mqtt"),
    }
    if has_event_pin(model_id):
        return topic_for(base, model_id, EVENT_PIN), {**common, "records": []}
    return topic_for(base, model_id, PATCH_IN_PIN), {**common, "records": [_record(event)]}


def _record(event: UiEvent) -> dict[str, JSON]:
    op = ACTION_TO_OP[event.action]
    target = event.target
    if op == "create_model":
        spec = event.value_v if isinstance(event.value_v, dict) else {}
        name = spec.get("name") if isinstance(spec.get("name"), str) else f"model_{target.model_id}"
        kind = spec.get("type") if isinstance(spec.get("type"), str) else "data"
        return {"op": op, "model_id": target.model_id, "name": name, "type": kind}
    record: dict[str, JSON] = {"op": op, **target.to_dict()}
    if op == "add_label":
        record["t"] = event.value_t
        record["v"] = event.value_v
    if op == "cell_clear":
        record.pop("k", None)
    return record


def patch_out_to_matrix(topic: str, base: str, payload: object) -> BusMessage:
    """The ``snapshot_delta`` message for an mt.v0 patch on ``<base>/<model>/patch_out`` (7.4)."""
    model_id, pin = parse_topic(base, topic)
    if pin != PATCH_OUT_PIN:
        raise ValidationError(f"topic {topic!r} is not a patch_out topic")
    try:
        envelope = parse_envelope(payload)
    except InvalidPatch as exc:
        raise ValidationError(f"patch_out payload refused: {exc}", code="invalid_patch") from exc
    assert isinstance(payload, dict)
    hops = stamp(payload.get("hops"), "mbr.to_matrix")
    patch = {**envelope.to_dict(), "hops": hops}
    return BusMessage(
        "snapshot_delta",
        envelope.op_id,
        payload=patch,
        source_model_id=model_id,
        hops=parse_hops(hops),
    )
