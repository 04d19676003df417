"""The MBR bridge service (``dongyu mbr``): Matrix <-> MQTT (spec 7.3, 7.4).

Matrix ``ui_event`` from the peer -> MQTT ``<base>/<model>/<pin>`` (QoS 1);
MQTT ``<base>/+/patch_out`` -> Matrix ``snapshot_delta``. Announces itself with
``mbr_ready`` at start and every 30 s. The pure logic is
:class:`~dongyu.bridge.core.BridgeCore`.

Messages for Matrix go through one queue and one sender, in order; when they
queue up while a send is in flight, the next send carries all of them in one
``batch`` event (:mod:`dongyu.messages.batch`). Incoming batches are unpacked
in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dongyu import programs
from dongyu.adapters.http.health import health_app
from dongyu.adapters.http.server import HttpServer
from dongyu.adapters.matrix.link import MatrixLink
from dongyu.adapters.mqtt.client import MqttEndpoint
from dongyu.adapters.mqtt.link import Ack, MqttLink
from dongyu.bridge.core import BridgeCore
from dongyu.errors import DongyuError
from dongyu.messages.batch import encoded_size, group, pack
from dongyu.patch.dedup import OpIdWindow
from dongyu.program.runtime import Runtime
from dongyu.services.base import Service
from dongyu.store.component import ComponentStore
from dongyu.worker.metrics import prometheus_text

log = logging.getLogger("dongyu.services.mbr")


@dataclass(frozen=True)
class MatrixEndpoint:
    homeserver_url: str
    user_id: str
    access_token: str | None
    password: str | None
    device_id: str | None
    room_id: str
    peer_user_id: str
    tls_verify: bool = True


def matrix_link(endpoint: MatrixEndpoint, sync_token_file: Path | None) -> MatrixLink:
    return MatrixLink(
        endpoint.homeserver_url,
        user_id=endpoint.user_id,
        access_token=endpoint.access_token,
        password=endpoint.password,
        device_id=endpoint.device_id,
        room_id=endpoint.room_id,
        peer_user_id=endpoint.peer_user_id,
        tls_verify=endpoint.tls_verify,
        sync_token_file=sync_token_file,
    )


@dataclass(frozen=True)
class MbrConfig:
    matrix: MatrixEndpoint
    mqtt: MqttEndpoint
    topic_base: str
    state_dir: Path
    bridge_id: str = "mbr"
    programs: tuple[str, ...] = ("remote_worker", "color_form")
    ready_every_s: float = 30.0
    health_host: str = "127.0.0.1"
    health_port: int = 9101
    coalesce: bool = field(default_factory=lambda: coalesce_from_env(os.environ))
    """Send queued messages together in one ``batch`` event (``DY_BUS_COALESCE=0``: never)."""


def coalesce_from_env(env: Mapping[str, str]) -> bool:
    """``DY_BUS_COALESCE``: on unless ``0``/``false``/``no``/``off``."""
    return env.get("DY_BUS_COALESCE", "1").strip().lower() not in ("0", "false", "no", "off")


class MbrService(Service):
    def __init__(self, config: MbrConfig) -> None:
        super().__init__("mbr")
        self.config = config
        self.runtime = Runtime()
        # durable state: the op_ids bridged to MQTT, committed after each Matrix batch is
        # published and before the sync position moves past it
        self.store = ComponentStore(
            config.state_dir / f"{config.bridge_id}.sqlite", seen_capacity=100_000
        )
        restored = self.store.load()
        self.core = BridgeCore(
            self.runtime,
            topic_base=config.topic_base,
            dedup=OpIdWindow(100_000, seen=restored.seen),
        )
        self.matrix = matrix_link(
            config.matrix, config.state_dir / f"{config.bridge_id}.sync_token"
        )
        self.mqtt = MqttLink(
            config.mqtt,
            client_id=f"dongyu-{config.bridge_id}",
            subscriptions=[self.core.patch_out_filter],
            # a worker's reply is acknowledged to the broker only once it is in Matrix
            on_message_deferred=self._on_mqtt,
        )
        self.http = HttpServer(
            health_app(lambda: not self._tasks.failed.is_set(), self._ready, self._metrics),
            config.health_host,
            config.health_port,
            name="MBR health",
        )
        self._to_matrix: asyncio.Queue[tuple[str, dict[str, object], Ack | None]] = asyncio.Queue()

    async def start(self) -> None:
        log.info("starting the MBR bridge %s", self.config.bridge_id)
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        for name in self.config.programs:
            self.runtime.load_program(programs.load(name))
        log.info(
            "connecting to Matrix %s as %s",
            self.config.matrix.homeserver_url,
            self.config.matrix.user_id,
        )
        await self.matrix.login()
        log.info("connecting to MQTT %s:%d", self.config.mqtt.host, self.config.mqtt.port)
        self._tasks.start("mqtt", self.mqtt.run())
        self._tasks.start("matrix-sender", self._matrix_sender())
        self._tasks.start("matrix-receiver", self._matrix_receiver())
        self._tasks.start("ready", self._announce())
        await self.http.start()

    async def wait_ready(self, timeout_s: float) -> None:
        await self.mqtt.wait_connected(timeout_s)
        await asyncio.wait_for(self.matrix.synced.wait(), timeout_s)

    async def stop(self) -> None:
        self._stopping.set()
        await self.http.stop()
        await self._tasks.cancel_all()
        await self.matrix.close()
        self.store.close()
        log.info("MBR bridge stopped")

    # ---- work --------------------------------------------------------------
    async def _matrix_receiver(self) -> None:
        async for batch in self.matrix.events():
            bridged: list[str] = []
            for event in batch:
                log.info("received Matrix event %s from %s", event.event_id, event.sender)
                for publish in self.core.from_matrix_event(event.content):
                    await self.mqtt.publish(publish.topic, publish.encode())
                    op_id = str(publish.payload.get("op_id"))
                    bridged.append(op_id)
                    log.info("published to %s [op_id %s]", publish.topic, op_id)
            if bridged:
                self.store.commit(seen=bridged)

    async def _on_mqtt(self, topic: str, payload: bytes, ack: Ack) -> None:
        message = self.core.from_mqtt(topic, payload)
        if message is None:
            ack()  # refused: nothing will ever make it acceptable
            return
        await self._to_matrix.put((message.op_id, message.to_dict(), ack))

    async def _matrix_sender(self) -> None:
        """One queue, one sender: snapshot_deltas reach Matrix in the order they came."""
        while True:
            items = [await self._to_matrix.get()]
            if not self.config.coalesce:
                op_id, content, ack = items[0]
                event_id = await self.matrix.send(content)
                _acknowledge([ack])
                log.info("sent %s %s to Matrix as %s", content.get("type"), op_id, event_id)
                continue
            while not self._to_matrix.empty():
                items.append(self._to_matrix.get_nowait())
            contents = [content for _, content, _ in items]
            for part in group([encoded_size(c) for c in contents]):
                chunk = [contents[i] for i in part]
                acks = [items[i][2] for i in part]
                try:
                    event_id = await self.matrix.send(pack(chunk))
                except DongyuError:
                    if len(chunk) == 1:
                        raise
                    log.warning("a batch of %d was refused: sending one by one", len(chunk))
                    for content, ack in zip(chunk, acks, strict=True):
                        await self.matrix.send(content)
                        _acknowledge([ack])
                    continue
                _acknowledge(acks)
                log.info(
                    "sent %s to Matrix as %s",
                    ", ".join(f"{c.get('type')} {c.get('op_id')}" for c in chunk),
                    event_id,
                )

    def _ready(self) -> tuple[bool, str]:
        if not self.mqtt.connected:
            return False, "MQTT not connected"
        if not self.matrix.synced.is_set():
            return False, "Matrix not synced yet"
        return True, "ready: Matrix and MQTT connected"

    def _metrics(self) -> str:
        m = self.core.metrics
        rows: list[tuple[str, str, str, float | int, dict[str, str] | None]] = [
            (
                "dongyu_mbr_from_matrix_total",
                "counter",
                "Matrix bus messages received",
                m.from_matrix,
                None,
            ),
            (
                "dongyu_mbr_to_mqtt_total",
                "counter",
                "MQTT messages published",
                self.mqtt.published,
                None,
            ),
            ("dongyu_mbr_from_mqtt_total", "counter", "MQTT messages received", m.from_mqtt, None),
            ("dongyu_mbr_to_matrix_total", "counter", "Matrix events sent", self.matrix.sent, None),
            (
                "dongyu_mbr_duplicates_total",
                "counter",
                "duplicate op_ids dropped",
                m.duplicates,
                None,
            ),
            (
                "dongyu_mbr_ignored_total",
                "counter",
                "messages not for the bridge",
                m.ignored + self.matrix.ignored,
                None,
            ),
        ]
        for reason, count in sorted(m.rejected.items()):
            rows.append(
                (
                    "dongyu_mbr_rejected_total",
                    "counter",
                    "messages refused, by reason",
                    count,
                    {"reason": reason},
                )
            )
        return prometheus_text(rows)

    async def _announce(self) -> None:
        while True:
            message = self.core.ready_message(self.config.bridge_id)
            await self._to_matrix.put((message.op_id, message.to_dict(), None))
            await asyncio.sleep(self.config.ready_every_s)


def _acknowledge(acks: list[Ack | None]) -> None:
    """The messages are in Matrix: let the broker forget them (in the order they came)."""
    for ack in acks:
        if ack is not None:
            ack()
