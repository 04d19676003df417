"""UiEvent.from_dict: the ``POST /ui_event`` body of spec 7.1."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dongyu.errors import ValidationError
from dongyu.messages.ui_event import ACTIONS, UiEvent
from dongyu.patch.envelope import MAX_OP_ID_LENGTH
from tests.unit.chain.common import body


def test_spec_shape_with_op_id() -> None:
    event = UiEvent.from_dict(body())
    assert (event.source, event.type, event.action, event.op_id) == (
        "ui_renderer",
        "label_add",
        "label_update",
        "op-1",
    )
    assert event.target.to_dict() == {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "input_value"}
    assert (event.value_t, event.value_v) == ("str", "#ff00ff")
    assert event.data() == {
        "target": {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "input_value"},
        "value": {"t": "str", "v": "#ff00ff"},
    }
    again = UiEvent.from_dict(event.to_dict())
    assert again == event


def test_spec_shape_without_op_id() -> None:
    raw = body(op_id=None)
    assert "meta" not in raw["payload"]
    event = UiEvent.from_dict(raw)
    assert event.op_id is None
    named = event.with_op_id("later")
    assert named.op_id == "later" and named.target == event.target and event.op_id is None
    raw["payload"]["meta"] = {}
    assert UiEvent.from_dict(raw).op_id is None


@pytest.mark.parametrize(
    ("action", "k", "value", "expect_k", "expect_t"),
    [
        ("label_add", "x", {"t": "int", "v": 3}, "x", "int"),
        ("label_update", "x", {"t": "json", "v": {"a": [1, None]}}, "x", "json"),
        ("label_remove", "x", None, "x", None),
        ("cell_clear", None, None, None, None),
        ("submodel_create", None, None, None, None),
    ],
)
def test_every_action(
    action: str, k: str | None, value: dict[str, Any] | None, expect_k: Any, expect_t: Any
) -> None:
    event = UiEvent.from_dict(body(action, k=k, value=value))
    assert event.action == action
    assert event.target.k == expect_k
    assert event.value_t == expect_t
    if value is None:
        assert "value" not in event.data()


def test_value_is_a_copy_with_sorted_keys() -> None:
    raw = body(value={"t": "json", "v": {"b": 1, "a": [2]}})
    event = UiEvent.from_dict(raw)
    raw["payload"]["value"]["v"]["a"].append(3)
    assert event.value_v == {"a": [2], "b": 1}
    assert list(event.value_v) == ["a", "b"]


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    raw = body()
    node = raw
    for name in path[:-1]:
        node = node[name]
    del node[path[-1]]
    return raw


def _with(path: tuple[str, ...], value: Any, raw: dict[str, Any] | None = None) -> Any:
    raw = raw if raw is not None else body()
    node = raw
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    return raw


BAD_BODIES: list[tuple[str, Any, str, str]] = [
    # (id, body, code, words the detail must contain)
    ("list", [], "invalid_type", "the body must be an object, got list"),
    ("string", "label_add", "invalid_type", "the body must be an object, got str"),
    ("null", None, "invalid_type", "the body must be an object, got null"),
    ("no source", _without(("source",)), "missing_field", "the body: missing field 'source'"),
    ("no type", _without(("type",)), "missing_field", "the body: missing field 'type'"),
    ("no payload", _without(("payload",)), "missing_field", "the body: missing field 'payload'"),
    ("empty source", _with(("source",), ""), "invalid_type", "'source' must be a non-empty string"),
    ("int type", _with(("type",), 3), "invalid_type", "'type' must be a non-empty string"),
    ("payload list", _with(("payload",), []), "invalid_type", "'payload' must be an object"),
    ("no action", _without(("payload", "action")), "missing_field", "payload: missing field 'action'"),
    ("unknown action", _with(("payload", "action"), "label_explode"), "unknown_action", "unknown action 'label_explode'"),
    ("null action", _with(("payload", "action"), None), "unknown_action", "unknown action None"),
    ("no target", _without(("payload", "target")), "missing_field", "payload: missing field 'target'"),
    ("target str", _with(("payload", "target"), "100"), "invalid_type", "'payload.target' must be an object, got str"),
    ("no model_id", _without(("payload", "target", "model_id")), "missing_field", "payload.target: missing field 'model_id'"),
    ("no c", _without(("payload", "target", "c")), "missing_field", "payload.target: missing field 'c'"),
    ("bool p", _with(("payload", "target", "p"), True), "invalid_type", "field 'p' must be an integer, got bool"),
    ("str r", _with(("payload", "target", "r"), "0"), "invalid_type", "field 'r' must be an integer, got str"),
    ("float model", _with(("payload", "target", "model_id"), 100.0), "invalid_type", "field 'model_id' must be an integer, got float"),
    ("null c", _with(("payload", "target", "c"), None), "invalid_type", "field 'c' must be an integer, got null"),
    ("huge p", _with(("payload", "target", "p"), 1 << 20_000), "invalid_value", "field 'p' is an integer of 20001 bits"),
    ("empty k", _with(("payload", "target", "k"), ""), "invalid_value", "payload.target: field 'k' must be a non-empty string"),
    ("int k", _with(("payload", "target", "k"), 7), "invalid_type", "payload.target: field 'k' must be a string, got int"),
    ("no k", _without(("payload", "target", "k")), "missing_field", "payload.target: missing field 'k'"),
    ("no value", _without(("payload", "value")), "missing_field", "payload: missing field 'value'"),
    ("value str", _with(("payload", "value"), "#ff00ff"), "invalid_type", "'payload.value' must be an object, got str"),
    ("no value.t", _without(("payload", "value", "t")), "missing_field", "payload.value: missing field 't'"),
    ("empty t", _with(("payload", "value", "t"), ""), "invalid_value", "payload.value: field 't' must be a non-empty string"),
    ("no value.v", _without(("payload", "value", "v")), "missing_field", "payload.value: missing field 'v'"),
    ("v NaN", _with(("payload", "value", "v"), math.nan), "invalid_json", "payload.value: 'v' is not JSON: non-finite float nan"),
    ("v inf", _with(("payload", "value", "v"), math.inf), "invalid_json", "non-finite float inf"),
    ("v -inf nested", _with(("payload", "value", "v"), {"a": [-math.inf]}), "invalid_json", "non-finite float -inf"),
    ("v set", _with(("payload", "value", "v"), {1, 2}), "invalid_json", "set is not a JSON value"),
    ("v tuple", _with(("payload", "value", "v"), (1,)), "invalid_json", "tuple is not a JSON value"),
    ("v bytes", _with(("payload", "value", "v"), b"x"), "invalid_json", "bytes is not a JSON value"),
    ("v int key", _with(("payload", "value", "v"), {1: "a"}), "invalid_json", "object key 1 is not a string"),
    ("meta list", _with(("payload", "meta"), []), "invalid_type", "'payload.meta' must be an object, got list"),
    ("op_id int", _with(("payload", "meta", "op_id"), 5), "invalid_value", "'payload.meta.op_id' must be a non-empty string"),
    ("op_id list", _with(("payload", "meta", "op_id"), ["a"]), "invalid_value", "'payload.meta.op_id' must be a non-empty string"),
    ("op_id empty", _with(("payload", "meta", "op_id"), ""), "invalid_value", "'payload.meta.op_id' must be a non-empty string"),
    ("op_id long", _with(("payload", "meta", "op_id"), "x" * (MAX_OP_ID_LENGTH + 1)), "invalid_value", f"at most {MAX_OP_ID_LENGTH} characters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "code", "words"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_bad_bodies_are_refused_precisely(raw: Any, code: str, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        UiEvent.from_dict(raw)
    assert err.value.code == code
    assert words in err.value.detail
    assert str(err.value) == f"{code}: {err.value.detail}"


def test_missing_k_is_fine_where_no_key_is_needed() -> None:
    assert UiEvent.from_dict(body("cell_clear", k=None)).target.k is None
    # ...but a k that is there is checked even then
    with pytest.raises(ValidationError) as err:
        UiEvent.from_dict(body("cell_clear", k=""))
    assert err.value.code == "invalid_value"


def test_op_id_at_the_limit_is_accepted() -> None:
    op_id = "x" * MAX_OP_ID_LENGTH
    assert UiEvent.from_dict(body(op_id=op_id)).op_id == op_id


# ---- property: nothing but ValidationError, whatever the input -------------

KEYS = ["source", "type", "payload", "action", "meta", "op_id", "target", "model_id"]
KEYS += ["p", "r", "c", "k", "value", "t", "v", *ACTIONS]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(1 << 14_100), max_value=1 << 14_100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(KEYS),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner, max_size=6),
    ),
    max_leaves=40,
)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> Any:
    """A valid body with one field at some depth replaced by an arbitrary value."""
    raw = body(
        draw(st.sampled_from(ACTIONS)),
        k=draw(st.sampled_from(["input_value", None])),
        op_id=draw(st.sampled_from(["op-1", None])),
    )
    paths: list[tuple[str, ...]] = [("source",), ("type",), ("payload",)]
    paths += [("payload", n) for n in ("action", "meta", "target", "value")]
    paths += [("payload", "target", n) for n in ("model_id", "p", "r", "c", "k")]
    path = draw(st.sampled_from(paths))
    node = raw
    for name in path[:-1]:
        if not isinstance(node.get(name), dict):
            return raw
        node = node[name]
    if draw(st.booleans()):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = draw(json_like)
    return raw


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_like, mutated_bodies()))
def test_from_dict_raises_only_validation_error(raw: Any) -> None:
    try:
        event = UiEvent.from_dict(raw)
    except ValidationError as exc:
        assert exc.code in {
            "invalid_type",
            "missing_field",
            "unknown_action",
            "invalid_value",
            "invalid_json",
        }
        assert exc.detail
    else:
        assert event.action in ACTIONS
        assert UiEvent.from_dict(event.to_dict()) == event
