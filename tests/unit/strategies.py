"""Hypothesis strategies for random valid ModelTables and mt.v0 patches."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dongyu.core.table import ModelTable
from dongyu.patch.engine import PatchEngine

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Small ids collide often (last write wins, overwrites, shared cells); big ones
# (incl. beyond 64 bits) probe the integer handling.
ints = st.one_of(
    st.integers(-3, 3),
    st.integers(-(2**70), 2**70),
)
model_ids = st.one_of(st.sampled_from([0, 1, 2, -1, -2, -10, 100]), ints)
keys = st.one_of(
    st.sampled_from(["a", "b", "status", "bg_color", "x y", "ключ", "🙂", "k\x00"]),
    st.text(min_size=1, max_size=8),
)
_FORBIDDEN_TYPES = {"function", "func.python", "func.js"}
label_types = st.one_of(
    st.sampled_from(
        [
            "str",
            "int",
            "float",
            "bool",
            "json",
            "event",
            "PIN_IN",
            "PIN_OUT",
            "IN",
            "OUT",
            "MGMT_IN",
            "MGMT_OUT",
        ]
    ),
    st.text(min_size=1, max_size=6).filter(lambda t: t not in _FORBIDDEN_TYPES),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(-0.0),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=10)
model_types = st.one_of(st.sampled_from(["main", "data", "ui", "system"]), names)


@st.composite
def add_label_records(draw: Any, model_id: Any = model_ids) -> dict[str, Any]:
    return {
        "op": "add_label",
        "model_id": draw(model_id),
        "p": draw(ints),
        "r": draw(ints),
        "c": draw(ints),
        "k": draw(keys),
        "t": draw(label_types),
        "v": draw(json_values),
    }


@st.composite
def create_model_records(draw: Any) -> dict[str, Any]:
    model_id = draw(model_ids.filter(lambda i: i != 0))
    id_field = draw(st.sampled_from(["model_id", "id"]))
    return {
        "op": "create_model",
        id_field: model_id,
        "name": draw(names),
        "type": draw(model_types),
    }


function_records = st.builds(
    lambda k, body: {
        "op": "add_label",
        "model_id": -10,
        "p": 0,
        "r": 0,
        "c": 1,
        "k": k,
        "t": "function",
        "v": body,
    },
    st.one_of(st.text(min_size=1, max_size=6), st.just("f\x00")),
    st.sampled_from(["return 1", "x = ctx\nreturn None", "", "# only a comment", "# c\nreturn 2"]),
)

valid_records = st.one_of(
    add_label_records(), add_label_records(), create_model_records(), function_records
)
record_lists = st.lists(valid_records, max_size=25)


def build_table(records: list[dict[str, Any]], op_id: str = "build") -> ModelTable:
    """A table made by applying ``records`` as one trusted patch (model creation on)."""
    table = ModelTable()
    result = PatchEngine(table, clock=None).apply(
        {"version": "mt.v0", "op_id": op_id, "records": records},
        trusted=True,
        allow_create_model=True,
    )
    assert result.ok, result.to_dict()
    return table


tables = record_lists.map(build_table)
