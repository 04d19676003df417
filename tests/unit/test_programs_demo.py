"""The two demo program models of spec 8, run on their expected inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dongyu import programs
from dongyu.core.labels import Label
from dongyu.core.snapshot import dumps_canonical, to_snapshot
from dongyu.errors import UnknownProgram
from dongyu.program import RecordingHost, Runtime
from tests.unit.helpers import add, patch

SEED_MESSAGE = {
    "version": "mt.v0",
    "op_id": "ui-1",
    "records": [],
    "action": "label_update",
    "data": {
        "target": {"model_id": 2, "p": 0, "r": 0, "c": 0, "k": "x"},
        "value": {"t": "str", "v": "hi"},
    },
    "timestamp": 1700000000000,
}


def _runtime(*names: str) -> tuple[Runtime, RecordingHost]:
    host = RecordingHost()
    rt = Runtime(host)
    for name in names:
        assert rt.load_program(programs.load(name)).ok
    return rt, host


def test_names_and_unknown_program(tmp_path: Path) -> None:
    assert {"color_form", "remote_worker"} <= set(programs.names())
    with pytest.raises(UnknownProgram) as err:
        programs.load("no_such_program")
    assert "no_such_program" in str(err.value) and err.value.code == "unknown_program"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(UnknownProgram):
        programs.load(bad)
    arr = tmp_path / "arr.json"
    arr.write_text("[]")
    with pytest.raises(UnknownProgram):
        programs.load(arr)
    good = tmp_path / "good.json"
    good.write_text('{"version": "mt.v0", "op_id": "f", "records": []}')
    assert programs.load(good)["op_id"] == "f"


def test_remote_worker_model() -> None:
    rt, _ = _runtime("remote_worker")
    model = rt.table.model(2)
    assert model is not None and (model.name, model.type) == ("remote_worker", "main")
    assert rt.table.get_label(2, (0, 0, 0), "worker_name") == Label(
        "worker_name", "str", "k8s_remote_worker_1"
    )
    found = rt.find_function("process_mqtt_message")
    assert found is not None and found[0] == (3, 0, 0)


@pytest.mark.parametrize("as_text", [False, True])
def test_remote_worker_stores_the_message_and_clears_the_pin(as_text: bool) -> None:
    rt, _ = _runtime("remote_worker")
    value = dumps_canonical(SEED_MESSAGE) if as_text else SEED_MESSAGE
    runs = rt.write_pin(2, "mqtt_in", value, op_id="ui-1")
    assert [(r.name, r.ok, r.result) for r in runs] == [
        ("process_mqtt_message", True, "label_update")
    ]
    assert rt.table.get_label(2, (1, 0, 0), "last_event") == Label(
        "last_event", "json", SEED_MESSAGE
    )
    assert rt.table.get_label(2, (0, 1, 1), "mqtt_in") is None
    assert dict(rt.table.cell(2, (0, 1, 1))) == {}


def test_remote_worker_via_a_patch() -> None:
    rt, _ = _runtime("remote_worker")
    result = rt.apply_patch(patch([add(2, (0, 1, 1), "mqtt_in", "IN", SEED_MESSAGE)], "bus-1"))
    assert result.ok
    assert rt.table.get_label(2, (1, 0, 0), "last_event") == Label(
        "last_event", "json", SEED_MESSAGE
    )
    assert rt.table.get_label(2, (0, 1, 1), "mqtt_in") is None


def test_color_form_model() -> None:
    rt, _ = _runtime("color_form")
    cell = rt.table.cell(100, (0, 0, 0))
    assert cell["ui_type"].v == "color_form"
    assert cell["bg_color"].v == "#FFFFFF" and cell["status"].v == "ready"
    assert "input_value" in cell
    pins = rt.table.cell(100, (0, 0, 1))
    assert (pins["event_in"].t, pins["patch_out"].t) == ("PIN_IN", "PIN_OUT")
    assert rt.pin_function(100, "event_in") == "on_color_submit"


def _color_event(colour: object) -> dict[str, object]:
    return {
        "version": "mt.v0",
        "op_id": "ev-1",
        "records": [],
        "action": "label_update",
        "data": {
            "target": {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "input_value"},
            "value": {"t": "str", "v": colour},
        },
    }


def test_color_form_paints_and_replies() -> None:
    rt, host = _runtime("color_form")
    rt.apply_patch(
        patch([add(-2, (0, 0, 0), "worker_id", "str", "worker-7")], "state"),
        allow_create_model=True,
    )
    runs = rt.write_pin(100, "event_in", _color_event("#ff00ff"), op_id="ev-1")
    assert [(r.name, r.ok) for r in runs] == [("on_color_submit", True)]
    cell = rt.table.cell(100, (0, 0, 0))
    assert cell["bg_color"] == Label("bg_color", "str", "#FF00FF")
    assert cell["input_value"].v == "#ff00ff"
    assert "worker-7" in cell["status"].v and "#FF00FF" in cell["status"].v
    assert rt.table.get_label(100, (0, 1, 1), "event_in") is None
    (topic, reply) = host.mqtt[-1]
    assert len(host.mqtt) == 1 and host.matrix == []
    assert topic == "UIPUT/ws/dam/pic/de/sw/100/patch_out"
    assert (
        isinstance(reply, dict) and reply["version"] == "mt.v0" and reply["op_id"] == "ev-1:reply"
    )
    # the reply, applied untrusted to a fresh table with the colour form, gives the same model 100
    fresh, _ = _runtime("color_form")
    result = fresh.apply_patch(reply)
    assert result.ok and result.applied == len(reply["records"])
    assert dumps_canonical(to_snapshot(fresh.table)["models"]["100"]) == dumps_canonical(
        to_snapshot(rt.table)["models"]["100"]
    )


def test_color_form_default_worker_and_topic_base() -> None:
    rt, host = _runtime("color_form")
    rt.apply_patch(patch([add(0, (0, 0, 0), "mqtt_topic_base", "str", "base")], "b"))
    rt.write_pin(100, "event_in", _color_event("#00aa11"))
    assert rt.table.get_label(100, (0, 0, 0), "status") == Label(
        "status", "str", "remote_worker: #00AA11"
    )
    assert host.mqtt[-1][0] == "base/100/patch_out"


@pytest.mark.parametrize("colour", ["red", "#12345", "#GGGGGG", 123, None])
def test_color_form_refuses_a_bad_colour(colour: object) -> None:
    rt, host = _runtime("color_form")
    rt.write_pin(100, "event_in", _color_event(colour))
    cell = rt.table.cell(100, (0, 0, 0))
    assert cell["bg_color"].v == "#FFFFFF"
    assert "refused" in cell["status"].v and repr(colour) in cell["status"].v
    (_, reply) = host.mqtt[-1]
    assert isinstance(reply, dict)
    assert [r["k"] for r in reply["records"]] == ["status"]


def test_color_form_with_a_non_object_event_is_an_error_event() -> None:
    rt, host = _runtime("color_form")
    (run,) = rt.write_pin(100, "event_in", [1, 2])
    assert not run.ok and "ValueError" in (run.error or "")
    assert list(rt.table.log)[-1].op == "error"
    assert host.mqtt == []
    assert rt.table.get_label(100, (0, 0, 0), "status") == Label("status", "str", "ready")


def test_both_programs_load_together() -> None:
    rt, _ = _runtime("remote_worker", "color_form")
    assert rt.find_function("process_mqtt_message") is not None
    assert rt.find_function("on_color_submit") is not None
    assert {2, 100, -10} <= set(rt.table.models)
