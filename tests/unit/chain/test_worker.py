"""WorkerCore: one MQTT message -> pin -> function -> replies (spec 6, 8, seed steps 2 and 5)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from dongyu.bridge.core import BridgeCore
from dongyu.core.labels import Label
from dongyu.errors import ValidationError
from dongyu.patch.envelope import parse_envelope
from dongyu.worker.core import MAX_PAYLOAD_BYTES, WorkerCore, encode
from tests.unit.chain.common import (
    BASE,
    WORKER_ID,
    bridge,
    dumps,
    hop_names,
    snap,
    ui_message,
    worker,
)


def _bridged(core: BridgeCore, **kw: Any) -> tuple[str, bytes]:
    out = core.from_matrix(ui_message(**kw))
    assert out is not None
    return out.topic, out.encode()


def test_subscription_is_the_seeds() -> None:
    assert worker(2).subscription == "UIPUT/ws/dam/pic/de/sw/2/#"
    assert worker(100).subscription == "UIPUT/ws/dam/pic/de/sw/100/#"


def test_unknown_model_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="42"):
        worker(42)


def test_seed_path_model_2(caplog: pytest.LogCaptureFixture) -> None:
    w = worker(2)
    topic, payload = _bridged(bridge(), model_id=2, k="x", value={"t": "str", "v": "hi"})
    assert topic == f"{BASE}/2/patch_in"
    with caplog.at_level(logging.INFO):
        handled = w.handle(topic, payload)
    assert handled.refused is None and not handled.duplicate
    assert handled.pin == "mqtt_in" and handled.op_id == "op-1"
    assert [r.name for r in handled.runs] == ["process_mqtt_message"]
    assert handled.runs[0].ok and handled.runs[0].result == "label_update"
    table = w.runtime.table
    last = table.get_label(2, (1, 0, 0), "last_event")
    assert last is not None and last.t == "json"
    sent = json.loads(payload)
    assert last.v["op_id"] == "op-1" and last.v["action"] == "label_update"
    assert last.v["records"] == sent["records"]
    assert hop_names(last.v["hops"]) == [*hop_names(sent["hops"]), "worker.received"]
    assert table.get_label(2, (0, 1, 1), "mqtt_in") is None  # pin cleared
    assert table.cell(2, (0, 1, 1)) == {}
    assert handled.replies == ()
    assert w.metrics.messages_in == 1 and w.metrics.function_runs == 1
    assert w.metrics.function_errors == 0 and w.metrics.rejected == {}
    text = caplog.text
    for line in (
        f"topic received: {topic}",
        'payload: {"version":"mt.v0","op_id":"op-1"',
        "written to PIN_IN mqtt_in of model 2",
        "action received: label_update",
        "processed successfully",
    ):
        assert line in text, line
    assert text.index("topic received") < text.index("payload:") < text.index("action received")
    assert text.index("action received") < text.index("processed successfully")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_seed_message_on_any_topic_level_lands_in_mqtt_in() -> None:
    w = worker(2)
    seed = {"action": "label_update", "data": {"x": 1}}  # the seed's shape: no op_id
    handled = w.handle(f"{BASE}/2/whatever", dumps(seed))
    assert handled.pin == "mqtt_in" and handled.op_id is None and handled.refused is None
    last = w.runtime.table.get_label(2, (1, 0, 0), "last_event")
    assert last is not None and last.v == seed
    # without an op_id there is no de-duplication: the same message runs again
    again = w.handle(f"{BASE}/2/whatever", dumps({**seed, "data": {"x": 2}}))
    assert not again.duplicate and len(again.runs) == 1
    last = w.runtime.table.get_label(2, (1, 0, 0), "last_event")
    assert last is not None and last.v["data"] == {"x": 2}


def test_colour_path_model_100(caplog: pytest.LogCaptureFixture) -> None:
    w = worker(100)
    topic, payload = _bridged(bridge(), model_id=100, op_id="c-1")
    assert topic == f"{BASE}/100/event_in"
    with caplog.at_level(logging.INFO):
        handled = w.handle(topic, payload)
    assert handled.refused is None and handled.pin == "event_in"
    assert [r.name for r in handled.runs] == ["on_color_submit"]
    assert handled.runs[0].ok
    (reply_topic, reply), *rest = handled.replies
    assert rest == []
    assert reply_topic == "UIPUT/ws/dam/pic/de/sw/100/patch_out"
    assert isinstance(reply, dict)
    assert parse_envelope(reply).op_id == "c-1:reply"
    assert hop_names(reply["hops"]) == [
        "ui_server.received",
        "mbr.received",
        "mbr.to_mqtt",
        "worker.received",
        "worker.reply",
    ]
    ts = [h["ts_us"] for h in reply["hops"][2:]]
    assert ts == sorted(ts)
    by_k = {r["k"]: r for r in reply["records"]}
    assert by_k["bg_color"]["v"] == "#FF00FF"
    assert WORKER_ID in by_k["status"]["v"]
    table = w.runtime.table
    assert table.get_label(100, (0, 0, 0), "bg_color") == Label("bg_color", "str", "#FF00FF")
    status = table.get_label(100, (0, 0, 0), "status")
    assert status is not None and status.v == f"{WORKER_ID}: #FF00FF"
    assert table.cell(100, (0, 1, 1)) == {}  # pin cleared
    assert w.metrics.messages_out == 1
    assert json.loads(encode(reply)) == reply
    assert "written to PIN_IN event_in of model 100" in caplog.text
    assert "processed successfully" in caplog.text


def test_a_refused_colour_says_so_and_still_replies() -> None:
    w = worker(100)
    topic, payload = _bridged(bridge(), model_id=100, value={"t": "str", "v": "red; x"})
    handled = w.handle(topic, payload)
    ((_, reply),) = handled.replies
    assert isinstance(reply, dict)
    assert [r["k"] for r in reply["records"]] == ["status"]
    assert "refused colour" in reply["records"][0]["v"]
    bg = w.runtime.table.get_label(100, (0, 0, 0), "bg_color")
    assert bg is not None and bg.v == "#FFFFFF"


def test_duplicate_op_id_runs_once() -> None:
    w = worker(100)
    topic, payload = _bridged(bridge(), model_id=100, op_id="d-1")
    first = w.handle(topic, payload)
    assert len(first.runs) == 1
    before = snap(w.runtime)
    second = w.handle(topic, payload)
    assert second.duplicate and second.runs == () and second.replies == ()
    assert w.metrics.duplicates == 1 and w.metrics.function_runs == 1
    assert snap(w.runtime) == before


BAD: list[tuple[str, str, bytes, str]] = [
    ("not JSON", f"{BASE}/100/event_in", b"{nope", "not_json"),
    ("not UTF-8", f"{BASE}/100/event_in", b"\xff\xfe", "not_json"),
    ("NaN", f"{BASE}/100/event_in", b'{"op_id":"n","v":NaN}', "not_json"),
    ("Infinity", f"{BASE}/100/event_in", b'{"op_id":"n","v":-Infinity}', "not_json"),
    ("deep nesting", f"{BASE}/100/event_in", b"[" * 200_000, "not_json"),
    ("too deep for a label", f"{BASE}/100/event_in", b'{"a":' * 70 + b"1" + b"}" * 70, "invalid_json"),
    ("a list", f"{BASE}/100/event_in", b"[1,2]", "not_an_object"),
    ("a string", f"{BASE}/100/event_in", b'"x"', "not_an_object"),
    ("oversize", f"{BASE}/100/event_in", b'{"x":"' + b"a" * MAX_PAYLOAD_BYTES + b'"}', "invalid_value"),
    ("bad hops", f"{BASE}/100/event_in", b'{"op_id":"h","hops":[{"hop":"x","ts_us":1.5}]}', "invalid_value"),
    ("wrong model", f"{BASE}/2/event_in", b'{"op_id":"w"}', "invalid_value"),
    ("wrong base", "other/100/event_in", b'{"op_id":"w"}', "invalid_value"),
    ("no pin", f"{BASE}/100", b'{"op_id":"w"}', "invalid_value"),
    ("extra level", f"{BASE}/100/a/b", b'{"op_id":"w"}', "invalid_value"),
    ("model not an int", f"{BASE}/x/event_in", b'{"op_id":"w"}', "invalid_value"),
    ("model 0100", f"{BASE}/0100/event_in", b'{"op_id":"w"}', "invalid_value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "payload", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_messages_are_refused_without_touching_the_table(
    topic: str, payload: bytes, code: str
) -> None:
    w = worker(100)
    before = snap(w.runtime)
    handled = w.handle(topic, payload)
    assert handled.refused is not None and handled.refused.startswith(f"{code}: ")
    assert handled.runs == () and handled.replies == () and handled.pin is None
    assert w.metrics.rejected == {code: 1}
    assert w.metrics.function_runs == 0
    assert snap(w.runtime) == before
    # and the worker goes on
    good_topic, good = _bridged(bridge(), model_id=100, op_id="after")
    assert w.handle(good_topic, good).replies


def test_refused_message_does_not_use_up_its_op_id() -> None:
    w = worker(100)
    assert w.handle(f"{BASE}/100/event_in", b'{"op_id":"r","hops":"x"}').refused
    topic, payload = _bridged(bridge(), model_id=100, op_id="r")
    handled = w.handle(topic, payload)
    assert not handled.duplicate and len(handled.runs) == 1


CRASH = {
    "version": "mt.v0",
    "op_id": "install-crash",
    "records": [
        {"op": "add_label", "model_id": 100, "p": 0, "r": 0, "c": 1, "k": "crash_in", "t": "PIN_IN", "v": "crash"},
        {"op": "add_label", "model_id": -10, "p": 9, "r": 0, "c": 0, "k": "crash", "t": "function",
         "v": "raise RuntimeError('boom ' + str(ctx.value.get('n')))"},
    ],
}  # fmt: skip


def test_a_function_that_raises_is_counted_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = worker(100)
    w.runtime.load_program(CRASH)
    with caplog.at_level(logging.INFO):
        handled = w.handle(f"{BASE}/100/crash_in", dumps({"op_id": "x-1", "n": 7}))
    assert handled.refused is None and handled.pin == "crash_in"
    (run,) = handled.runs
    assert not run.ok and run.error is not None and "RuntimeError: boom 7" in run.error
    assert w.metrics.function_errors == 1 and w.metrics.function_runs == 1
    assert "processed successfully" not in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    topic, payload = _bridged(bridge(), model_id=100, op_id="x-2")
    after = w.handle(topic, payload)
    assert after.runs[0].ok and after.replies
    assert w.metrics.function_errors == 1 and w.metrics.function_runs == 2
    # the crashed message's op_id is remembered: its retransmission does not run again
    assert w.handle(f"{BASE}/100/crash_in", dumps({"op_id": "x-1", "n": 7})).duplicate


def test_a_message_for_a_pin_with_no_function_is_stored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = worker(2)
    w.runtime.load_program(
        {
            "version": "mt.v0",
            "op_id": "unbind",
            "records": [{"op": "rm_label", "model_id": 2, "p": 0, "r": 0, "c": 1, "k": "mqtt_in"}],
        }
    )
    with caplog.at_level(logging.INFO):
        handled = w.handle(f"{BASE}/2/patch_in", dumps({"op_id": "u"}))
    assert handled.runs == () and handled.pin == "mqtt_in"
    assert "no function is bound to pin mqtt_in" in caplog.text
    assert w.runtime.table.get_label(2, (0, 1, 1), "mqtt_in") == Label(
        "mqtt_in", "IN", {"op_id": "u"}
    )


def test_worker_id_is_in_the_editor_state() -> None:
    w = worker(100, worker_id="k8s-pod-abc")
    assert w.runtime.table.get_label(-2, (0, 0, 0), "worker_id") == Label(
        "worker_id", "str", "k8s-pod-abc"
    )
    topic, payload = _bridged(bridge(), model_id=100)
    ((_, reply),) = w.handle(topic, payload).replies
    assert isinstance(reply, dict)
    assert reply["records"][-1]["v"] == "k8s-pod-abc: #FF00FF"


def test_metrics_count_time() -> None:
    w: WorkerCore = worker(100)
    topic, payload = _bridged(bridge(), model_id=100)
    w.handle(topic, payload)
    assert w.metrics.function_seconds > 0
    assert w.metrics.messages_in == 1 and w.metrics.messages_out == 1


def test_payloads_that_carry_code_or_are_broken_patches_are_refused_and_counted() -> None:
    from dongyu import programs
    from dongyu.core.snapshot import snapshot_bytes
    from dongyu.program.host import OutboxHost
    from dongyu.program.runtime import Runtime
    from dongyu.worker.core import WorkerCore

    runtime = Runtime(OutboxHost())
    for name in ("remote_worker", "color_form"):
        runtime.load_program(programs.load(name))
    outbox = runtime.host
    assert isinstance(outbox, OutboxHost)
    core = WorkerCore(
        runtime, outbox, model_id=2, topic_base="UIPUT/ws/dam/pic/de/sw", worker_id="w"
    )
    before = snapshot_bytes(runtime.table)
    evil = {
        "version": "mt.v0",
        "op_id": "evil-1",
        "records": [
            {
                "op": "add_label",
                "model_id": -10,
                "p": 9,
                "r": 0,
                "c": 0,
                "k": "x",
                "t": "function",
                "v": "pass",
            }
        ],
    }
    handled = core.handle("UIPUT/ws/dam/pic/de/sw/2/patch_in", json.dumps(evil).encode())
    assert handled.refused is not None and handled.refused.startswith("untrusted_function")
    broken = {"version": "mt.v0", "op_id": "broken-1", "records": "nope"}
    handled = core.handle("UIPUT/ws/dam/pic/de/sw/2/patch_in", json.dumps(broken).encode())
    assert handled.refused is not None and handled.refused.startswith("invalid_patch")
    assert core.metrics.rejected == {"untrusted_function": 1, "invalid_patch": 1}
    assert snapshot_bytes(runtime.table) == before
    assert runtime.find_function("x") is None
    ok = core.handle(
        "UIPUT/ws/dam/pic/de/sw/2/patch_in",
        json.dumps({**evil, "op_id": "fine-1", "records": []}).encode(),
    )
    assert ok.refused is None and ok.runs and ok.runs[0].ok
