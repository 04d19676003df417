"""The MBR's pure logic: Matrix ui_event -> MQTT (spec 7.3), patch_out -> Matrix (7.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dongyu.bridge.core import BridgeCore, Publish
from dongyu.bridge.translate import parse_topic, topic_for
from dongyu.errors import ValidationError
from dongyu.messages.bus import BusMessage
from dongyu.patch.envelope import parse_envelope
from tests.unit.chain.common import BASE, NOW_MS, bridge, dumps, floats_in, hop_names, ui_message


def _publish(core: BridgeCore, content: dict[str, Any]) -> Publish:
    out = core.from_matrix(content)
    assert out is not None
    wire = json.loads(out.encode())
    assert wire == out.payload
    envelope = parse_envelope(wire)
    assert envelope.op_id == content["op_id"]
    return out


def test_model_without_event_pin_gets_a_patch_on_patch_in() -> None:
    core = bridge()
    assert not core.has_event_pin(2) and core.has_event_pin(100)
    out = _publish(core, ui_message(model_id=2, k="x", value={"t": "str", "v": "hi"}))
    assert out.topic == "UIPUT/ws/dam/pic/de/sw/2/patch_in"
    assert out.payload["version"] == "mt.v0" and out.payload["op_id"] == "op-1"
    assert out.payload["records"] == [
        {"op": "add_label", "model_id": 2, "p": 0, "r": 0, "c": 0, "k": "x", "t": "str", "v": "hi"}
    ]
    # the event travels along too, for the seed's worker to log
    assert out.payload["action"] == "label_update"
    assert out.payload["timestamp"] == NOW_MS
    assert hop_names(out.payload["hops"]) == ["ui_server.received", "mbr.received", "mbr.to_mqtt"]
    assert core.metrics.from_matrix == 1 and core.metrics.duplicates == 0


@pytest.mark.parametrize(
    ("action", "k", "value", "record"),
    [
        ("label_add", "n", {"t": "int", "v": 5},
         {"op": "add_label", "model_id": 2, "p": 0, "r": 0, "c": 0, "k": "n", "t": "int", "v": 5}),
        ("label_update", "j", {"t": "json", "v": {"z": [1, None]}},
         {"op": "add_label", "model_id": 2, "p": 0, "r": 0, "c": 0, "k": "j", "t": "json", "v": {"z": [1, None]}}),
        ("label_remove", "n", None,
         {"op": "rm_label", "model_id": 2, "p": 0, "r": 0, "c": 0, "k": "n"}),
        ("cell_clear", "ignored", None,
         {"op": "cell_clear", "model_id": 2, "p": 0, "r": 0, "c": 0}),
        ("cell_clear", None, None,
         {"op": "cell_clear", "model_id": 2, "p": 0, "r": 0, "c": 0}),
        ("submodel_create", None, {"t": "json", "v": {"name": "sub", "type": "ui"}},
         {"op": "create_model", "model_id": 2, "name": "sub", "type": "ui"}),
        ("submodel_create", None, None,
         {"op": "create_model", "model_id": 2, "name": "model_2", "type": "data"}),
    ],
)  # fmt: skip
def test_each_action_becomes_its_record(
    action: str, k: str | None, value: Any, record: dict[str, Any]
) -> None:
    out = _publish(bridge(), ui_message(action, model_id=2, k=k, value=value))
    assert out.topic == f"{BASE}/2/patch_in"
    assert out.payload["records"] == [record]
    assert "k" not in out.payload["records"][0] or action != "cell_clear"


def test_create_model_for_a_new_model_goes_to_its_own_topic() -> None:
    out = _publish(bridge(), ui_message("submodel_create", model_id=7, k=None))
    assert out.topic == f"{BASE}/7/patch_in"
    assert out.payload["records"][0]["op"] == "create_model"


def test_model_with_event_pin_gets_the_event_whole() -> None:
    core = bridge()
    content = ui_message(model_id=100)
    out = _publish(core, content)
    assert out.topic == "UIPUT/ws/dam/pic/de/sw/100/event_in"
    assert out.payload["records"] == []
    assert out.payload["action"] == "label_update"
    assert out.payload["data"] == content["data"]
    assert out.payload["timestamp"] == NOW_MS
    assert hop_names(out.payload["hops"]) == ["ui_server.received", "mbr.received", "mbr.to_mqtt"]
    assert core.metrics.rejected == {}


def test_duplicate_op_id_is_dropped_once_per_repeat() -> None:
    core = bridge()
    assert core.from_matrix(ui_message(op_id="dup")) is not None
    assert core.from_matrix(ui_message(op_id="dup")) is None
    assert core.metrics.duplicates == 1
    assert core.from_matrix(ui_message(op_id="dup", model_id=2, k="x")) is None
    assert core.metrics.duplicates == 2
    assert core.from_matrix(ui_message(op_id="other")) is not None
    assert core.metrics.from_matrix == 4 and core.metrics.duplicates == 2


def test_refused_event_does_not_use_up_its_op_id() -> None:
    core = bridge()
    bad = ui_message(op_id="retry")
    del bad["data"]["target"]["p"]
    assert core.from_matrix(bad) is None
    assert core.from_matrix(ui_message(op_id="retry")) is not None
    assert core.metrics.duplicates == 0


@pytest.mark.parametrize("kind", ["snapshot_delta", "pin_out", "mbr_ready", "error"])
def test_other_types_are_ignored(kind: str) -> None:
    core = bridge()
    content = {**ui_message(), "type": kind}
    assert core.from_matrix(content) is None
    assert core.metrics.ignored == 1 and core.metrics.rejected == {}
    # an ignored message does not mark its op_id as bridged
    assert core.from_matrix(ui_message()) is not None


def _broken(**changes: Any) -> dict[str, Any]:
    content = ui_message()
    for key, value in changes.items():
        if value is KeyError:
            del content[key]
        else:
            content[key] = value
    return content


MALFORMED: list[tuple[str, Any, str]] = [
    ("not an object", "ui_event", "invalid_value"),
    ("wrong version", _broken(version="v9"), "invalid_value"),
    ("unknown type", _broken(type="label_update"), "invalid_value"),
    ("no op_id", _broken(op_id=KeyError), "invalid_value"),
    ("float timestamp", _broken(timestamp=1.5), "invalid_value"),
    ("no data", _broken(data=KeyError), "invalid_value"),
    ("data list", _broken(data=[1]), "invalid_value"),
    ("no target", _broken(data={"value": {"t": "str", "v": "x"}}), "missing_field"),
    ("no action", _broken(action=KeyError), "unknown_action"),
    ("unknown action", _broken(action="explode"), "unknown_action"),
    ("bool coordinate", _broken(data={"target": {"model_id": 100, "p": True, "r": 0, "c": 0, "k": "x"}, "value": {"t": "str", "v": "x"}}), "invalid_type"),
    ("no value", _broken(data={"target": {"model_id": 2, "p": 0, "r": 0, "c": 0, "k": "x"}}), "missing_field"),
    ("bad hops", _broken(hops=[{"hop": "x", "ts_us": 1.5}]), "invalid_value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_content_is_refused_and_counted(content: Any, code: str) -> None:
    core = bridge()
    assert core.from_matrix(content) is None
    assert core.metrics.rejected == {code: 1}
    assert core.metrics.duplicates == 0 and core.metrics.ignored == 0
    assert core.from_matrix(content) is None
    assert core.metrics.rejected == {code: 2}


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    action=st.sampled_from(["label_add", "label_update", "label_remove", "cell_clear"]),
    model_id=st.sampled_from([2, 100, 5, -1]),
    k=st.text(min_size=1, max_size=10),
    v=values,
)
def test_published_payload_is_json_without_floats(
    action: str, model_id: int, k: str, v: Any
) -> None:
    core = bridge()
    content = ui_message(action, model_id=model_id, k=k, value={"t": "json", "v": v})
    out = core.from_matrix(content)
    assert out is not None
    wire = out.encode()
    decoded = json.loads(wire)
    assert decoded == out.payload
    assert floats_in(decoded) == []
    assert parse_envelope(decoded).op_id == "op-1"
    expected_pin = "event_in" if model_id == 100 else "patch_in"
    assert out.topic == topic_for(BASE, model_id, expected_pin)


# ---- MQTT patch_out -> Matrix snapshot_delta --------------------------------

REPLY: dict[str, Any] = {
    "version": "mt.v0",
    "op_id": "op-1:reply",
    "records": [
        {"op": "add_label", "model_id": 100, "p": 0, "r": 0, "c": 0, "k": "bg_color", "t": "str", "v": "#FF00FF"}
    ],
    "hops": [{"hop": "worker.reply", "ts_us": 5}],
}  # fmt: skip


def test_patch_out_becomes_snapshot_delta() -> None:
    core = bridge()
    message = core.from_mqtt(f"{BASE}/100/patch_out", dumps(REPLY))
    assert message is not None
    assert message.type == "snapshot_delta" and message.op_id == "op-1:reply"
    assert message.source_model_id == 100
    assert isinstance(message.payload, dict)
    assert message.payload["records"] == REPLY["records"]
    assert parse_envelope(message.payload).op_id == "op-1:reply"
    assert hop_names(message.payload["hops"]) == ["worker.reply", "mbr.to_matrix"]
    assert [h.hop for h in message.hops] == ["worker.reply", "mbr.to_matrix"]
    content = message.to_dict()
    assert json.loads(json.dumps(content)) == content
    assert BusMessage.from_dict(content) == message
    assert floats_in(content) == []
    assert core.metrics.from_mqtt == 1 and core.metrics.rejected == {}


def test_patch_out_without_hops_gets_the_bridge_stamp() -> None:
    reply = {k: v for k, v in REPLY.items() if k != "hops"}
    message = bridge().from_mqtt(f"{BASE}/-3/patch_out", dumps(reply))
    assert message is not None and message.source_model_id == -3
    assert isinstance(message.payload, dict)
    assert hop_names(message.payload["hops"]) == ["mbr.to_matrix"]


BAD_MQTT: list[tuple[str, str, bytes, str]] = [
    ("not JSON", f"{BASE}/100/patch_out", b"{nope", "not_json"),
    ("not UTF-8", f"{BASE}/100/patch_out", b"\xff\xfe{", "not_json"),
    ("NaN", f"{BASE}/100/patch_out", b'{"version":"mt.v0","op_id":"x","records":[],"v":NaN}', "not_json"),
    ("deep nesting", f"{BASE}/100/patch_out", b"[" * 200_000, "not_json"),
    ("a list", f"{BASE}/100/patch_out", b"[]", "invalid_patch"),
    ("wrong version", f"{BASE}/100/patch_out", dumps({**REPLY, "version": "mt.v1"}), "invalid_patch"),
    ("no records", f"{BASE}/100/patch_out", dumps({"version": "mt.v0", "op_id": "x"}), "invalid_patch"),
    ("empty op_id", f"{BASE}/100/patch_out", dumps({**REPLY, "op_id": ""}), "invalid_patch"),
    ("bad hops", f"{BASE}/100/patch_out", dumps({**REPLY, "hops": [{"hop": "w", "ts_us": 2**60}]}), "invalid_value"),
    ("patch_in pin", f"{BASE}/100/patch_in", dumps(REPLY), "invalid_value"),
    ("event_in pin", f"{BASE}/100/event_in", dumps(REPLY), "invalid_value"),
    ("wrong base", "other/base/100/patch_out", dumps(REPLY), "invalid_value"),
    ("base prefix only", f"{BASE}x/100/patch_out", dumps(REPLY), "invalid_value"),
    ("non-int model", f"{BASE}/abc/patch_out", dumps(REPLY), "invalid_value"),
    ("float model", f"{BASE}/1.0/patch_out", dumps(REPLY), "invalid_value"),
    ("underscore model", f"{BASE}/1_00/patch_out", dumps(REPLY), "invalid_value"),
    ("spaced model", f"{BASE}/ 100/patch_out", dumps(REPLY), "invalid_value"),
    ("plus model", f"{BASE}/+100/patch_out", dumps(REPLY), "invalid_value"),
    ("empty model", f"{BASE}//patch_out", dumps(REPLY), "invalid_value"),
    ("extra level", f"{BASE}/100/x/patch_out", dumps(REPLY), "invalid_value"),
    ("no pin", f"{BASE}/100", dumps(REPLY), "invalid_value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "payload", "code"), [b[1:] for b in BAD_MQTT], ids=[b[0] for b in BAD_MQTT]
)
def test_bad_patch_out_is_refused_and_counted(topic: str, payload: bytes, code: str) -> None:
    core = bridge()
    assert core.from_mqtt(topic, payload) is None
    assert core.metrics.rejected == {code: 1}
    assert core.metrics.from_mqtt == 1


def test_patch_out_filter_and_ready_message() -> None:
    core = BridgeCore(bridge().runtime, topic_base="/UIPUT/ws/dam/pic/de/sw/")
    assert core.patch_out_filter == f"{BASE}/+/patch_out"
    ready = BridgeCore.ready_message("mbr-1")
    assert ready.type == "mbr_ready" and ready.data == {"bridge": "mbr-1"}
    assert ready.op_id.startswith("mbr_ready:")
    assert BridgeCore.ready_message("mbr-1").op_id != ready.op_id
    assert BusMessage.from_dict(ready.to_dict()) == ready


@given(
    st.integers(-(10**30), 10**30),
    st.text(st.characters(blacklist_characters="/+#"), min_size=1, max_size=12),
)
def test_topic_round_trip(model_id: int, pin: str) -> None:
    assert parse_topic(BASE, topic_for(BASE, model_id, pin)) == (model_id, pin)


@given(st.text(max_size=8))
def test_only_canonical_model_ids_parse(level: str) -> None:
    topic = f"{BASE}/{level}/patch_out"
    try:
        model_id, _ = parse_topic(BASE, topic)
    except ValidationError:
        return
    assert level == str(model_id)
