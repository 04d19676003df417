"""The ctx API a function gets (spec 4), exercised from inside real functions."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dongyu.core.labels import Label
from dongyu.program import RecordingHost, Runtime
from dongyu.program.runtime import DEFAULT_TOPIC_BASE
from tests.unit.helpers import add, patch, runtime_with


def _run(rt: Runtime, name: str, **kw: Any) -> Any:
    (run, *_) = rt.run_function(name, **kw)
    assert run.ok, run.error
    return run.result


def test_get_label_write_label_set_label_rm_label() -> None:
    src = """
ref = {"model_id": 5, "p": 1, "r": 2, "c": 3, "k": "a"}
before = ctx.get_label(ref)
ctx.write_label(ref, "int", 7)
ctx.set_label({"model_id": 5, "p": 1, "r": 2, "c": 3}, {"k": "b", "t": "json", "v": {"x": [1]}})
got = [ctx.get_label(ref), ctx.get_label({**ref, "k": "b"})]
removed = ctx.rm_label({**ref, "k": "b"})
removed_again = ctx.rm_label({**ref, "k": "b"})
return [before, got, removed, removed_again, ctx.get_label({**ref, "k": "b"})]
"""
    rt, _ = runtime_with({"f": src})
    assert _run(rt, "f") == [None, [7, {"x": [1]}], True, False, None]
    assert dict(rt.table.cell(5, (1, 2, 3))) == {"a": Label("a", "int", 7)}


def test_writes_are_logged_with_the_trace_id() -> None:
    rt, _ = runtime_with(
        {"f": 'ctx.write_label({"model_id": 5, "p": 0, "r": 0, "c": 0, "k": "a"}, "str", "v")'}
    )
    last = rt.table.log.last_id
    rt.run_function("f", trace_id="trace-7")
    (event,) = rt.table.log.since(last)
    assert (event.op, event.model_id, event.trace_id, event.ts) == ("add_label", 5, "trace-7", 1000)


def test_get_state_and_get_state_int() -> None:
    src = """
return [ctx.get_state("worker_id"), ctx.get_state_int("n"), ctx.get_state_int("s"),
        ctx.get_state_int("bad"), ctx.get_state_int("missing"), ctx.get_state("obj")]
"""
    rt, _ = runtime_with(
        {"f": src},
        add(-2, (0, 0, 0), "worker_id", "str", "w-1"),
        add(-2, (0, 0, 0), "n", "int", 12),
        add(-2, (0, 0, 0), "s", "str", " 34 "),
        add(-2, (0, 0, 0), "bad", "str", "x"),
        add(-2, (0, 0, 0), "obj", "json", {"a": 1}),
        add(-2, (0, 0, 1), "missing", "int", 1),  # other cell: not state
    )
    assert _run(rt, "f") == ["w-1", 12, 34, None, None, {"a": 1}]


def test_send_matrix_and_publish_mqtt_reach_the_host() -> None:
    src = """
payload = {"version": "v0", "type": "pin_out", "data": [1, {"b": None}]}
ctx.send_matrix(payload)
ctx.publish_mqtt("a/b/c", payload)
ctx.publish_mqtt("a/b/d", "text")
payload["data"].append("later")  # the host got a copy
"""
    rt, host = runtime_with({"f": src})
    _run(rt, "f")
    sent = {"version": "v0", "type": "pin_out", "data": [1, {"b": None}]}
    assert host.matrix == [sent]
    assert host.mqtt == [("a/b/c", sent), ("a/b/d", "text")]


def test_current_topic_default_base_and_model_0_base() -> None:
    src = 'return [ctx.current_topic("patch_out"), ctx.current_topic("x", model_id=-3)]'
    rt, _ = runtime_with({"f": src})
    assert _run(rt, "f", model_id=100) == [
        f"{DEFAULT_TOPIC_BASE}/100/patch_out",
        f"{DEFAULT_TOPIC_BASE}/-3/x",
    ]
    assert DEFAULT_TOPIC_BASE == "UIPUT/ws/dam/pic/de/sw"
    rt.apply_patch(patch([add(0, (0, 0, 0), "mqtt_topic_base", "str", "/my/base/")], "b"))
    assert _run(rt, "f", model_id=2) == ["my/base/2/patch_out", "my/base/-3/x"]


def test_current_topic_without_a_model_is_an_error() -> None:
    rt, _ = runtime_with({"f": 'return ctx.current_topic("p")'})
    (run,) = rt.run_function("f")
    assert not run.ok and "pass model_id" in (run.error or "")


def test_logger(caplog: pytest.LogCaptureFixture) -> None:
    rt, _ = runtime_with({"f": 'ctx.logger.info("hello %s", 5)\nctx.log.warning("w")'})
    with caplog.at_level(logging.INFO, logger="dongyu.program.function.f"):
        _run(rt, "f")
    messages = [
        (r.name, r.getMessage())
        for r in caplog.records
        if r.name.startswith("dongyu.program.function")
    ]
    assert messages == [
        ("dongyu.program.function.f", "hello 5"),
        ("dongyu.program.function.f", "w"),
    ]


def test_get_label_returns_copies() -> None:
    src = """
ref = {"model_id": 5, "p": 0, "r": 0, "c": 0, "k": "j"}
v = ctx.get_label(ref)
v["list"].append(99)
v["new"] = True
s = ctx.get_state("st")
s.append(1)
return ctx.get_label(ref)
"""
    rt, _ = runtime_with(
        {"f": src},
        add(5, (0, 0, 0), "j", "json", {"list": [1]}),
        add(-2, (0, 0, 0), "st", "json", []),
    )
    assert _run(rt, "f") == {"list": [1]}
    assert rt.table.get_label(5, (0, 0, 0), "j") == Label("j", "json", {"list": [1]})
    assert rt.table.get_label(-2, (0, 0, 0), "st") == Label("st", "json", [])


def test_written_values_are_copied_in() -> None:
    src = """
v = {"a": [1]}
ctx.write_label({"model_id": 5, "p": 0, "r": 0, "c": 0, "k": "j"}, "json", v)
v["a"].append(2)
"""
    rt, _ = runtime_with({"f": src})
    _run(rt, "f")
    assert rt.table.get_label(5, (0, 0, 0), "j") == Label("j", "json", {"a": [1]})


REF = '{"model_id": 5, "p": 0, "r": 0, "c": 0, "k": "a"}'


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ('ctx.get_label({"model_id": 5, "p": 0, "r": 0})', "lacks 'c'"),
        ('ctx.get_label({"model_id": 5, "p": 0, "r": 0, "c": 0})', "lacks 'k'"),
        ('ctx.get_label({"model_id": True, "p": 0, "r": 0, "c": 0, "k": "a"})', "got bool"),
        ('ctx.get_label({"model_id": 5, "p": 0, "r": 0, "c": 0, "k": ""})', "non-empty"),
        ("ctx.get_label([5, 0, 0, 0])", "must be a dict"),
        ('ctx.rm_label({"model_id": 5, "p": "0", "r": 0, "c": 0, "k": "a"})', "got str"),
        (f'ctx.write_label({REF}, "float", float("nan"))', "non-finite"),
        (f'ctx.write_label({REF}, "json", {{1, 2}})', "set is not a JSON value"),
        (f'ctx.write_label({REF}, "json", (1,))', "tuple"),
        (f'ctx.write_label({REF}, "", 1)', "non-empty"),
        (f'ctx.write_label({REF}, "func.js", "x")', "not supported"),
        (f'ctx.write_label({{**{REF}, "model_id": 404}}, "str", "x")', "model 404 does not exist"),
        (f'ctx.write_label({REF}, "function", "return (")', "does not compile"),
        (
            'ctx.set_label({"model_id": 5, "p": 0, "r": 0, "c": 0}, {"k": "a", "t": "str"})',
            "k, t, v",
        ),
        ('ctx.set_label({"model_id": 5, "p": 0, "r": 0, "c": 0}, ["a", "str", 1])', "k, t, v"),
        ('ctx.send_matrix(["not", "a", "dict"])', "needs a dict"),
        ('ctx.send_matrix({"a": b"bytes"})', "not JSON"),
        ('ctx.send_matrix({"a": float("inf")})', "not JSON"),
        ('ctx.publish_mqtt("a/#", {})', "concrete topic"),
        ('ctx.publish_mqtt("a/+/b", {})', "concrete topic"),
        ('ctx.publish_mqtt("", {})', "concrete topic"),
        ('ctx.publish_mqtt("a/b", object())', "not JSON"),
        ('ctx.current_topic("a/b", model_id=1)', "not one topic level"),
        ('ctx.current_topic("", model_id=1)', "not one topic level"),
    ],
)
def test_ctx_refuses_bad_calls_with_program_error(call: str, fragment: str) -> None:
    rt, host = runtime_with({"f": call})
    before = rt.table.label_count()
    last = rt.table.log.last_id
    (run,) = rt.run_function("f", trace_id="t")
    assert not run.ok
    assert run.error is not None
    assert "raised ProgramError" in run.error and fragment in run.error, run.error
    (event,) = rt.table.log.since(last)
    assert event.op == "error" and event.reason == run.error and event.trace_id == "t"
    assert rt.table.label_count() == before
    assert host.matrix == [] and host.mqtt == []


def test_ctx_can_install_a_function_from_a_trusted_function() -> None:
    src = 'ctx.write_label({"model_id": -10, "p": 9, "r": 0, "c": 0, "k": "g"}, "function", "return 5")'
    rt, _ = runtime_with({"f": src})
    _run(rt, "f")
    assert _run(rt, "g") == 5


def test_function_globals_include_json_math_re() -> None:
    rt, _ = runtime_with(
        {"f": 'return [json.dumps([1]), math.floor(2.5), bool(re.match("a", "a"))]'}
    )
    assert _run(rt, "f") == ["[1]", 2, True]


def test_non_json_return_value_is_dropped() -> None:
    rt, _ = runtime_with({"f": "return object()"})
    (run,) = rt.run_function("f")
    assert run.ok and run.result is None


def test_recording_host_keeps_order() -> None:
    host = RecordingHost()
    host.publish_mqtt("t", 1)
    host.send_matrix({"a": 1})
    host.publish_mqtt("t", 2)
    assert host.mqtt == [("t", 1), ("t", 2)] and host.matrix == [{"a": 1}]
