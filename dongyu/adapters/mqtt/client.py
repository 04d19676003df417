"""A small synchronous MQTT client over paho-mqtt 2.x (the only module that imports paho).

:func:`try_connect` answers "does this broker accept this login?" (the
readiness probe of ``dongyu infra`` and the tests); :class:`MqttConnection` is
a connected client with a queue of received messages, for tools and tests. The
bridge and the worker build their own loops on this module in later issues.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from dongyu.errors import DongyuError

log = logging.getLogger("dongyu.adapters.mqtt.client")


class MqttError(DongyuError):
    """An MQTT connection, subscription or publication failed."""

    code = "mqtt_error"


@dataclass(frozen=True)
class MqttEndpoint:
    """Where and as whom to connect."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


@dataclass(frozen=True)
class ConnectOutcome:
    """The broker's answer to a CONNECT: accepted, or refused with a reason."""

    accepted: bool
    reason_code: int
    reason: str


@dataclass(frozen=True)
class Message:
    """One received message."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


def _client(
    endpoint: MqttEndpoint, client_id: str | None, version: MQTTProtocolVersion
) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or f"dongyu-{uuid.uuid4().hex[:12]}",
        protocol=version,
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    return client


def try_connect(endpoint: MqttEndpoint, timeout_s: float = 5.0) -> ConnectOutcome:
    """Connect, wait for the CONNACK, disconnect; refused logins are outcomes, not errors.

    Raises :class:`MqttError` when nothing answers (no broker, timeout).
    """
    conn = MqttConnection(endpoint, timeout_s=timeout_s, version=MQTTProtocolVersion.MQTTv311)
    try:
        return conn.connect(raise_on_refusal=False)
    finally:
        conn.close()


class MqttConnection:
    """A connected paho client running its network loop in a thread.

    Messages on subscribed topics are queued; take them with :meth:`get`.
    MQTT 3.1.1 by default (what every broker speaks, amqtt included); pass
    ``version=MQTTProtocolVersion.MQTTv5`` to get reason codes on refusals.
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str | None = None,
        timeout_s: float = 5.0,
        version: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.messages: queue.Queue[Message] = queue.Queue()
        self._client = _client(endpoint, client_id, version)
        self._connack: queue.Queue[ConnectOutcome] = queue.Queue()
        self._subacks: dict[int, queue.Queue[list[int]]] = {}
        self._pubacks: dict[int, queue.Queue[int]] = {}
        self._lock = threading.Lock()
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish
        self._looping = False

    # ------------------------------------------------------------ callbacks (network thread)

    def _on_connect(
        self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        self._connack.put(ConnectOutcome(not rc.is_failure, int(rc.value), str(rc)))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(Message(msg.topic, bytes(msg.payload), int(msg.qos), bool(msg.retain)))

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, rcs: list[ReasonCode], _p: Properties | None
    ) -> None:
        with self._lock:
            box = self._subacks.setdefault(mid, queue.Queue())
        box.put([int(rc.value) for rc in rcs])

    def _on_publish(
        self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        with self._lock:
            box = self._pubacks.setdefault(mid, queue.Queue())
        box.put(int(rc.value))

    # ------------------------------------------------------------ API

    def connect(self, *, raise_on_refusal: bool = True) -> ConnectOutcome:
        """Connect and wait for the broker's answer."""
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except OSError as exc:
            raise MqttError(
                f"cannot reach the broker at {self.endpoint.host}:{self.endpoint.port}: {exc}"
            ) from exc
        self._client.loop_start()
        self._looping = True
        try:
            outcome = self._connack.get(timeout=self.timeout_s)
        except queue.Empty as exc:
            raise MqttError(
                f"no CONNACK from {self.endpoint.host}:{self.endpoint.port} within {self.timeout_s} s"
            ) from exc
        if not outcome.accepted and raise_on_refusal:
            raise MqttError(f"the broker refused {self.endpoint.username!r}: {outcome.reason}")
        return outcome

    def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe and wait for the SUBACK; the granted QoS (>= 0x80 means refused)."""
        result, mid = self._client.subscribe(topic_filter, qos)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError(f"subscribe {topic_filter!r} failed: {mqtt.error_string(result)}")
        with self._lock:
            box = self._subacks.setdefault(mid, queue.Queue())
        try:
            codes = box.get(timeout=self.timeout_s)
        except queue.Empty as exc:
            raise MqttError(f"no SUBACK for {topic_filter!r} within {self.timeout_s} s") from exc
        return codes[0]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        """Publish and, for QoS > 0, wait until the broker acknowledged it.

        Returns the acknowledgement's reason code: 0 accepted (always, with MQTT
        3.1.1 or QoS 0); with MQTT v5, >= 0x80 refused (0x87: not authorized).
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        if qos == 0:
            return 0
        with self._lock:
            box = self._pubacks.setdefault(info.mid, queue.Queue())
        try:
            return box.get(timeout=self.timeout_s)
        except queue.Empty as exc:
            raise MqttError(f"no acknowledgement for the publish to {topic!r}") from exc

    def get(self, timeout_s: float) -> Message | None:
        """The next received message, or None after ``timeout_s``."""
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._looping:
            self._client.disconnect()
            self._client.loop_stop()
            self._looping = False
