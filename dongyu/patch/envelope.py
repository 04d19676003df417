"""The mt.v0 envelope: ``{"version": "mt.v0", "op_id": "<unique>", "records": [...]}``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dongyu.core.labels import JSON, type_name
from dongyu.errors import InvalidPatch

PATCH_VERSION = "mt.v0"
MAX_OP_ID_LENGTH = 256


@dataclass(frozen=True)
class Envelope:
    """A patch whose envelope is valid; its records are checked one by one when applied."""

    op_id: str
    records: list[Any]
    extra: dict[str, JSON] = field(default_factory=dict)
    """Other top-level fields (``action``, ``data``, ``timestamp``, ``trace`` ...)."""

    def to_dict(self) -> dict[str, JSON]:
        return {
            **self.extra,
            "version": PATCH_VERSION,
            "op_id": self.op_id,
            "records": self.records,
        }


def parse_envelope(obj: object) -> Envelope:
    """Check the envelope of a patch; :class:`InvalidPatch` says what is wrong."""
    if not isinstance(obj, dict):
        raise InvalidPatch(f"a patch must be a JSON object, got {type_name(obj)}")
    version = obj.get("version")
    if version != PATCH_VERSION:
        raise InvalidPatch(f"'version' must be {PATCH_VERSION!r}, got {version!r}")
    op_id = obj.get("op_id")
    if type(op_id) is not str or not op_id:
        raise InvalidPatch(f"'op_id' must be a non-empty string, got {type_name(op_id)}")
    if len(op_id) > MAX_OP_ID_LENGTH:
        raise InvalidPatch(f"'op_id' is longer than {MAX_OP_ID_LENGTH} characters")
    records = obj.get("records")
    if type(records) is not list:
        raise InvalidPatch(f"'records' must be a list, got {type_name(records)}")
    extra = {k: v for k, v in obj.items() if k not in ("version", "op_id", "records")}
    return Envelope(op_id, records, extra)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str | bytes) -> JSON:
    """Strict ``json.loads``: NaN and Infinity are refused (ValueError)."""
    return json.loads(text, parse_constant=_refuse_constant)


def loads_patch(text: str | bytes) -> Envelope:
    """Parse JSON text into a checked envelope; :class:`InvalidPatch` when it is not one."""
    try:
        obj = loads_json(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPatch(f"not JSON: {exc}") from exc
    return parse_envelope(obj)
