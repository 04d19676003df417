"""The full chain with the worker in a pod: browser Submit -> UI server -> Matrix -> MBR ->
MQTT -> the pod -> back -> the page repaints; the pod's log shows the seed's lines; delete
the pod -> the Deployment replaces it and the chain works again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from dongyu.e2e.browser import rgb, submit_colour
from dongyu.e2e.setup import run_settings
from dongyu.settings import InfraInfo, InfraSettings
from dongyu.stack.local import LocalStack
from tests.k8s.conftest import K8S_TIMEOUT_S, wait_for

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def ui_and_bridge(
    k8s_infra: InfraInfo, k8s_infra_settings: InfraSettings, deployed: float
) -> Iterator[LocalStack]:
    """The UI server and the MBR as local processes; the worker is the pod."""
    ports = run_settings(str(k8s_infra_settings.state_dir)).ports
    stack = LocalStack(k8s_infra_settings, ports=ports, with_worker=False, timeout_s=60)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop(stop_infra=False)


def _pod(kube: Any) -> str:
    ready = [
        p.name for p in kube.pods("default", "app=remote-worker") if p.ready and not p.deleting
    ]
    assert len(ready) == 1, ready
    return ready[0]


def _round(stack: LocalStack, kube: Any, colour: str) -> None:
    pod = _pod(kube)
    result = asyncio.run(submit_colour(stack.ui_url, colour, timeout_s=60))
    assert result.background == rgb(colour)
    assert result.status == f"{pod}: {colour.upper()}", (
        result.status
    )  # the pod's name is its WORKER_ID
    assert result.console == ()
    log = wait_for(
        lambda: (
            (text := kube.logs(pod, "default"))
            and f"processed successfully [op_id {result.op_id}]" in text
            and text
        ),
        30,
        "the pod's log to show the event",
    )
    for expected in (
        "topic received: UIPUT/ws/dam/pic/de/sw/100/event_in",
        "written to PIN_IN event_in",
    ):
        assert any(expected in line and result.op_id in line for line in log.splitlines()), expected


def test_browser_submit_reaches_the_pod_and_repaints(ui_and_bridge: LocalStack, kube: Any) -> None:
    _round(ui_and_bridge, kube, "#ff00ff")


def test_after_the_pod_is_deleted_the_chain_works_again(
    ui_and_bridge: LocalStack, kube: Any
) -> None:
    old = _pod(kube)
    kube.delete_pod(old, "default")
    wait_for(
        lambda: [
            p
            for p in kube.pods("default", "app=remote-worker")
            if p.ready and not p.deleting and p.name != old
        ],
        K8S_TIMEOUT_S,
        "a replacement pod to be Ready",
    )
    wait_for(
        lambda: not [p for p in kube.pods("default", "app=remote-worker") if p.name == old],
        K8S_TIMEOUT_S,
        "the old pod to go",
    )
    _round(ui_and_bridge, kube, "#00a0ff")


def test_killing_the_pod_loses_and_repeats_nothing(
    ui_and_bridge: LocalStack, kube: Any, k8s_infra: InfraInfo
) -> None:
    """While UI events flow, the pod is killed (grace 0: SIGKILL); the replacement resumes the
    same MQTT session (DY_MQTT_CLIENT_ID), so every acknowledged event is answered, once."""
    import threading
    import time
    from collections import Counter

    from dongyu.adapters.mqtt.client import MqttConnection, MqttEndpoint
    from dongyu.stack.faults import _Stream

    q = k8s_infra.mqtt
    assert q.probe is not None
    probe = MqttConnection(MqttEndpoint(q.host, q.port, q.probe.username, q.probe.password))
    probe.connect()
    probe.subscribe(f"{q.topic_base}/100/patch_out")
    stream = _Stream(ui_and_bridge.ui_url, f"podkill-{int(time.time())}", 30, 0.05)
    thread = threading.Thread(target=stream.run)
    thread.start()
    wait_for(lambda: len(stream.acknowledged) >= 10, 60, "a third of the events")
    old = _pod(kube)
    kube.delete_pod(old, "default", grace_s=0)
    thread.join(120)
    acknowledged = [op for op, _ in stream.acknowledged]
    replies: Counter[str] = Counter()
    deadline = time.monotonic() + K8S_TIMEOUT_S
    while time.monotonic() < deadline and not all(replies[f"{op}:reply"] for op in acknowledged):
        message = probe.get(1.0)
        if message is not None:
            import json

            replies[json.loads(message.payload)["op_id"]] += 1
    probe.close()
    missing = [op for op in acknowledged if not replies[f"{op}:reply"]]
    repeated = [op for op in acknowledged if replies[f"{op}:reply"] > 1]
    assert len(acknowledged) == 30
    assert missing == [], f"acknowledged, never answered after the pod was killed: {missing}"
    assert repeated == [], f"answered twice: {repeated}"
