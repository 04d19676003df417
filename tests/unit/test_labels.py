"""Labels: validation of k/t/v, JSON checks, copies, the cell_clear protection rule."""

from __future__ import annotations

import math

import pytest

from dongyu.core.labels import (
    MAX_JSON_DEPTH,
    Label,
    check_int,
    check_key,
    check_label,
    copy_json,
    is_clearable,
    json_problem,
)
from dongyu.errors import RecordRejected


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, 2**200, 1.5, -0.0, "", "ü🙂", [], {}, [1, [2, {"a": None}]]],
)
def test_json_values_are_accepted(value: object) -> None:
    assert json_problem(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "non-finite"),
        (math.inf, "non-finite"),
        (-math.inf, "non-finite"),
        ([1, [math.nan]], "non-finite"),
        ({"a": {"b": math.inf}}, "non-finite"),
        ({1, 2}, "set is not a JSON value"),
        ((1, 2), "tuple is not a JSON value"),
        (b"x", "bytes is not a JSON value"),
        (object(), "object is not a JSON value"),
        ({1: "a"}, "object key 1 is not a string"),
        ({"a": [{"b": (1,)}]}, "tuple"),
    ],
)
def test_non_json_values_are_refused(value: object, fragment: str) -> None:
    problem = json_problem(value)
    assert problem is not None
    assert fragment in problem


def test_nesting_is_bounded() -> None:
    ok: object = 1
    for _ in range(MAX_JSON_DEPTH):
        ok = [ok]
    assert json_problem(ok) is None
    assert "nested deeper" in (json_problem([ok]) or "")


def test_check_int_refuses_bool_and_float() -> None:
    assert check_int("p", -7) == -7
    for bad in (True, False, 1.0, "1", None):
        with pytest.raises(RecordRejected) as err:
            check_int("p", bad)
        assert err.value.code == "invalid_type"


def test_check_key() -> None:
    assert check_key("k", "x") == "x"
    with pytest.raises(RecordRejected) as err:
        check_key("k", "")
    assert err.value.code == "invalid_value"
    with pytest.raises(RecordRejected) as err:
        check_key("k", 3)
    assert err.value.code == "invalid_type"
    assert str(err.value).startswith("invalid_type: field 'k' must be a string, got int")


def test_check_label_copies_containers() -> None:
    value = {"a": [1, 2]}
    label = check_label("k", "json", value)
    value["a"].append(3)
    assert label == Label("k", "json", {"a": [1, 2]})


@pytest.mark.parametrize(
    ("k", "t", "v", "code"),
    [
        ("f", "func.js", "return 1", "unsupported_function_type"),
        ("f", "function", 5, "invalid_function"),
        ("f", "func.python", None, "invalid_function"),
        ("k", "json", math.nan, "invalid_json"),
        ("", "str", "x", "invalid_value"),
        ("k", "", "x", "invalid_value"),
        (None, "str", "x", "invalid_type"),
    ],
)
def test_check_label_refusals(k: object, t: object, v: object, code: str) -> None:
    with pytest.raises(RecordRejected) as err:
        check_label(k, t, v)
    assert err.value.code == code


def test_copy_json_is_deep() -> None:
    original = {"a": [{"b": 1}], "c": "s"}
    copy = copy_json(original)
    assert copy == original
    copy["a"][0]["b"] = 2
    assert original["a"][0]["b"] == 1


@pytest.mark.parametrize(
    "k",
    [
        "ui_event",
        "ui_event_error",
        "ui_event_last_op_id",
        "pin_in",
        "pin_out",
        "v1n_id",
        "data_type",
        "run_",
        "run_x",
        "mqtt_topic_base",
        "matrix_room_id",
        "CONNECT_",
        "CONNECT_a",
        "_CONNECT",
        "a_CONNECT",
    ],
)
def test_protected_keys_are_not_clearable(k: str) -> None:
    assert not is_clearable(Label(k, "str", "v"))


@pytest.mark.parametrize("t", ["float", "event", "function", "PIN_IN", "IN", "OUT", "custom"])
def test_protected_types_are_not_clearable(t: str) -> None:
    assert not is_clearable(Label("plain", t, 1))


@pytest.mark.parametrize(
    "k", ["plain", "Run_x", "xrun_y", "connect_a", "pin_inx", "mqtt", "matrix", "a_CONNECTx"]
)
@pytest.mark.parametrize("t", ["str", "int", "bool", "json"])
def test_plain_data_labels_are_clearable(k: str, t: str) -> None:
    assert is_clearable(Label(k, t, 1))
