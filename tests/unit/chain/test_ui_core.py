"""UiCore (spec 7.1, 7.2, 7.5) and the whole chain, pure: UI -> MBR -> worker -> MBR -> UI."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dongyu.core.labels import Label
from dongyu.errors import ProgramError, ValidationError
from dongyu.messages.bus import BusMessage
from dongyu.program.host import OutboxHost
from dongyu.ui.core import UiCore
from dongyu.worker.core import encode
from tests.unit.chain.common import (
    BASE,
    NOW_MS,
    WORKER_ID,
    body,
    bridge,
    floats_in,
    hop_names,
    runtime,
    snap,
    ui_core,
    worker,
)

MAILBOX = (0, 0, 1)


def test_needs_the_forward_function() -> None:
    outbox = OutboxHost()
    with pytest.raises(ProgramError, match="forward_ui_events"):
        UiCore(runtime("color_form", host=outbox), outbox)


def test_accept_a_colour_event(caplog: pytest.LogCaptureFixture) -> None:
    ui = ui_core()
    with caplog.at_level(logging.INFO):
        accepted = ui.accept(body(op_id="c-1"), now_ms=NOW_MS)
    assert accepted.op_id == "c-1"
    (message,) = accepted.messages
    assert message["version"] == "v0" and message["type"] == "ui_event"
    assert message["op_id"] == "c-1" and message["action"] == "label_update"
    assert message["source_model_id"] == 100
    assert message["data"] == {
        "target": {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "input_value"},
        "value": {"t": "str", "v": "#ff00ff"},
    }
    assert type(message["timestamp"]) is int and message["timestamp"] == NOW_MS
    assert hop_names(message["hops"]) == ["ui_server.received"]
    assert floats_in(message) == []
    parsed = BusMessage.from_dict(message)
    assert parsed.to_dict() == message
    table = ui.runtime.table
    assert table.get_label(-1, MAILBOX, "ui_event") is None  # mailbox emptied
    assert table.get_label(-1, MAILBOX, "ui_event_last_op_id") == Label(
        "ui_event_last_op_id", "str", "c-1"
    )
    # the UI never paints optimistically: model 100 is unchanged until the worker answers
    assert table.get_label(100, (0, 0, 0), "bg_color") == Label("bg_color", "str", "#FFFFFF")
    assert "program model forwards label_update to Matrix [op_id c-1]" in caplog.text
    assert ui.outbox.drain() == ([], [])


def test_accept_without_op_id_generates_one() -> None:
    ui = ui_core()
    first = ui.accept(body(op_id=None), now_ms=NOW_MS)
    second = ui.accept(body(op_id=None), now_ms=NOW_MS)
    assert first.op_id.startswith("ui-") and len(first.op_id) > 10
    assert first.op_id != second.op_id
    assert first.messages[0]["op_id"] == first.op_id
    last = ui.runtime.table.get_label(-1, MAILBOX, "ui_event_last_op_id")
    assert last is not None and last.v == second.op_id


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"source": "ui_renderer"},
        body(k=""),
        body(value={"t": "str", "v": float("nan")}),
        {**body(), "payload": {**body()["payload"], "action": "drop_table"}},
    ],
)
def test_invalid_body_changes_nothing(bad: Any) -> None:
    ui = ui_core()
    before = snap(ui.runtime)
    last_event = ui.runtime.table.log.last_id
    with pytest.raises(ValidationError):
        ui.accept(bad, now_ms=NOW_MS)
    assert snap(ui.runtime) == before
    assert ui.runtime.table.log.last_id == last_event
    assert ui.outbox.drain() == ([], [])


REPLY: dict[str, Any] = {
    "version": "mt.v0",
    "op_id": "c-1:reply",
    "records": [
        {"op": "add_label", "model_id": 100, "p": 0, "r": 0, "c": 0, "k": "bg_color", "t": "str", "v": "#FF00FF"},
        {"op": "add_label", "model_id": 100, "p": 0, "r": 0, "c": 0, "k": "status", "t": "str", "v": "w: #FF00FF"},
    ],
}  # fmt: skip


def test_apply_delta_repaints() -> None:
    ui = ui_core()
    result, changes = ui.apply_delta(BusMessage("snapshot_delta", "c-1:reply", payload=REPLY))
    assert result.ok and result.applied == 2
    assert changes == [
        {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "bg_color", "t": "str", "v": "#FF00FF"},
        {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "status", "t": "str", "v": "w: #FF00FF"},
    ]
    table = ui.runtime.table
    assert table.get_label(100, (0, 0, 0), "bg_color") == Label("bg_color", "str", "#FF00FF")
    # the same delta again is a duplicate: nothing changes, nothing is pushed
    again, changes2 = ui.apply_delta(BusMessage("snapshot_delta", "c-1:reply", payload=REPLY))
    assert again.duplicate and changes2 == []


def test_apply_delta_reports_removals() -> None:
    ui = ui_core()
    patch = {
        "version": "mt.v0",
        "op_id": "rm",
        "records": [{"op": "rm_label", "model_id": 100, "p": 0, "r": 0, "c": 0, "k": "status"}],
    }
    result, changes = ui.apply_delta(BusMessage("snapshot_delta", "rm", payload=patch))
    assert result.ok
    assert changes == [{"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "status", "removed": True}]


def test_apply_delta_refuses_function_labels() -> None:
    ui = ui_core()
    evil = {
        "version": "mt.v0",
        "op_id": "evil",
        "records": [
            {"op": "add_label", "model_id": -10, "p": 1, "r": 0, "c": 0, "k": "forward_ui_events",
             "t": "function", "v": "ctx.send_matrix({'pwned': True})"},
            {"op": "add_label", "model_id": -10, "p": 7, "r": 0, "c": 0, "k": "new_fn",
             "t": "func.python", "v": "return 1"},
        ],
    }  # fmt: skip
    before = snap(ui.runtime)
    result, changes = ui.apply_delta(BusMessage("snapshot_delta", "evil", payload=evil))
    assert not result.ok and result.rejected == 2 and result.applied == 0
    assert result.reason is not None and result.reason.startswith("untrusted_function")
    assert changes == []
    assert snap(ui.runtime) == before
    assert ui.runtime.find_function("new_fn") is None
    # the real forward function still works
    assert ui.accept(body(op_id="after"), now_ms=NOW_MS).messages[0]["op_id"] == "after"


def test_apply_delta_refuses_other_types_and_bad_patches() -> None:
    ui = ui_core()
    with pytest.raises(ValidationError, match="not a snapshot_delta"):
        ui.apply_delta(BusMessage("ui_event", "x", payload=REPLY))
    before = snap(ui.runtime)
    result, changes = ui.apply_delta(BusMessage("snapshot_delta", "x", payload=[1]))
    assert result.refused and changes == []
    assert snap(ui.runtime) == before


def test_end_to_end_pure_chain() -> None:
    ui = ui_core()
    mbr = bridge()
    w = worker(100)

    accepted = ui.accept(body(op_id="e2e-1"), now_ms=NOW_MS)
    (matrix_content,) = accepted.messages
    publish = mbr.from_matrix(matrix_content)
    assert publish is not None and publish.topic == f"{BASE}/100/event_in"
    handled = w.handle(publish.topic, publish.encode())
    assert handled.refused is None
    ((reply_topic, reply),) = handled.replies
    assert reply_topic == f"{BASE}/100/patch_out"
    delta = mbr.from_mqtt(reply_topic, encode(reply))
    assert delta is not None and delta.op_id == "e2e-1:reply"
    # it crosses Matrix as a dict: same content after a to_dict / from_dict trip
    delta = BusMessage.from_dict(delta.to_dict())
    result, changes = ui.apply_delta(delta)

    assert result.ok
    table = ui.runtime.table
    assert table.get_label(100, (0, 0, 0), "bg_color") == Label("bg_color", "str", "#FF00FF")
    status = table.get_label(100, (0, 0, 0), "status")
    assert status is not None and WORKER_ID in status.v
    assert {c["k"]: c["v"] for c in changes}["bg_color"] == "#FF00FF"
    assert isinstance(delta.payload, dict)
    hops = delta.payload["hops"]
    assert hop_names(hops) == [
        "ui_server.received",
        "mbr.received",
        "mbr.to_mqtt",
        "worker.received",
        "worker.reply",
        "mbr.to_matrix",
    ]
    ts = [h["ts_us"] for h in hops]
    assert ts == sorted(ts) and all(type(t) is int and t < 2**53 for t in ts)
    assert [h.hop for h in delta.hops] == hop_names(hops)
    assert floats_in(delta.to_dict()) == []
    assert (mbr.metrics.from_matrix, mbr.metrics.from_mqtt) == (1, 1)
    assert mbr.metrics.rejected == {} and w.metrics.rejected == {}

    # a retransmission of the same Matrix event stops at the bridge
    assert mbr.from_matrix(matrix_content) is None and mbr.metrics.duplicates == 1


def test_trace_of_an_applied_reply_is_kept_under_both_op_ids() -> None:
    from dongyu import programs
    from dongyu.messages.bus import BusMessage
    from dongyu.program.host import OutboxHost
    from dongyu.program.runtime import Runtime
    from dongyu.ui.core import UiCore

    runtime = Runtime(OutboxHost())
    for name in ("ui_server", "color_form"):
        runtime.load_program(programs.load(name))
    core = UiCore(runtime, OutboxHost(), traces_kept=2)
    hops = [{"hop": "ui_server.received", "ts_us": 10}, {"hop": "worker.reply", "ts_us": 20}]
    for n in range(3):
        patch = {"version": "mt.v0", "op_id": f"e{n}:reply", "records": [], "hops": hops}
        core.apply_delta(BusMessage("snapshot_delta", f"e{n}:reply", payload=patch))
    got = core.trace("e2")
    assert got is not None and [h["hop"] for h in got] == [
        "ui_server.received",
        "worker.reply",
        "ui_server.applied",
    ]
    assert core.trace("e2:reply") == got
    assert core.trace("e0") is None  # only the newest are kept
    assert core.trace("nope") is None
