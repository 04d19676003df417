"""The worker in a real pod of the real local cluster handles messages from the real broker.

A ui_event for the colour form (model 100) is translated exactly as the MBR does
(dongyu.bridge.translate) and published as the ``mbr`` MQTT account on
``<base>/100/event_in``; the worker in the pod answers on ``<base>/100/patch_out``
and its logs show the seed's lines. Deleting the pod: the Deployment replaces it
and the new pod works too.
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from dongyu.bridge.translate import topic_for, ui_event_to_mqtt
from dongyu.k8s import deploy
from dongyu.messages.bus import BusMessage
from dongyu.messages.ui_event import UiEvent
from dongyu.settings import InfraInfo

from .conftest import K8S_TIMEOUT_S, http_get, wait_for

pytestmark = pytest.mark.k8s

MODEL = 100
SEED_LINES = ("topic received", "written to PIN_IN", "processed successfully")


class Bus:
    """A paho client logged in as the bridge (``mbr``), subscribed to the replies."""

    def __init__(self, info: InfraInfo) -> None:
        account = info.mqtt.mbr
        assert account is not None and account.password is not None
        self.base = info.mqtt.topic_base
        self.replies: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"k8s-test-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(account.username, account.password)
        subscribed = queue.Queue[bool]()
        self.client.on_message = lambda c, u, m: self.replies.put((m.topic, json.loads(m.payload)))
        self.client.on_subscribe = lambda *a: subscribed.put(True)
        self.client.connect(info.mqtt.host, info.mqtt.port)
        self.client.loop_start()
        self.client.subscribe(topic_for(self.base, MODEL, "patch_out"), qos=1)
        subscribed.get(timeout=10)

    def ui_event(self, colour: str) -> tuple[str, str]:
        """Publish what the MBR publishes for a colour-form Submit; (op_id, topic)."""
        op_id = f"k8s-{uuid.uuid4().hex[:12]}"
        event = UiEvent.from_dict(
            {
                "source": "ui_renderer",
                "type": "label_add",
                "payload": {
                    "action": "label_update",
                    "meta": {"op_id": op_id},
                    "target": {"model_id": MODEL, "p": 0, "r": 0, "c": 0, "k": "input_value"},
                    "value": {"t": "str", "v": colour},
                },
            }
        )
        message = BusMessage(
            "ui_event",
            op_id,
            action=event.action,
            data=event.data(),
            timestamp=int(time.time() * 1000),
        )
        topic, payload = ui_event_to_mqtt(message, self.base, lambda mid: mid == MODEL)
        self.client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(10)
        return op_id, topic

    def reply_for(self, op_id: str, timeout_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                topic, payload = self.replies.get(timeout=0.5)
            except queue.Empty:
                continue
            if op_id in json.dumps(payload):
                assert topic == topic_for(self.base, MODEL, "patch_out")
                return payload
        raise AssertionError(f"no patch_out reply for {op_id} within {timeout_s:.0f} s")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def bus(k8s_infra: InfraInfo) -> Any:
    b = Bus(k8s_infra)
    yield b
    b.close()


def _one_ready_pod(kube: Any) -> Any:
    pods = deploy.ready_pods(kube)
    return pods[0] if len(pods) == 1 else None


def _roundtrip(kube: Any, bus: Bus, colour: str) -> tuple[dict[str, Any], float]:
    pod = _one_ready_pod(kube)
    assert pod is not None
    t0 = time.monotonic()
    op_id, topic = bus.ui_event(colour)
    assert topic.endswith(f"/{MODEL}/event_in")
    reply = bus.reply_for(op_id)
    elapsed = time.monotonic() - t0
    assert reply["version"] == "mt.v0"

    def logged() -> bool:
        text = kube.logs(pod.name, deploy.NAMESPACE)
        return all(
            any(
                (s in line and op_id in line) or (s == "topic received" and topic in line)
                for line in text.splitlines()
            )
            for s in SEED_LINES
        )

    wait_for(logged, 10, f"the seed's log lines for {op_id} in pod {pod.name}")
    return reply, elapsed


def test_worker_pod_becomes_ready(kube: Any, deployed: float, figures: dict[str, Any]) -> None:
    pod = wait_for(lambda: _one_ready_pod(kube), 30, "one Ready worker pod")
    assert pod.restarts == 0
    assert pod.ip and pod.ip.startswith("172.17.")
    # the probes' endpoints, on the pod this test created
    code, body = http_get(f"http://{pod.ip}:8080/readyz")
    assert code == 200 and "models [2, 100]" in body
    code, body = http_get(f"http://{pod.ip}:8080/metrics")
    assert code == 200 and "dongyu_worker_mqtt_connected 1" in body
    logs = kube.logs(pod.name, deploy.NAMESPACE)
    assert "program model loaded: remote_worker" in logs
    assert "program model loaded: color_form" in logs


def test_worker_in_the_pod_handles_a_ui_event(
    kube: Any, deployed: float, bus: Bus, figures: dict[str, Any]
) -> None:
    reply, elapsed = _roundtrip(kube, bus, "#ff00ff")
    figures["mqtt_roundtrip_via_pod_ms"] = round(elapsed * 1000, 1)
    assert "#ff00ff" in json.dumps(reply).lower()


def test_deleted_pod_is_replaced_and_works(
    kube: Any, deployed: float, bus: Bus, figures: dict[str, Any]
) -> None:
    old = wait_for(lambda: _one_ready_pod(kube), 30, "one Ready worker pod")
    t0 = time.monotonic()
    kube.delete_pod(old.name, deploy.NAMESPACE)

    def replaced() -> Any:
        pod = _one_ready_pod(kube)
        return pod if pod is not None and pod.name != old.name else None

    new = wait_for(replaced, K8S_TIMEOUT_S, "the replacement pod to be Ready")
    figures["pod_replaced_ready_s"] = round(time.monotonic() - t0, 1)
    assert new.name != old.name
    reply, _ = _roundtrip(kube, bus, "#00aa00")
    assert "#00aa00" in json.dumps(reply).lower()
