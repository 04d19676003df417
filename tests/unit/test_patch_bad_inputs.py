"""A corpus of bad inputs: each refused or rejected with its reason, nothing else changed."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dongyu.core.snapshot import snapshot_bytes
from dongyu.core.table import ModelTable
from dongyu.errors import InvalidPatch
from dongyu.patch.engine import PatchEngine
from dongyu.patch.envelope import loads_patch
from dongyu.program import Runtime

FUNC_SRC = "return 1"


def _setup() -> tuple[ModelTable, PatchEngine]:
    """Model 1 with a label, model -10 with a function, and an engine on them."""
    table = ModelTable()
    engine = PatchEngine(table, clock=lambda: 5)
    result = engine.apply(
        {
            "version": "mt.v0",
            "op_id": "setup",
            "records": [
                {"op": "create_model", "model_id": 1, "name": "one", "type": "data"},
                {"op": "create_model", "model_id": -10, "name": "system", "type": "system"},
                {
                    "op": "add_label",
                    "model_id": 1,
                    "p": 0,
                    "r": 0,
                    "c": 0,
                    "k": "a",
                    "t": "str",
                    "v": "x",
                },
                {
                    "op": "add_label",
                    "model_id": -10,
                    "p": 0,
                    "r": 0,
                    "c": 0,
                    "k": "fn",
                    "t": "function",
                    "v": FUNC_SRC,
                },
            ],
        },
        trusted=True,
        allow_create_model=True,
    )
    assert result.ok
    return table, engine


# ---- whole envelopes ----------------------------------------------------------

_GOOD_RECORDS = [
    {"op": "add_label", "model_id": 1, "p": 0, "r": 0, "c": 0, "k": "z", "t": "int", "v": 1}
]

BAD_ENVELOPES: list[tuple[str, Any, str]] = [
    ("list", [{"version": "mt.v0"}], "must be a JSON object, got list"),
    ("string", "mt.v0", "got str"),
    ("null", None, "got null"),
    ("number", 5, "got int"),
    ("no version", {"op_id": "x", "records": []}, "'version'"),
    ("wrong version", {"version": "mt.v1", "op_id": "x", "records": []}, "'mt.v1'"),
    ("version null", {"version": None, "op_id": "x", "records": []}, "'version'"),
    ("no op_id", {"version": "mt.v0", "records": _GOOD_RECORDS}, "'op_id'"),
    ("empty op_id", {"version": "mt.v0", "op_id": "", "records": _GOOD_RECORDS}, "'op_id'"),
    ("int op_id", {"version": "mt.v0", "op_id": 7, "records": _GOOD_RECORDS}, "got int"),
    ("long op_id", {"version": "mt.v0", "op_id": "x" * 257, "records": []}, "longer than"),
    ("no records", {"version": "mt.v0", "op_id": "x"}, "'records' must be a list, got null"),
    ("records null", {"version": "mt.v0", "op_id": "x", "records": None}, "got null"),
    (
        "records dict",
        {"version": "mt.v0", "op_id": "x", "records": {"0": _GOOD_RECORDS[0]}},
        "got object",
    ),
    ("records str", {"version": "mt.v0", "op_id": "x", "records": "[]"}, "got str"),
]


@pytest.mark.parametrize(
    ("envelope", "fragment"), [c[1:] for c in BAD_ENVELOPES], ids=[c[0] for c in BAD_ENVELOPES]
)
def test_bad_envelope_is_refused_whole(envelope: Any, fragment: str) -> None:
    table, engine = _setup()
    before, last_id = snapshot_bytes(table), table.log.last_id
    result = engine.apply(envelope, trusted=True, allow_create_model=True)
    assert result.refused and not result.ok
    assert result.reason is not None and result.reason.startswith("invalid_patch: ")
    assert fragment in result.reason
    assert (result.applied, result.rejected) == (0, 0)
    assert snapshot_bytes(table) == before
    new = table.log.since(last_id)
    assert len(new) == 1
    assert (new[0].op, new[0].result, new[0].reason) == ("error", "rejected", result.reason)


def test_refused_envelope_does_not_burn_its_op_id() -> None:
    table, engine = _setup()
    refused = engine.apply({"version": "mt.v0", "op_id": "same", "records": None})
    assert refused.refused and refused.op_id == "same"
    assert table.log.since(table.log.last_id - 1)[0].trace_id == "same"
    ok = engine.apply({"version": "mt.v0", "op_id": "same", "records": _GOOD_RECORDS})
    assert ok.ok and ok.applied == 1 and not ok.duplicate


@pytest.mark.parametrize(
    "text",
    [
        '{"version": "mt.v0", "op_id": "x", "records": [], "n": NaN}',
        '{"version": "mt.v0", "op_id": "x", "records": [{"v": Infinity}]}',
        '{"version": "mt.v0", "op_id": "x", "records": [{"v": [-Infinity]}]}',
        b"\xff\xfe\x00garbage",
        "not json at all",
        "",
        '{"version": "mt.v0", "op_id": "x", "records": []',
    ],
)
def test_loads_patch_refuses_non_json(text: str | bytes) -> None:
    with pytest.raises(InvalidPatch) as err:
        loads_patch(text)
    assert str(err.value).startswith("invalid_patch: not JSON")


def test_loads_patch_refuses_json_that_is_no_patch() -> None:
    with pytest.raises(InvalidPatch) as err:
        loads_patch('{"version": "mt.v0", "op_id": "x", "records": 3}')
    assert "'records' must be a list" in str(err.value)


def test_loads_patch_keeps_extra_fields() -> None:
    env = loads_patch(b'{"version":"mt.v0","op_id":"x","records":[],"action":"a","data":{"v":1}}')
    assert env.op_id == "x" and env.records == []
    assert env.extra == {"action": "a", "data": {"v": 1}}
    assert env.to_dict()["action"] == "a"


# ---- records ------------------------------------------------------------------


def _label(**over: Any) -> dict[str, Any]:
    rec = {"op": "add_label", "model_id": 1, "p": 0, "r": 0, "c": 0, "k": "b", "t": "str", "v": "y"}
    rec.update(over)
    return rec


def _without(rec: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != field}


_RM = {"op": "rm_label", "model_id": 1, "p": 0, "r": 0, "c": 0, "k": "a"}
_CLEAR = {"op": "cell_clear", "model_id": 1, "p": 0, "r": 0, "c": 0}
_CREATE = {"op": "create_model", "model_id": 3, "name": "three", "type": "data"}


def _nested(depth: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v]
    return v


# (id, record, code, detail fragment, trusted, allow_create_model)
BAD_RECORDS: list[tuple[str, Any, str, str, bool, bool]] = [
    ("int record", 5, "invalid_record", "must be an object, got int", True, False),
    ("list record", [1], "invalid_record", "got list", True, False),
    ("null record", None, "invalid_record", "got null", True, False),
    ("str record", "add_label", "invalid_record", "got str", True, False),
    ("no op", _without(_label(), "op"), "missing_field", "'op'", True, False),
    ("unknown op", _label(op="frobnicate"), "unknown_op", "'frobnicate'", True, False),
    ("int op", _label(op=3), "unknown_op", "3", True, False),
    ("op later version", _label(op="batch_update"), "unknown_op", "batch_update", True, False),
]
for _f in ("model_id", "p", "r", "c", "k", "t", "v"):
    BAD_RECORDS.append(
        (f"add_label no {_f}", _without(_label(), _f), "missing_field", f"'{_f}'", True, False)
    )
for _f in ("model_id", "p", "r", "c", "k"):
    BAD_RECORDS.append(
        (f"rm_label no {_f}", _without(_RM, _f), "missing_field", f"'{_f}'", True, False)
    )
for _f in ("model_id", "p", "r", "c"):
    BAD_RECORDS.append(
        (f"cell_clear no {_f}", _without(_CLEAR, _f), "missing_field", f"'{_f}'", True, False)
    )
BAD_RECORDS += [
    (
        "create no id",
        _without(_CREATE, "model_id"),
        "missing_field",
        "'model_id' (or 'id')",
        True,
        True,
    ),
    ("create no name", _without(_CREATE, "name"), "missing_field", "'name'", True, True),
    ("create no type", _without(_CREATE, "type"), "missing_field", "'type'", True, True),
    # wrong types
    ("string p", _label(p="0"), "invalid_type", "'p' must be an integer, got str", True, False),
    ("float r", _label(r=1.0), "invalid_type", "'r' must be an integer, got float", True, False),
    (
        "bool model_id",
        _label(model_id=True),
        "invalid_type",
        "'model_id' must be an integer, got bool",
        True,
        True,
    ),
    ("bool c", _label(c=False), "invalid_type", "'c' must be an integer, got bool", True, False),
    ("None k", _label(k=None), "invalid_type", "'k' must be a string, got null", True, False),
    ("empty k", _label(k=""), "invalid_value", "'k' must be a non-empty string", True, False),
    ("empty t", _label(t=""), "invalid_value", "'t' must be a non-empty string", True, False),
    ("int k", _label(k=5), "invalid_type", "'k' must be a string, got int", True, False),
    ("list t", _label(t=["str"]), "invalid_type", "'t' must be a string, got list", True, False),
    (
        "rm bool p",
        {**_RM, "p": True},
        "invalid_type",
        "'p' must be an integer, got bool",
        True,
        False,
    ),
    ("rm int k", {**_RM, "k": 1}, "invalid_type", "'k' must be a string", True, False),
    ("clear float c", {**_CLEAR, "c": 0.0}, "invalid_type", "'c' must be an integer", True, False),
    (
        "create str id",
        {**_CREATE, "model_id": "3"},
        "invalid_type",
        "'model_id' must be an integer",
        True,
        True,
    ),
    (
        "create bool id",
        {"op": "create_model", "id": True, "name": "n", "type": "t"},
        "invalid_type",
        "'id' must be an integer, got bool",
        True,
        True,
    ),
    ("create empty name", {**_CREATE, "name": ""}, "invalid_value", "'name'", True, True),
    ("create int type", {**_CREATE, "type": 1}, "invalid_type", "'type'", True, True),
    # non-finite floats
    ("nan", _label(t="float", v=math.nan), "invalid_json", "non-finite float", True, False),
    ("inf", _label(t="float", v=math.inf), "invalid_json", "non-finite float", True, False),
    ("-inf", _label(t="float", v=-math.inf), "invalid_json", "non-finite float", True, False),
    ("nan in list", _label(t="json", v=[1, [math.nan]]), "invalid_json", "non-finite", True, False),
    (
        "inf in dict",
        _label(t="json", v={"a": {"b": math.inf}}),
        "invalid_json",
        "non-finite",
        True,
        False,
    ),
    (
        "-inf in list in dict",
        _label(t="json", v={"a": [0, -math.inf]}),
        "invalid_json",
        "non-finite",
        True,
        False,
    ),
    # non-JSON values
    ("set", _label(t="json", v={1, 2}), "invalid_json", "set is not a JSON value", True, False),
    ("tuple", _label(t="json", v=(1, 2)), "invalid_json", "tuple is not a JSON value", True, False),
    ("bytes", _label(t="json", v=b"ab"), "invalid_json", "bytes is not a JSON value", True, False),
    (
        "object",
        _label(t="json", v=object()),
        "invalid_json",
        "object is not a JSON value",
        True,
        False,
    ),
    (
        "int key",
        _label(t="json", v={1: "a"}),
        "invalid_json",
        "object key 1 is not a string",
        True,
        False,
    ),
    ("too deep", _label(t="json", v=_nested(70)), "invalid_json", "nested deeper", True, False),
    # functions
    (
        "func.js",
        _label(t="func.js", v="return 1"),
        "unsupported_function_type",
        "not supported",
        True,
        False,
    ),
    (
        "function not str",
        _label(t="function", v={"src": "x"}),
        "invalid_function",
        "Python source",
        True,
        False,
    ),
    (
        "untrusted add function",
        _label(k="g", t="function", v=FUNC_SRC),
        "untrusted_function",
        "cannot add function label 'g'",
        False,
        False,
    ),
    (
        "untrusted add func.python",
        _label(k="g", t="func.python", v=FUNC_SRC),
        "untrusted_function",
        "cannot add",
        False,
        False,
    ),
    (
        "untrusted overwrite function",
        _label(model_id=-10, k="fn", t="str", v="x"),
        "untrusted_function",
        "cannot overwrite function label 'fn'",
        False,
        False,
    ),
    (
        "untrusted replace function",
        _label(model_id=-10, k="fn", t="function", v="return 2"),
        "untrusted_function",
        "cannot add",
        False,
        False,
    ),
    (
        "untrusted event over function",
        _label(model_id=-10, k="fn", t="event", v=None),
        "untrusted_function",
        "cannot overwrite",
        False,
        False,
    ),
    (
        "untrusted remove function",
        {**_RM, "model_id": -10, "k": "fn"},
        "untrusted_function",
        "cannot remove function label 'fn'",
        False,
        False,
    ),
    (
        "syntax error",
        _label(model_id=-10, k="bad", t="function", v="return ("),
        "function_syntax_error",
        "function 'bad' does not compile",
        True,
        False,
    ),
    (
        "syntax error line",
        _label(model_id=-10, k="bad", t="function", v="x = 1\ny = = 2"),
        "function_syntax_error",
        "line 2 of its source",
        True,
        False,
    ),
    # models
    ("create not allowed", _CREATE, "model_creation_not_allowed", "create_model 3", True, False),
    ("create 0", {**_CREATE, "model_id": 0}, "reserved_model", "root model", True, True),
    (
        "create id 0",
        {"op": "create_model", "id": 0, "name": "n", "type": "t"},
        "reserved_model",
        "root model",
        True,
        True,
    ),
    ("id disagree", {**_CREATE, "id": 4}, "invalid_value", "disagree", True, True),
    ("rm missing label", {**_RM, "k": "nope"}, "label_not_found", "nothing to remove", True, False),
    ("rm missing cell", {**_RM, "p": 9}, "label_not_found", "'a'", True, False),
    (
        "add to missing model",
        _label(model_id=42),
        "model_not_found",
        "model 42 does not exist",
        True,
        False,
    ),
    ("rm in missing model", {**_RM, "model_id": 42}, "model_not_found", "model 42", True, True),
    ("clear missing model", {**_CLEAR, "model_id": 42}, "model_not_found", "model 42", True, False),
    (
        "clear missing model, creation on",
        {**_CLEAR, "model_id": 42},
        "model_not_found",
        "model 42",
        True,
        True,
    ),
    # a rejected record must not create its model either
    (
        "untrusted function in missing model",
        _label(model_id=77, t="function", v=FUNC_SRC),
        "untrusted_function",
        "cannot add",
        False,
        True,
    ),
    (
        "syntax error in missing model",
        _label(model_id=77, t="function", v="return ("),
        "function_syntax_error",
        "does not compile",
        True,
        True,
    ),
    (
        "bad value in missing model",
        _label(model_id=77, v=math.nan),
        "invalid_json",
        "non-finite",
        True,
        True,
    ),
]


@pytest.mark.parametrize(
    ("record", "code", "fragment", "trusted", "create"),
    [c[1:] for c in BAD_RECORDS],
    ids=[c[0] for c in BAD_RECORDS],
)
def test_bad_record_is_rejected_and_nothing_else_changes(
    record: Any, code: str, fragment: str, trusted: bool, create: bool
) -> None:
    good_before = _label(k="before", v="1")
    good_after = _label(k="after", v="2")
    table, engine = _setup()
    twin, twin_engine = _setup()
    last_id = table.log.last_id
    result = engine.apply(
        {"version": "mt.v0", "op_id": "p", "records": [good_before, record, good_after]},
        trusted=trusted,
        allow_create_model=create,
    )
    assert (result.applied, result.rejected) == (2, 1)
    assert not result.refused and not result.ok
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.index == 1
    assert error.reason.startswith(code + ": "), error.reason
    assert fragment in error.reason, error.reason
    assert result.reason == error.reason
    assert result.to_dict()["errors"] == [error.to_dict()]
    # the rest of the patch applied, in order; nothing else changed
    twin_engine.apply(
        {"version": "mt.v0", "op_id": "p", "records": [good_before, good_after]},
        trusted=trusted,
        allow_create_model=create,
    )
    assert snapshot_bytes(table) == snapshot_bytes(twin)
    new = table.log.since(last_id)
    assert [
        (e.op, e.label.k if e.label else None, e.result) for e in new if e.result == "applied"
    ] == [
        ("add_label", "before", "applied"),
        ("add_label", "after", "applied"),
    ]
    rejected = [e for e in new if e.result == "rejected"]
    assert len(rejected) == 1
    assert rejected[0].reason == error.reason
    assert rejected[0].trace_id == "p"
    assert new.index(rejected[0]) == 1


def test_huge_int_accepted_by_the_table_can_be_serialised() -> None:
    """Ints beyond CPython's 4300-digit str limit: refuse them, or serialise them."""
    table, engine = _setup()
    result = engine.apply(
        {"version": "mt.v0", "op_id": "big", "records": [_label(t="int", v=10**5000)]}
    )
    if result.ok:
        assert len(snapshot_bytes(table)) > 5000
    else:
        assert result.errors[0].reason.startswith("invalid_json: ")


def test_function_name_with_nul_does_not_crash_the_engine() -> None:
    """``compile`` refuses a file name with NUL: the engine must not raise for it."""
    table, engine = _setup()
    result = engine.apply(
        {
            "version": "mt.v0",
            "op_id": "nul",
            "records": [_label(model_id=-10, k="f\x00", t="function", v=FUNC_SRC)],
        },
        trusted=True,
    )
    assert result.ok
    rt = Runtime(table=table)
    (run,) = rt.run_function("f\x00")
    assert run.ok and run.result == 1


def test_function_source_with_nul_is_rejected() -> None:
    _, engine = _setup()
    result = engine.apply(
        {
            "version": "mt.v0",
            "op_id": "nul",
            "records": [_label(model_id=-10, k="f", t="function", v="return 1\x00")],
        },
        trusted=True,
    )
    assert result.errors[0].reason.startswith("function_syntax_error: ")
