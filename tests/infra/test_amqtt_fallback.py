"""The amqtt fallback broker, real: same contract as mosquitto (127.0.0.1, no anonymous, ACL).

Matrix is taken in external mode from the session's Synapse, so only a broker starts here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from dongyu.adapters.mqtt import MqttEndpoint, try_connect
from dongyu.infra import down, up
from dongyu.infra.process import free_port
from dongyu.settings import ExternalMatrix, InfraInfo, InfraSettings
from tests.infra.conftest import Infra, make_state_dir
from tests.infra.test_servers import BASE, _publish_and_watch

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def amqtt_info(infra: Infra) -> Iterator[InfraInfo]:
    m = infra.info.matrix
    state_dir = make_state_dir("dongyu-infra-amqtt-")
    settings = InfraSettings(
        state_dir=state_dir,
        mqtt_port=free_port(),
        broker="amqtt",
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
    )
    try:
        result = up(settings)
        assert result.started == ("amqtt",)
        assert [s.name for s in result.servers] == ["homeserver", "amqtt"]
        yield result.info
    finally:
        down(settings)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_amqtt_refuses_clients_without_credentials(amqtt_info: InfraInfo) -> None:
    q = amqtt_info.mqtt
    assert q.mode == "amqtt" and q.host == "127.0.0.1"
    assert not try_connect(MqttEndpoint(q.host, q.port)).accepted
    assert not try_connect(MqttEndpoint(q.host, q.port, "worker", "wrong")).accepted
    assert q.worker is not None
    assert try_connect(MqttEndpoint(q.host, q.port, "worker", q.worker.password)).accepted


@pytest.mark.parametrize(
    ("publisher", "topic", "allowed"),
    [
        ("worker", f"{BASE}/2/patch_out", True),
        ("worker", f"{BASE}/2/event_in", False),
        ("ui", f"{BASE}/2/event_in", False),
    ],
)
def test_amqtt_enforces_the_same_acl(
    amqtt_info: InfraInfo, publisher: str, topic: str, allowed: bool
) -> None:
    v311 = MQTTProtocolVersion.MQTTv311
    assert _publish_and_watch(amqtt_info, publisher, topic, version=v311)[0] is allowed
