"""The browser's event, ``POST /ui_event`` (spec 7.1).

``{source: "ui_renderer", type: "label_add", payload: {action, meta: {op_id},
target: {model_id, p, r, c, k}, value: {t, v}}}``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dongyu.core.labels import JSON, NotJSON, check_int, check_key, clean_json, type_name
from dongyu.errors import RecordRejected, ValidationError
from dongyu.messages.show import show
from dongyu.patch.envelope import MAX_OP_ID_LENGTH

ACTIONS = ("label_add", "label_update", "label_remove", "cell_clear", "submodel_create")
"""Actions a UI may send, and the mt.v0 op each becomes at the bridge (spec 7.3)."""
ACTION_TO_OP = {
    "label_add": "add_label",
    "label_update": "add_label",
    "label_remove": "rm_label",
    "cell_clear": "cell_clear",
    "submodel_create": "create_model",
}
_NEEDS_KEY = frozenset({"label_add", "label_update", "label_remove"})
_NEEDS_VALUE = frozenset({"label_add", "label_update"})


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise ValidationError(f"{where}: missing field '{name}'", code="missing_field")
    return obj[name]


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(
            f"{where} must be an object, got {type_name(value)}", code="invalid_type"
        )
    return value


@dataclass(frozen=True)
class Target:
    model_id: int
    p: int
    r: int
    c: int
    k: str | None = None

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"model_id": self.model_id, "p": self.p, "r": self.r, "c": self.c}
        if self.k is not None:
            out["k"] = self.k
        return out


@dataclass(frozen=True)
class UiEvent:
    """A validated UI event. ``op_id`` is ``None`` when the browser sent none."""

    source: str
    type: str
    action: str
    op_id: str | None
    target: Target
    value_t: str | None = None
    value_v: JSON = None

    @classmethod
    def from_dict(cls, raw: object) -> UiEvent:
        """Validate a request body; :class:`ValidationError` names the first problem."""
        body = _obj(raw, "the body")
        source = _field(body, "source", "the body")
        kind = _field(body, "type", "the body")
        for name, value in (("source", source), ("type", kind)):
            if not isinstance(value, str) or not value:
                raise ValidationError(f"'{name}' must be a non-empty string", code="invalid_type")
        payload = _obj(_field(body, "payload", "the body"), "'payload'")
        action = _field(payload, "action", "payload")
        if action not in ACTIONS:
            raise ValidationError(
                f"unknown action {show(action)} (known: {', '.join(ACTIONS)})",
                code="unknown_action",
            )
        meta = _obj(payload.get("meta", {}), "'payload.meta'")
        op_id = meta.get("op_id")
        if op_id is not None and (
            not isinstance(op_id, str) or not op_id or len(op_id) > MAX_OP_ID_LENGTH
        ):
            raise ValidationError(
                f"'payload.meta.op_id' must be a non-empty string of at most {MAX_OP_ID_LENGTH} characters",
                code="invalid_value",
            )
        target_raw = _obj(_field(payload, "target", "payload"), "'payload.target'")
        try:
            coords = [
                check_int(n, _field(target_raw, n, "payload.target"))
                for n in ("model_id", "p", "r", "c")
            ]
            k = None
            if action in _NEEDS_KEY or "k" in target_raw:
                k = check_key("k", _field(target_raw, "k", "payload.target"))
        except RecordRejected as exc:
            raise ValidationError(f"payload.target: {exc.detail}", code=exc.code) from exc
        target = Target(coords[0], coords[1], coords[2], coords[3], k)
        value_t: str | None = None
        value_v: JSON = None
        if action in _NEEDS_VALUE or "value" in payload:
            value = _obj(_field(payload, "value", "payload"), "'payload.value'")
            try:
                value_t = check_key("t", _field(value, "t", "payload.value"))
                value_v = clean_json(_field(value, "v", "payload.value"))
            except RecordRejected as exc:
                raise ValidationError(f"payload.value: {exc.detail}", code=exc.code) from exc
            except NotJSON as exc:
                raise ValidationError(
                    f"payload.value: 'v' is not JSON: {exc}", code="invalid_json"
                ) from exc
        return cls(source, kind, action, op_id, target, value_t, value_v)

    def with_op_id(self, op_id: str) -> UiEvent:
        return UiEvent(
            self.source, self.type, self.action, op_id, self.target, self.value_t, self.value_v
        )

    def data(self) -> dict[str, JSON]:
        """What travels as ``data`` in the bus message: the target and the value."""
        out: dict[str, JSON] = {"target": self.target.to_dict()}
        if self.value_t is not None:
            out["value"] = {"t": self.value_t, "v": self.value_v}
        return out

    def to_dict(self) -> dict[str, JSON]:
        payload: dict[str, JSON] = {
            "action": self.action,
            "meta": {"op_id": self.op_id},
            **self.data(),
        }
        return {"source": self.source, "type": self.type, "payload": payload}
