"""The program engine (spec 4): triggers, pins, errors, the loop guard, trust."""

from __future__ import annotations

from typing import Any

import pytest

from dongyu.core.functions import compile_function, wrap_source
from dongyu.core.labels import Label
from dongyu.errors import ProgramError, RecordRejected
from dongyu.program import Runtime
from tests.unit.helpers import add, patch, run_trigger, runtime_with

COUNT = """
n = ctx.get_label({"model_id": 5, "p": 0, "r": 0, "c": 0, "k": "n"}) or 0
ctx.write_label({"model_id": 5, "p": 0, "r": 0, "c": 0, "k": "n"}, "int", n + 1)
return n + 1
"""


def _n(rt: Runtime) -> Any:
    label = rt.table.get_label(5, (0, 0, 0), "n")
    return None if label is None else label.v


def test_run_trigger_runs_once_and_is_removed() -> None:
    rt, _ = runtime_with({"count": COUNT})
    result = rt.apply_patch(patch([run_trigger("count")], "go"))
    assert result.ok
    assert _n(rt) == 1
    assert rt.table.get_label(-10, (0, 0, 0), "run_count") is None
    (run,) = rt.runs
    assert (run.name, run.trigger, run.ok, run.result, run.trace_id) == (
        "count",
        "run_trigger",
        True,
        1,
        "go",
    )
    # every side effect is in the log, with the patch's trace
    ops = [
        (e.op, e.model_id, e.label.k if e.label else e.prev.k if e.prev else None)
        for e in rt.table.log.since(result.events[0].event_id - 1)
    ]
    assert ops == [
        ("add_label", -10, "run_count"),
        ("rm_label", -10, "run_count"),
        ("add_label", 5, "n"),
    ]
    assert {e.trace_id for e in rt.table.log.since(result.events[0].event_id - 1)} == {"go"}


@pytest.mark.parametrize("value", ["1", 1, True, "yes"])
def test_run_trigger_values_that_run(value: Any) -> None:
    rt, _ = runtime_with({"count": COUNT})
    rt.apply_patch(patch([run_trigger("count", value)], "go"))
    assert _n(rt) == 1


@pytest.mark.parametrize("value", ["0", 0, False, "", None])
def test_run_trigger_off_values_do_not_run_but_are_removed(value: Any) -> None:
    rt, _ = runtime_with({"count": COUNT})
    rec = run_trigger("count", value)
    rec["t"] = "str" if isinstance(value, str) else "json"
    result = rt.apply_patch(patch([rec], "off"))
    assert result.ok
    assert _n(rt) is None
    assert rt.table.get_label(-10, (0, 0, 0), "run_count") is None
    assert list(rt.runs) == []


def test_run_trigger_elsewhere_does_not_run() -> None:
    rt, _ = runtime_with({"count": COUNT})
    rt.apply_patch(
        patch(
            [
                add(-10, (0, 0, 1), "run_count", "str", "1"),
                add(5, (0, 0, 0), "run_count", "str", "1"),
            ],
            "x",
        )
    )
    assert _n(rt) is None
    assert rt.table.get_label(-10, (0, 0, 1), "run_count") is not None


def test_run_trigger_of_missing_function_is_an_error_event() -> None:
    rt, _ = runtime_with({})
    rt.apply_patch(patch([run_trigger("ghost")], "g"))
    last = list(rt.table.log)[-1]
    assert last.op == "error" and "no function 'ghost'" in (last.reason or "")
    assert rt.runs[-1].ok is False


PIN_FN = """
ctx.write_label({"model_id": ctx.model_id, "p": 2, "r": 0, "c": 0, "k": "seen"}, "json",
                {"model_id": ctx.model_id, "pin": ctx.pin, "value": ctx.value,
                 "op_id": ctx.op_id, "trace_id": ctx.trace_id, "name": ctx.function_name})
"""


def test_in_value_on_a_declared_pin_runs_the_bound_function() -> None:
    rt, _ = runtime_with({"on_in": PIN_FN}, add(5, (0, 0, 1), "inbox", "PIN_IN", "on_in"))
    result = rt.apply_patch(
        patch([add(5, (0, 1, 1), "inbox", "IN", {"a": [1]})], "op-in"), trace_id="tr"
    )
    assert result.ok
    seen = rt.table.get_label(5, (2, 0, 0), "seen")
    assert seen is not None
    assert seen.v == {
        "model_id": 5,
        "pin": "inbox",
        "value": {"a": [1]},
        "op_id": "op-in",
        "trace_id": "tr",
        "name": "on_in",
    }
    assert rt.runs[-1].trigger == "pin:5/inbox"
    assert rt.pin_function(5, "inbox") == "on_in"
    assert rt.declared_pins(5) == ["inbox"]


def test_write_pin_runs_the_bound_function() -> None:
    rt, _ = runtime_with({"on_in": PIN_FN}, add(5, (0, 0, 1), "inbox", "PIN_IN", "on_in"))
    runs = rt.write_pin(5, "inbox", 42, op_id="w")
    assert [r.ok for r in runs] == [True]
    seen = rt.table.get_label(5, (2, 0, 0), "seen")
    assert seen is not None and seen.v["value"] == 42 and seen.v["op_id"] == "w"
    with pytest.raises(RecordRejected):
        rt.write_pin(5, "a/b", 1)
    with pytest.raises(RecordRejected):
        rt.write_pin(99, "inbox", 1)


@pytest.mark.parametrize(
    ("decl_type", "cell", "value_type"),
    [
        ("PIN_OUT", (0, 1, 1), "IN"),  # not an input pin
        ("PIN_IN", (0, 1, 2), "IN"),  # not the pin mailbox cell
        ("PIN_IN", (0, 1, 1), "OUT"),  # not an IN value
    ],
)
def test_values_that_do_not_trigger(
    decl_type: str, cell: tuple[int, int, int], value_type: str
) -> None:
    rt, _ = runtime_with({"on_in": PIN_FN}, add(5, (0, 0, 1), "inbox", decl_type, "on_in"))
    rt.apply_patch(patch([add(5, cell, "inbox", value_type, 1)], "x"))
    assert rt.table.get_label(5, (2, 0, 0), "seen") is None
    assert list(rt.runs) == []


RAISES = """
x = 1
raise KeyError("boom")
"""


def test_a_raising_function_is_an_error_event_and_the_host_keeps_working() -> None:
    rt, _ = runtime_with({"bad": RAISES, "count": COUNT})
    result = rt.apply_patch(patch([run_trigger("bad")], "b"))
    assert result.ok  # the patch itself applied
    run = rt.runs[-1]
    assert run.name == "bad" and run.ok is False
    assert run.error is not None and "KeyError" in run.error
    error = list(rt.table.log)[-1]
    assert error.op == "error" and error.result == "rejected" and error.trace_id == "b"
    assert error.reason is not None
    assert "function bad raised KeyError" in error.reason
    assert 'line 3 of function bad: raise KeyError("boom")' in error.reason
    # the next run works
    rt.apply_patch(patch([run_trigger("count")], "c"))
    assert _n(rt) == 1 and rt.runs[-1].ok


def test_run_function_direct() -> None:
    rt, _ = runtime_with({"count": COUNT, "bad": "return 1 / 0"})
    (run,) = rt.run_function("count", value={"x": 1})
    assert run.ok and run.trigger == "direct" and run.result == 1
    (bad,) = rt.run_function("bad")
    assert not bad.ok and "ZeroDivisionError" in (bad.error or "")


LOOP_A = 'ctx.write_label({"model_id": -10, "p": 0, "r": 0, "c": 0, "k": "run_b"}, "str", "1")'
LOOP_B = 'ctx.write_label({"model_id": -10, "p": 0, "r": 0, "c": 0, "k": "run_a"}, "str", "1")'


def test_trigger_loop_stops_at_max_runs_per_input() -> None:
    rt, _ = runtime_with({"a": LOOP_A, "b": LOOP_B})
    rt.max_runs_per_input = 7
    rt.apply_patch(patch([run_trigger("a")], "loop"))
    assert len(rt.runs) == 7
    assert [r.name for r in rt.runs] == ["a", "b", "a", "b", "a", "b", "a"]
    error = list(rt.table.log)[-1]
    assert error.op == "error" and "max_runs_per_input" in (error.reason or "")
    assert "not run: b" in (error.reason or "")
    # the host keeps working after the loop was cut
    rt.max_runs_per_input = 1
    rt.apply_patch(patch([run_trigger("a")], "loop2"))
    assert len(rt.runs) == 8


def test_untrusted_patch_cannot_install_or_remove_functions() -> None:
    rt, _ = runtime_with({"count": COUNT})
    before = rt.find_function("count")
    bad = rt.apply_patch(
        patch(
            [
                add(-10, (0, 0, 5), "evil", "function", "return 1"),
                add(-10, (1, 0, 0), "count", "function", "return 2"),
                add(-10, (1, 0, 0), "count", "str", "x"),
                {"op": "rm_label", "model_id": -10, "p": 1, "r": 0, "c": 0, "k": "count"},
                add(-10, (0, 0, 5), "evil2", "func.python", "return 1"),
            ],
            "u",
        )
    )
    assert bad.rejected == 5
    assert all(e.reason.startswith("untrusted_function: ") for e in bad.errors)
    assert rt.find_function("evil") is None and rt.find_function("evil2") is None
    assert rt.find_function("count") == before
    # the same patch, trusted, installs them
    ok = rt.apply_patch(
        patch([add(-10, (0, 0, 5), "evil", "function", "return 1")], "t"), trusted=True
    )
    assert ok.ok and rt.find_function("evil") == ((0, 0, 5), "return 1")


def test_load_program_refuses_a_partial_load() -> None:
    rt = Runtime()
    with pytest.raises(ProgramError):
        rt.load_program(patch([add(-10, (0, 0, 0), "f", "function", "return (")], "bad"))
    with pytest.raises(ProgramError):
        rt.load_program({"version": "nope"})


def test_func_python_is_a_function_and_first_cell_wins() -> None:
    rt, _ = runtime_with(
        {},
        add(-10, (2, 0, 0), "f", "func.python", "return 'late'"),
        add(-10, (0, 5, 0), "f", "function", "return 'early'"),
    )
    assert rt.find_function("f") == ((0, 5, 0), "return 'early'")
    assert rt.run_function("f")[0].result == "early"


def test_function_source_is_recompiled_when_it_changes() -> None:
    rt, _ = runtime_with({"f": "return 1"})
    assert rt.run_function("f")[0].result == 1
    rt.apply_patch(patch([add(-10, (1, 0, 0), "f", "function", "return 2")], "v2"), trusted=True)
    assert rt.run_function("f")[0].result == 2


# ---- compiling function bodies ------------------------------------------------


def test_wrap_source_keeps_line_numbers() -> None:
    text = wrap_source("a = 1\nreturn a")
    assert text.splitlines()[1:3] == ["    a = 1", "    return a"]


@pytest.mark.parametrize("body", ["", "   \n", "return 1", "# note\nreturn 1", "if ctx:\n    pass"])
def test_bodies_that_compile(body: str) -> None:
    compile_function("f", body)


def test_a_comment_only_body_compiles() -> None:
    """A function body that is only comments is a valid (empty) body, like ``""``."""
    compile_function("f", "# TODO: write me")
    compile_function("f", "# one\n\n# two\n")


def test_syntax_error_names_the_line_of_the_label() -> None:
    with pytest.raises(RecordRejected) as err:
        compile_function("f", "a = 1\nb = (\n")
    assert err.value.code == "function_syntax_error"
    assert "function 'f'" in str(err.value)


def test_table_label_values_stay_as_written() -> None:
    rt, _ = runtime_with({"f": "return ctx.value"})
    (run,) = rt.run_function("f", value=[1, 2])
    assert run.result == [1, 2]
    assert rt.table.get_label(-10, (1, 0, 0), "f") == Label("f", "function", "return ctx.value")
