"""An asyncio MQTT link for the services (aiomqtt): reconnects, persistent session, QoS 1.

:class:`MqttLink` keeps one connection to the broker alive: it connects (and
reconnects after any loss, with a growing back-off up to 5 s), subscribes its
filters at QoS 1 with a persistent session (``clean_session=False`` and a
fixed client id, so the broker keeps what arrives while it is away), and hands
every message to an async callback, one at a time, in order, acknowledging it
(QoS 1 PUBACK) only once the callback returned. :meth:`publish`
waits until the broker acknowledged the message (QoS 1 PUBACK) and retries
across reconnects: a message is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

import aiomqtt

from dongyu.adapters.mqtt.client import MqttEndpoint

log = logging.getLogger("dongyu.adapters.mqtt.link")

MessageHandler = Callable[[str, bytes], Awaitable[None]]
Ack = Callable[[], None]
DeferredHandler = Callable[[str, bytes, Ack], Awaitable[None]]

_MAX_BACKOFF_S = 5.0


class MqttLink:
    """One persistent MQTT connection; run :meth:`run` as a task."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str,
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
        clean_session: bool = False,
        ack_after_handling: bool = True,
        on_message_deferred: DeferredHandler | None = None,
    ) -> None:
        """``on_message`` messages are acknowledged when it returns; ``on_message_deferred``
        gets an ``ack`` to call later (in the order the messages came, as MQTT asks),
        e.g. once the message has been passed on to another bus."""
        self.endpoint = endpoint
        self.client_id = client_id
        self.subscriptions = tuple(subscriptions)
        self._on_message = on_message
        self._clean_session = clean_session
        self._ack_after = ack_after_handling or on_message_deferred is not None
        self._on_deferred = on_message_deferred
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self.connections = 0
        self.published = 0
        self.received = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def run(self) -> None:
        """Connect, subscribe, deliver messages; reconnect on loss. Ends only when cancelled."""
        backoff = 0.2
        while True:
            try:
                client = aiomqtt.Client(
                    self.endpoint.host,
                    self.endpoint.port,
                    username=self.endpoint.username,
                    password=self.endpoint.password,
                    identifier=self.client_id,
                    clean_session=self._clean_session,
                    keepalive=15,
                    timeout=10,
                    # no Nagle delay: a publish sent just after a PUBACK would otherwise
                    # wait for the broker's delayed TCP ack (~40 ms)
                    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                )
                if self._ack_after:
                    # acknowledge a QoS 1 message only after the handler ran (and the
                    # component committed its effects): a crash before that means the
                    # broker delivers it again at the next connection of this session
                    client._client.manual_ack_set(True)
                async with client:
                    for topic_filter in self.subscriptions:
                        await client.subscribe(topic_filter, qos=1)
                    self._client = client
                    self.connections += 1
                    self._connected.set()
                    backoff = 0.2
                    log.info(
                        "MQTT connected to %s:%d as %s (subscribed: %s)",
                        self.endpoint.host,
                        self.endpoint.port,
                        self.endpoint.username,
                        ", ".join(self.subscriptions) or "nothing",
                    )
                    async for message in client.messages:
                        self.received += 1
                        payload = message.payload
                        data = payload if isinstance(payload, bytes) else str(payload).encode()
                        if self._on_deferred is not None:
                            await self._on_deferred(
                                str(message.topic), data, self._acker(client, message)
                            )
                            continue
                        if self._on_message is not None:
                            await self._on_message(str(message.topic), data)
                        if self._ack_after and message.qos > 0:
                            client._client.ack(message.mid, message.qos)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                log.warning(
                    "MQTT connection to %s:%d lost or refused (%s); retrying in %.1f s",
                    self.endpoint.host,
                    self.endpoint.port,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            finally:
                self._connected.clear()
                self._client = None

    def _acker(self, client: aiomqtt.Client, message: aiomqtt.Message) -> Ack:
        def ack() -> None:
            # an ack belongs to its connection: after a reconnect the broker redelivers
            if message.qos > 0 and self._client is client:
                client._client.ack(message.mid, message.qos)

        return ack

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement; retry until it comes.

        A publish caught by a lost connection is retried on the next one (the message
        may then arrive twice: receivers drop duplicate op_ids)."""
        while True:
            await self._connected.wait()
            client = self._client
            if client is None:
                await asyncio.sleep(0.05)
                continue
            try:
                await client.publish(topic, payload, qos=1, timeout=5)
            except aiomqtt.MqttError as exc:
                log.warning("publish to %s failed (%s): retrying", topic, exc)
                await asyncio.sleep(0.2)  # the run loop notices a lost connection meanwhile
                continue
            self.published += 1
            return
