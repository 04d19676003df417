"""Labels, label types and the checks every label write goes through (spec 2, 3)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from dongyu.errors import RecordRejected

JSON = Any
"""A JSON value: None, bool, int, finite float, str, list of JSON, dict str -> JSON."""

CellKey = tuple[int, int, int]

# Cells with a meaning of their own (spec 2, 4, 6).
CONFIG_CELL: CellKey = (0, 0, 0)
PIN_DECL_CELL: CellKey = (0, 0, 1)
PIN_MAILBOX_CELL: CellKey = (0, 1, 1)

# Reserved models.
ROOT_MODEL = 0
UI_MAILBOX_MODEL = -1
EDITOR_STATE_MODEL = -2
SYSTEM_MODEL = -10

DATA_TYPES = frozenset({"str", "int", "float", "bool", "json"})
FUNCTION_TYPES = frozenset({"function", "func.python"})
UNSUPPORTED_FUNCTION_TYPES = frozenset({"func.js"})
PIN_TYPES = frozenset({"PIN_IN", "PIN_OUT", "IN", "OUT", "MGMT_OUT", "MGMT_IN"})
EVENT_TYPE = "event"

CLEARABLE_TYPES = frozenset({"str", "int", "bool", "json"})
RESERVED_KEYS = frozenset({"ui_event", "ui_event_error", "ui_event_last_op_id"})
_PROTECTED_EXACT = frozenset({"pin_in", "pin_out", "v1n_id", "data_type"})
_PROTECTED_PREFIXES = ("run_", "mqtt_", "matrix_", "CONNECT_")
_PROTECTED_SUFFIXES = ("_CONNECT",)

MAX_JSON_DEPTH = 64
MAX_INT_BITS = 14_000
"""Integers are limited to this many bits (about 4,200 digits): CPython refuses to turn
larger ones into text (its 4,300-digit limit), so they could not be serialised."""
INT_LIMIT = 1 << MAX_INT_BITS
INT_FLOOR = -INT_LIMIT


class Label(NamedTuple):
    """One label ``{k, t, v}``; immutable, compared by value."""

    k: str
    t: str
    v: JSON

    def to_dict(self) -> dict[str, JSON]:
        return {"k": self.k, "t": self.t, "v": self.v}


def is_clearable(label: Label) -> bool:
    """Whether ``cell_clear`` may remove this label (spec 3)."""
    k = label.k
    return (
        label.t in CLEARABLE_TYPES
        and k not in RESERVED_KEYS
        and k not in _PROTECTED_EXACT
        and not k.startswith(_PROTECTED_PREFIXES)
        and not k.endswith(_PROTECTED_SUFFIXES)
    )


def is_function_type(t: str) -> bool:
    return t in FUNCTION_TYPES or t in UNSUPPORTED_FUNCTION_TYPES


class NotJSON(ValueError):
    """Raised by :func:`clean_json` with the reason a value is not JSON."""


def clean_json(v: object, depth: int = 0) -> JSON:
    """A deep copy of ``v`` if it is a JSON value, else :class:`NotJSON` saying why.

    Refused: non-finite floats, tuples, sets, bytes, objects, dicts with
    non-string keys, nesting deeper than :data:`MAX_JSON_DEPTH`. Scalars are
    returned as they are; lists and dicts are copied, so the table never
    shares a mutable container with its callers, and the keys of every
    object are put in sorted order (what makes snapshots canonical cheaply).
    """
    tv = type(v)
    if tv is str or tv is bool or v is None:
        return v
    if tv is int:
        if INT_FLOOR < v < INT_LIMIT:  # type: ignore[operator]
            return v
        raise NotJSON(f"integer of {v.bit_length()} bits is too large (limit {MAX_INT_BITS} bits)")  # type: ignore[attr-defined]
    if tv is float:
        if math.isfinite(v):  # type: ignore[arg-type]
            return v
        raise NotJSON(f"non-finite float {v!r} is not JSON")
    if depth >= MAX_JSON_DEPTH:
        raise NotJSON(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(v, list) and tv is list:
        return [clean_json(item, depth + 1) for item in v]
    if isinstance(v, dict) and tv is dict:
        for key in v:
            if type(key) is not str:
                raise NotJSON(f"object key {key!r} is not a string")
        return {key: clean_json(v[key], depth + 1) for key in sorted(v)}
    raise NotJSON(f"{tv.__name__} is not a JSON value")


def json_problem(v: object) -> str | None:
    """Why ``v`` is not a JSON value (see :func:`clean_json`), or ``None`` when it is one."""
    try:
        clean_json(v)
    except NotJSON as exc:
        return str(exc)
    return None


def copy_json(v: JSON) -> JSON:
    """A deep copy of a JSON value already known to be valid (scalars as they are)."""
    tv = type(v)
    if tv is list:
        return [copy_json(item) for item in v]
    if tv is dict:
        return {key: copy_json(item) for key, item in v.items()}
    return v


def type_name(v: object) -> str:
    """The JSON-ish name of a value's type, for error messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(
        type(v), type(v).__name__
    )


def check_int(field: str, value: object) -> int:
    """``value`` if it is an int (a bool is not), else :class:`RecordRejected`."""
    if type(value) is int:
        if INT_FLOOR < value < INT_LIMIT:
            return value
        raise RecordRejected(
            f"field '{field}' is an integer of {value.bit_length()} bits (limit {MAX_INT_BITS})",
            code="invalid_value",
        )
    raise RecordRejected(
        f"field '{field}' must be an integer, got {type_name(value)}", code="invalid_type"
    )


def check_key(field: str, value: object) -> str:
    """``value`` if it is a non-empty string, else :class:`RecordRejected`."""
    if type(value) is str and value:
        return value
    if type(value) is str:
        raise RecordRejected(f"field '{field}' must be a non-empty string", code="invalid_value")
    raise RecordRejected(
        f"field '{field}' must be a string, got {type_name(value)}", code="invalid_type"
    )


def check_label(k: object, t: object, v: object) -> Label:
    """Build a :class:`Label` from untrusted parts, or raise :class:`RecordRejected`.

    Trust (who may write ``function`` labels) is not checked here; see
    :mod:`dongyu.patch.engine`.
    """
    key = check_key("k", k)
    typ = check_key("t", t)
    try:
        v = clean_json(v)
    except NotJSON as exc:
        raise RecordRejected(f"field 'v' is not JSON: {exc}", code="invalid_json") from None
    if typ in UNSUPPORTED_FUNCTION_TYPES:
        raise RecordRejected(
            f"label '{key}' has type '{typ}': JavaScript functions are not supported by this "
            "port; write the function in Python with type 'function' or 'func.python'",
            code="unsupported_function_type",
        )
    if typ in FUNCTION_TYPES and type(v) is not str:
        raise RecordRejected(
            f"function label '{key}' must hold Python source as a string, got {type_name(v)}",
            code="invalid_function",
        )
    return Label(key, typ, v)
