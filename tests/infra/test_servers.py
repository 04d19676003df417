"""The issue's tests, against the real Synapse and mosquitto started by ``up()`` (conftest)."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from dongyu.adapters.matrix import MatrixBusClient
from dongyu.adapters.mqtt import MqttConnection, MqttEndpoint, try_connect
from dongyu.cli.main import main as cli_main
from dongyu.errors import PortInUse
from dongyu.infra import down, status, up
from dongyu.infra.matrix_http import MatrixHttp, MatrixHttpError
from dongyu.infra.process import free_port, tcp_answers
from dongyu.infra.state import StatePaths
from dongyu.settings import ExternalMatrix, ExternalMqtt, InfraInfo, InfraSettings, MqttAccount
from tests.infra.conftest import Infra

pytestmark = pytest.mark.infra


def _endpoint(info: InfraInfo, account: MqttAccount | None) -> MqttEndpoint:
    assert account is not None
    return MqttEndpoint(info.mqtt.host, info.mqtt.port, account.username, account.password)


# --------------------------------------------------------------------------- Matrix


def test_up_reports_both_servers_answering(infra: Infra) -> None:
    result = infra.first_up
    assert set(result.started) == {"synapse", result.info.mqtt.mode}
    assert [s.bus for s in result.servers] == ["matrix", "mqtt"]
    for server in result.servers:
        assert server.running and server.healthy and server.pid, server
        assert "127.0.0.1" in server.url
    assert result.info.mqtt.mode == "mosquitto", "mosquitto is installed by scripts/setup"


def test_both_users_log_in(infra: Infra) -> None:
    m = infra.info.matrix
    http = MatrixHttp(m.homeserver_url)
    assert m.drop is not None
    for account in (m.drop, m.mbr):
        assert account.password
        session = http.login(account.user_id, account.password)
        assert http.whoami(session.access_token) == account.user_id
    assert m.drop.user_id == "@drop:localhost" and m.mbr.user_id == "@mbr:localhost"
    with pytest.raises(MatrixHttpError) as refused:
        http.login(m.mbr.user_id, "not-the-password")
    assert refused.value.status == 403


def test_registration_is_closed(infra: Infra) -> None:
    http = MatrixHttp(infra.info.matrix.homeserver_url)
    with pytest.raises(MatrixHttpError) as refused:
        http.request(
            "POST",
            "/_matrix/client/v3/register",
            {"username": "intruder", "password": "x" * 20, "auth": {"type": "m.login.dummy"}},
        )
    assert refused.value.status == 403


def test_the_dm_room_exists_with_both_joined(infra: Infra) -> None:
    m = infra.info.matrix
    assert m.drop is not None and m.matrix_room_id
    http = MatrixHttp(m.homeserver_url)
    for account in (m.drop, m.mbr):
        assert account.access_token
        members = http.joined_members(account.access_token, m.matrix_room_id)
        assert members == {m.drop.user_id, m.mbr.user_id}
    # each side is configured with the other as its peer (spec section 5)
    assert m.drop.matrix_dm_peer_user_id == m.mbr.user_id
    assert m.mbr.matrix_dm_peer_user_id == m.drop.user_id


def _bus_client(infra: Infra, who: str) -> MatrixBusClient:
    m = infra.info.matrix
    account = m.drop if who == "drop" else m.mbr
    assert account is not None and account.access_token and m.matrix_room_id
    assert account.matrix_dm_peer_user_id
    return MatrixBusClient(
        m.homeserver_url,
        user_id=account.user_id,
        access_token=account.access_token,
        device_id=account.device_id,
        room_id=m.matrix_room_id,
        peer_user_id=account.matrix_dm_peer_user_id,
        sync_timeout_ms=2000,
    )


def test_a_bus_event_sent_by_drop_is_received_by_mbr(infra: Infra) -> None:
    op_id = f"op-{uuid.uuid4().hex}"
    content = {
        "version": "v0",
        "type": "ui_event",
        "op_id": op_id,
        "action": "label_update",
        "data": {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "input_value", "v": "#ff0000"},
        "timestamp": int(time.time() * 1000),
    }

    async def scenario() -> list[dict[str, object]]:
        drop, mbr = _bus_client(infra, "drop"), _bus_client(infra, "mbr")
        try:
            await mbr.start()
            await mbr.send({"version": "v0", "type": "mbr_ready", "op_id": "own-event"})
            await drop.send(content)
            got: list[dict[str, object]] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(e.get("op_id") == op_id for e in got):
                got += [
                    {**e.content, "_sender": e.sender} for e in await mbr.receive(timeout_ms=2000)
                ]
            return got
        finally:
            await drop.close()
            await mbr.close()

    received = asyncio.run(scenario())
    mine = [e for e in received if e.get("op_id") == op_id]
    assert len(mine) == 1, received
    assert mine[0]["_sender"] == "@drop:localhost"
    assert {k: v for k, v in mine[0].items() if k != "_sender"} == content
    # mbr's own event is not "received": only the configured peer's events are
    assert all(e["_sender"] == "@drop:localhost" for e in received)


# --------------------------------------------------------------------------- MQTT


def test_an_mqtt_client_without_credentials_is_refused(infra: Infra) -> None:
    info = infra.info
    anonymous = try_connect(MqttEndpoint(info.mqtt.host, info.mqtt.port))
    assert not anonymous.accepted
    assert anonymous.reason_code in (5, 135), anonymous  # not authorized (3.1.1 / 5)
    wrong = try_connect(MqttEndpoint(info.mqtt.host, info.mqtt.port, "worker", "wrong-password"))
    assert not wrong.accepted
    assert try_connect(_endpoint(info, info.mqtt.worker)).accepted


def _publish_and_watch(
    info: InfraInfo, publisher: str, topic: str, *, version: MQTTProtocolVersion
) -> tuple[bool, int]:
    """Does a message that ``publisher`` publishes on ``topic`` reach a subscriber with rights?

    The probe account (reads '#') subscribes; the publisher publishes (QoS 1,
    acknowledged), then the probe publishes a marker. The broker queues
    deliveries to the probe in the order it handled the publishes, so once
    the marker arrives, the first message has arrived too, if it was delivered.
    Returns (delivered, the PUBACK's reason code).
    """
    marker_topic = f"dongyu/probe/marker-{uuid.uuid4().hex[:8]}"
    payload = f"forbidden?-{uuid.uuid4().hex}".encode()
    probe = MqttConnection(_endpoint(info, info.mqtt.probe))
    sender = MqttConnection(_endpoint(info, getattr(info.mqtt, publisher)), version=version)
    try:
        probe.connect()
        assert probe.subscribe("#", qos=1) == 1
        sender.connect()
        ack = sender.publish(topic, payload, qos=1)
        probe.publish(marker_topic, b"marker", qos=1)
        seen: list[tuple[str, bytes]] = []
        while True:
            msg = probe.get(timeout_s=5)
            assert msg is not None, f"the marker never arrived; saw {seen}"
            seen.append((msg.topic, msg.payload))
            if msg.topic == marker_topic:
                break
        return (topic, payload) in seen, ack
    finally:
        sender.close()
        probe.close()


BASE = "UIPUT/ws/dam/pic/de/sw"


@pytest.mark.parametrize(
    ("publisher", "topic", "allowed"),
    [
        ("worker", f"{BASE}/2/patch_out", True),
        ("mbr", f"{BASE}/2/event_in", True),
        ("worker", f"{BASE}/2/event_in", False),
        ("worker", "elsewhere/2/patch_out", False),
        ("mbr", "elsewhere/2/event_in", False),
        ("ui", f"{BASE}/2/event_in", False),
    ],
)
def test_a_component_publishes_only_under_its_acl(
    infra: Infra, publisher: str, topic: str, allowed: bool
) -> None:
    v311 = MQTTProtocolVersion.MQTTv311
    assert _publish_and_watch(infra.info, publisher, topic, version=v311) == (allowed, 0)


def test_with_mqtt5_a_refused_publish_is_answered_not_authorized(infra: Infra) -> None:
    v5 = MQTTProtocolVersion.MQTTv5
    assert _publish_and_watch(infra.info, "worker", f"{BASE}/9/event_in", version=v5) == (
        False,
        0x87,
    )
    assert _publish_and_watch(infra.info, "worker", f"{BASE}/9/patch_out", version=v5) == (True, 0)


def test_a_component_receives_only_under_its_acl(infra: Infra) -> None:
    """mbr may read workers' replies (patch_out), not the other pins it writes."""
    info = infra.info
    reader = MqttConnection(_endpoint(info, info.mqtt.mbr), client_id="mbr-reader")
    mbr = MqttConnection(_endpoint(info, info.mqtt.mbr), client_id="mbr-writer")
    worker = MqttConnection(_endpoint(info, info.mqtt.worker))
    try:
        for conn in (reader, mbr, worker):
            conn.connect()
        reader.subscribe(f"{BASE}/#", qos=1)
        mbr.publish(f"{BASE}/2/event_in", b"not for mbr's eyes", qos=1)
        worker.publish(f"{BASE}/2/patch_out", b"reply", qos=1)
        first = reader.get(timeout_s=5)
        assert first is not None
        assert (first.topic, first.payload) == (f"{BASE}/2/patch_out", b"reply")
    finally:
        for conn in (reader, mbr, worker):
            conn.close()


# --------------------------------------------------------------------------- state, status, CLI


def test_secrets_are_private_files(infra: Infra) -> None:
    paths = StatePaths(infra.settings.state_dir)
    for path in (
        paths.infra_file,
        paths.embedded_file,
        paths.synapse_dir / "homeserver.yaml",
        paths.mosquitto_dir / "passwd",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "password" not in (paths.mosquitto_dir / "passwd").read_text()
    assert infra.info.mqtt.worker is not None and infra.info.mqtt.worker.password
    assert infra.info.mqtt.worker.password not in (paths.mosquitto_dir / "passwd").read_text()


def test_status_shows_health_url_and_pid(infra: Infra, capsys: pytest.CaptureFixture[str]) -> None:
    report = status(infra.settings)
    assert report.set_up
    assert all(s.healthy and s.pid for s in report.servers)
    code = cli_main(["infra", "status", "--json", "--state-dir", str(infra.settings.state_dir)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["healthy"] is True
    assert {s["name"] for s in data["servers"]} == {"synapse", "mosquitto"}
    assert data["matrix_room_id"] == infra.info.matrix.matrix_room_id


def test_up_twice_is_idempotent(infra: Infra) -> None:
    before = infra.info
    m = before.matrix
    assert m.drop is not None and m.drop.access_token and m.matrix_room_id
    http = MatrixHttp(m.homeserver_url)
    devices_before = len(http.devices(m.drop.access_token))
    pids_before = {s.name: s.pid for s in status(infra.settings).servers}

    again = up(infra.settings)

    assert again.started == ()
    assert {s.name: s.pid for s in again.servers} == pids_before
    assert again.info == before  # same users, passwords, tokens, room, accounts
    assert http.joined_rooms(m.drop.access_token) == [m.matrix_room_id]  # no second room
    assert len(http.devices(m.drop.access_token)) == devices_before  # no new logins


def test_external_mode_starts_nothing(infra: Infra, new_state_dir: Callable[[str], Path]) -> None:
    """An existing homeserver and broker, named as the environment would name them."""
    m = infra.info.matrix
    assert m.drop is not None
    state_dir = new_state_dir("dongyu-infra-external-")
    settings = InfraSettings(
        state_dir=state_dir,
        matrix_external=ExternalMatrix(
            homeserver_url=m.homeserver_url,
            mbr_user=m.mbr.user_id,
            mbr_password=m.mbr.password,
            mbr_access_token=None,
            room_id=m.matrix_room_id,
            drop_user=None,
            drop_password=None,
            drop_access_token=None,
            tls_verify=True,
        ),
        mqtt_external=ExternalMqtt(
            host=infra.info.mqtt.host,
            port=infra.info.mqtt.port,
            tls=False,
            mbr_username="mbr",
            mbr_password=None,
            worker_username=None,
            worker_password=None,
        ),
    )
    result = up(settings)
    assert result.started == ()
    assert not list(StatePaths(state_dir).run_dir.glob("*.json"))  # no process recorded
    assert result.info.matrix.mode == "external" and result.info.mqtt.mode == "external"
    assert result.info.matrix.matrix_room_id == m.matrix_room_id
    assert result.info.matrix.mbr.user_id == m.mbr.user_id
    assert [s.mode for s in status(settings).servers] == ["external", "external"]
    assert all(s.healthy for s in status(settings).servers)
    assert down(settings).stopped == ()


def test_a_taken_port_is_a_clear_error(infra: Infra, new_state_dir: Callable[[str], Path]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        state_dir = new_state_dir("dongyu-infra-port-")
        t0 = time.monotonic()
        with pytest.raises(PortInUse) as taken:
            up(InfraSettings(state_dir=state_dir, matrix_port=port, mqtt_port=free_port()))
        assert time.monotonic() - t0 < 5, "a taken port must fail fast, not hang"
        assert f"127.0.0.1:{port}" in str(taken.value)
        assert "--matrix-port" in str(taken.value)
        assert not list(StatePaths(state_dir).run_dir.glob("*.json")), "nothing started"


def test_down_then_up_keeps_users_and_room(infra: Infra) -> None:
    before = infra.info
    m = before.matrix
    assert m.drop is not None and m.drop.password and m.matrix_room_id

    stopped = down(infra.settings)
    assert set(stopped.stopped) == {"synapse", "mosquitto"}
    assert not tcp_answers("127.0.0.1", before.mqtt.port)
    assert not MatrixHttp(m.homeserver_url).answers()
    assert not any(s.running for s in status(infra.settings).servers)

    again = up(infra.settings)

    assert set(again.started) == {"synapse", "mosquitto"}
    after = again.info.matrix
    assert after.matrix_room_id == m.matrix_room_id
    assert (after.drop and after.drop.user_id, after.mbr.user_id) == (m.drop.user_id, m.mbr.user_id)
    assert not [s for s in again.steps if s.detail in ("registered", "created")]
    http = MatrixHttp(after.homeserver_url)
    session = http.login(m.drop.user_id, m.drop.password)  # the same password still works
    assert http.joined_members(session.access_token, m.matrix_room_id) == {
        m.drop.user_id,
        m.mbr.user_id,
    }
    assert http.joined_rooms(session.access_token) == [m.matrix_room_id]
    assert try_connect(_endpoint(again.info, again.info.mqtt.worker)).accepted
