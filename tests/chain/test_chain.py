"""The chain over the real servers, driven over HTTP: the seed's model 2 path, de-duplication,
a third user in the room, bad requests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from dongyu.infra.matrix_http import MatrixHttp
from dongyu.infra.state import StatePaths, read_json
from dongyu.settings import read_infra_info
from dongyu.stack.local import LocalStack
from tests.chain.conftest import http, metrics, ui_event


def _worker(stack: LocalStack, path: str) -> str:
    return f"http://127.0.0.1:{stack.ports.worker_health}{path}"


def _mbr(stack: LocalStack, path: str) -> str:
    return f"http://127.0.0.1:{stack.ports.mbr_health}{path}"


def _wait(predicate: Any, timeout_s: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _worker_label(stack: LocalStack, model_id: int, cell: str, k: str) -> Any:
    status, body = http("GET", _worker(stack, "/snapshot"))
    assert status == 200
    labels = (
        body["snapshot"]["models"]
        .get(str(model_id), {})
        .get("cells", {})
        .get(cell, {})
        .get("labels", {})
    )
    return labels.get(k)


def test_seed_model_2_path(stack: LocalStack) -> None:
    op_id = f"seed-{uuid.uuid4().hex[:8]}"
    status, answer = http(
        "POST", f"{stack.ui_url}/ui_event", ui_event(2, "input_value", "#ff00ff", op_id)
    )
    assert status == 200, answer
    assert (
        answer["op_id"] == op_id
        and answer["event_id"].startswith("$")
        and answer["status"] == "sent"
    )

    def stored() -> Any:
        label = _worker_label(stack, 2, "1,0,0", "last_event")
        return label if label and label["v"].get("op_id") == op_id else None

    label = _wait(stored, what="last_event at model 2 cell (1,0,0)")
    assert label["t"] == "json"
    assert label["v"]["action"] == "label_update"
    assert label["v"]["records"][0]["op"] == "add_label"
    assert _worker_label(stack, 2, "0,1,1", "mqtt_in") is None, "the pin is cleared"

    worker_log = (stack.log_dir / "worker.log").read_text()
    lines = [line for line in worker_log.splitlines() if op_id in line or "/2/patch_in" in line]
    text = "\n".join(lines)
    for expected in (
        "topic received: UIPUT/ws/dam/pic/de/sw/2/",
        "payload: {",
        '"action":"label_update"',
        "written to PIN_IN mqtt_in of model 2",
        "action received: label_update",
        "processed successfully",
    ):
        assert expected in text, f"worker log lacks {expected!r}:\n{text}"
    order = [
        text.index(s) for s in ("written to PIN_IN", "action received", "processed successfully")
    ]
    assert order == sorted(order), "the seed's order: written, action received, processed"
    for component, expected in (
        ("ui-server", "sent ui_event label_update to Matrix as $"),
        ("mbr", "publishing to UIPUT/ws/dam/pic/de/sw/2/patch_in"),
    ):
        log_text = (stack.log_dir / f"{component}.log").read_text()
        assert any(op_id in line and expected in line for line in log_text.splitlines()), component


def test_duplicate_op_id_is_applied_once(stack: LocalStack) -> None:
    before_worker = metrics(_worker(stack, "/metrics"))
    before_mbr = metrics(_mbr(stack, "/metrics"))
    op_id = f"dup-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        status, answer = http(
            "POST", f"{stack.ui_url}/ui_event", ui_event(100, "input_value", "#123456", op_id)
        )
        assert status == 200, answer
    _wait(
        lambda: (
            metrics(_mbr(stack, "/metrics"))["dongyu_mbr_duplicates_total"]
            >= before_mbr["dongyu_mbr_duplicates_total"] + 1
        ),
        what="the bridge to drop the duplicate",
    )
    _wait(
        lambda: (
            metrics(_worker(stack, "/metrics"))["dongyu_worker_function_runs_total"]
            >= before_worker["dongyu_worker_function_runs_total"] + 1
        ),
        what="the worker to run",
    )
    time.sleep(0.5)  # a second delivery, if any, would have arrived by now
    after = metrics(_worker(stack, "/metrics"))
    assert (
        after["dongyu_worker_function_runs_total"]
        == before_worker["dongyu_worker_function_runs_total"] + 1
    )
    assert (
        after["dongyu_worker_messages_in_total"]
        == before_worker["dongyu_worker_messages_in_total"] + 1
    )


def test_the_bridge_ignores_a_third_user(stack: LocalStack) -> None:
    paths = StatePaths(stack.state_dir)
    embedded = read_json(paths.embedded_file)
    assert embedded is not None
    info = read_infra_info(stack.state_dir)
    room = info.matrix.matrix_room_id
    assert room is not None and info.matrix.drop is not None
    api = MatrixHttp(info.matrix.homeserver_url)
    eve = api.register_with_shared_secret(
        embedded["synapse"]["secrets"]["registration_shared_secret"],
        f"eve{uuid.uuid4().hex[:6]}",
        uuid.uuid4().hex,
    )
    assert info.matrix.drop.access_token is not None
    api.invite(info.matrix.drop.access_token, room, eve.user_id)
    api.join(eve.access_token, room)
    before = metrics(_worker(stack, "/metrics"))["dongyu_worker_messages_in_total"]
    before_ignored = metrics(_mbr(stack, "/metrics"))["dongyu_mbr_ignored_total"]
    op_id = f"eve-{uuid.uuid4().hex[:8]}"
    content = {
        "version": "v0",
        "type": "ui_event",
        "op_id": op_id,
        "action": "label_update",
        "data": {
            "target": {"model_id": 2, "p": 0, "r": 0, "c": 0, "k": "input_value"},
            "value": {"t": "str", "v": "evil"},
        },
    }
    api.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/send/dy.bus.v0/{uuid.uuid4().hex}",
        token=eve.access_token,
        body=content,
    )
    _wait(
        lambda: metrics(_mbr(stack, "/metrics"))["dongyu_mbr_ignored_total"] > before_ignored,
        what="the bridge to ignore the third user's event",
    )
    mbr_log = (stack.log_dir / "mbr.log").read_text()
    assert f"ignored a dy.bus.v0 event from {eve.user_id}" in mbr_log
    assert op_id not in mbr_log
    assert metrics(_worker(stack, "/metrics"))["dongyu_worker_messages_in_total"] == before


def test_bad_requests_get_a_4xx_with_a_reason(stack: LocalStack) -> None:
    url = f"{stack.ui_url}/ui_event"
    before = http("GET", f"{stack.ui_url}/snapshot")[1]
    cases: list[tuple[bytes, int, str]] = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_type"),
        (json.dumps({"source": "ui_renderer", "type": "label_add"}).encode(), 400, "missing_field"),
        (
            json.dumps(ui_event(100, "input_value", "x", "op", action="paint")).encode(),
            400,
            "unknown_action",
        ),
        (json.dumps(ui_event(100, "", "x", "op")).encode(), 400, "invalid_value"),
        (
            b'{"source": "ui_renderer", "type": "label_add", "payload": {"action": "label_update", '
            b'"target": {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "x"}, "value": {"t": "float", "v": NaN}}}',
            400,
            "invalid_json",
        ),
        (b"x" * (64 * 1024 + 1), 413, "too_large"),
    ]
    for raw, status, code in cases:
        got_status, answer = http("POST", url, raw=raw)
        assert got_status == status, (raw[:60], got_status, answer)
        assert answer["error"] == code, (raw[:60], answer)
        assert answer["reason"], answer
    assert http("GET", f"{stack.ui_url}/snapshot")[1] == before
    assert http("GET", f"{stack.ui_url}/healthz")[0] == 200


def test_snapshot_endpoint_shape(stack: LocalStack) -> None:
    status, body = http("GET", f"{stack.ui_url}/snapshot")
    assert status == 200
    models = body["snapshot"]["models"]
    assert models["100"]["cells"]["0,0,0"]["labels"]["ui_type"]["v"] == "color_form"
    assert models["0"]["name"] == "MT"


def test_a_bridge_restart_neither_misses_nor_repeats_events(stack: LocalStack) -> None:
    """Events sent while the bridge is down arrive after its restart, once each (the
    saved Matrix sync position; op_id de-duplication backs it up)."""
    before = metrics(_worker(stack, "/metrics"))["dongyu_worker_function_runs_total"]
    assert stack.stop_component("mbr") == 0, "SIGTERM stops the bridge cleanly"
    op_ids = [f"while-down-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    for op_id in op_ids:
        status, answer = http(
            "POST", f"{stack.ui_url}/ui_event", ui_event(100, "input_value", "#0000aa", op_id)
        )
        assert status == 200, answer  # the homeserver holds it: the bridge is not needed to accept
    stack.start_component("mbr")
    _wait(
        lambda: (
            metrics(_worker(stack, "/metrics"))["dongyu_worker_function_runs_total"] >= before + 3
        ),
        what="the three events to reach the worker",
    )
    stack.restart_component("mbr")  # a second restart must not replay them
    time.sleep(1.0)
    assert metrics(_worker(stack, "/metrics"))["dongyu_worker_function_runs_total"] == before + 3
    worker_log = (stack.log_dir / "worker.log").read_text()
    for op_id in op_ids:
        assert worker_log.count(f"processed successfully [op_id {op_id}]") == 1, op_id
