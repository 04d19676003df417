"""Checks of the buses a walkthrough runs: one Matrix event, MQTT access control, HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from dongyu.adapters.matrix.client import MatrixBusClient
from dongyu.adapters.mqtt.client import MqttConnection, MqttEndpoint, try_connect
from dongyu.settings import InfraInfo, MatrixAccount


def http_json(
    method: str, url: str, body: Any = None, raw: bytes | None = None, timeout_s: float = 30.0
) -> tuple[int, Any]:
    """One HTTP call with a JSON body (or ``raw`` bytes); ``(status, decoded answer or text)``."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            status, text = int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _client(info: InfraInfo, account: MatrixAccount) -> MatrixBusClient:
    assert account.access_token and info.matrix.matrix_room_id and account.matrix_dm_peer_user_id
    return MatrixBusClient(
        info.matrix.homeserver_url,
        user_id=account.user_id,
        access_token=account.access_token,
        device_id=account.device_id,
        room_id=info.matrix.matrix_room_id,
        peer_user_id=account.matrix_dm_peer_user_id,
        tls_verify=info.matrix.tls_verify,
        sync_timeout_ms=5_000,
    )


@dataclass(frozen=True)
class MatrixHop:
    event_id: str
    op_id: str
    received: bool
    ms: float


async def matrix_hop(info: InfraInfo, timeout_s: float = 15.0) -> MatrixHop:
    """@drop sends one ``dy.bus.v0`` event; @mbr's sync receives it. (Await it in a notebook.)"""
    assert info.matrix.drop is not None
    sender, receiver = _client(info, info.matrix.drop), _client(info, info.matrix.mbr)
    try:
        await receiver.start()
        op_id = f"probe-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        event_id = await sender.send(
            {"version": "v0", "type": "error", "op_id": op_id, "data": {"probe": True}}
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in await receiver.receive(timeout_ms=2_000):
                if event.content.get("op_id") == op_id:
                    return MatrixHop(event_id, op_id, True, (time.perf_counter() - started) * 1000)
        return MatrixHop(event_id, op_id, False, float("nan"))
    finally:
        await sender.close()
        await receiver.close()


def run_async(coro: Any) -> Any:
    """Run a coroutine from plain code (not from a running event loop)."""
    return asyncio.run(coro)


@dataclass(frozen=True)
class MqttChecks:
    anonymous_refused: bool
    worker_may_publish_patch_out: bool
    worker_cannot_publish_elsewhere: bool
    delivered_ms: float


def mqtt_checks(info: InfraInfo, timeout_s: float = 5.0) -> MqttChecks:
    """Anonymous login refused; the worker's ACL lets it publish a reply and nothing else."""
    q = info.mqtt
    assert q.worker is not None and q.probe is not None
    anonymous = try_connect(MqttEndpoint(q.host, q.port))
    base = q.topic_base
    watcher = MqttConnection(MqttEndpoint(q.host, q.port, q.probe.username, q.probe.password))
    worker = MqttConnection(MqttEndpoint(q.host, q.port, q.worker.username, q.worker.password))
    try:
        watcher.connect()
        watcher.subscribe("#")
        worker.connect()
        allowed, denied = f"{base}/2/patch_out", f"{base}/2/patch_in"
        started = time.perf_counter()
        worker.publish(allowed, b'{"probe": "allowed"}')
        first = watcher.get(timeout_s)
        delivered_ms = (time.perf_counter() - started) * 1000
        worker.publish(denied, b'{"probe": "denied"}')
        worker.publish(allowed, b'{"probe": "marker"}')
        seen = []
        while (message := watcher.get(timeout_s)) is not None:
            seen.append(message.topic)
            if message.payload == b'{"probe": "marker"}':
                break
    finally:
        worker.close()
        watcher.close()
    return MqttChecks(
        anonymous_refused=not anonymous.accepted,
        worker_may_publish_patch_out=first is not None and first.topic == allowed,
        worker_cannot_publish_elsewhere=denied not in seen and allowed in seen,
        delivered_ms=delivered_ms,
    )
