"""What a program engine needs from the process that embeds it.

A function reaches the buses only through ``ctx.send_matrix`` and
``ctx.publish_mqtt``, which hand the message to the runtime's :class:`Host`.
The bus adapters implement it (by queueing the message for their own
asyncio task); :class:`RecordingHost` keeps the messages for tests.
"""

from __future__ import annotations

import logging
from typing import Protocol

from dongyu.core.labels import JSON

log = logging.getLogger("dongyu.program.host")


class Host(Protocol):
    def send_matrix(self, payload: dict[str, JSON]) -> None:
        """Queue ``payload`` for the management bus (Matrix)."""

    def publish_mqtt(self, topic: str, payload: JSON) -> None:
        """Queue ``payload`` for the control bus (MQTT) on ``topic``."""


class NullHost:
    """A host with no bus: messages are logged and dropped (``dongyu patch`` uses it)."""

    def send_matrix(self, payload: dict[str, JSON]) -> None:
        log.warning("no management bus in this process: dropped %s", payload.get("type"))

    def publish_mqtt(self, topic: str, payload: JSON) -> None:
        log.warning("no control bus in this process: dropped a message for %s", topic)


class RecordingHost:
    """A host that keeps every message, in order, for tests and notebooks."""

    def __init__(self) -> None:
        self.matrix: list[dict[str, JSON]] = []
        self.mqtt: list[tuple[str, JSON]] = []

    def send_matrix(self, payload: dict[str, JSON]) -> None:
        self.matrix.append(payload)

    def publish_mqtt(self, topic: str, payload: JSON) -> None:
        self.mqtt.append((topic, payload))


class OutboxHost:
    """A host that queues messages until its service drains and sends them.

    The services run the (synchronous) program engine, then :meth:`drain` the
    outbox and hand each message to their asynchronous bus adapter.
    """

    def __init__(self) -> None:
        self._matrix: list[dict[str, JSON]] = []
        self._mqtt: list[tuple[str, JSON]] = []

    def send_matrix(self, payload: dict[str, JSON]) -> None:
        self._matrix.append(payload)

    def publish_mqtt(self, topic: str, payload: JSON) -> None:
        self._mqtt.append((topic, payload))

    def drain(self) -> tuple[list[dict[str, JSON]], list[tuple[str, JSON]]]:
        """The queued Matrix and MQTT messages, in order; the outbox is then empty."""
        matrix, mqtt = self._matrix, self._mqtt
        self._matrix, self._mqtt = [], []
        return matrix, mqtt
