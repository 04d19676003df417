"""The remote worker service (``dongyu worker``): MQTT in, program functions, MQTT out.

Subscribes ``<base>/<model_id>/#`` at QoS 1 for each served model, hands each
message to :class:`~dongyu.worker.core.WorkerCore` (which writes it into its
pin and runs the bound function) and publishes the replies. Serves
``/healthz``, ``/readyz`` (MQTT connected and program model loaded) and
``/metrics`` over HTTP, and logs a heartbeat with the table's cell count every
30 s, as the seed's worker did.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from dongyu import programs
from dongyu.adapters.http.health import health_app
from dongyu.adapters.http.server import HttpServer
from dongyu.adapters.mqtt.client import MqttEndpoint
from dongyu.adapters.mqtt.link import Ack, MqttLink
from dongyu.core.snapshot import from_snapshot, to_snapshot
from dongyu.patch.dedup import OpIdWindow
from dongyu.program.host import OutboxHost
from dongyu.program.runtime import Runtime
from dongyu.services.base import Service
from dongyu.store.component import ComponentStore
from dongyu.worker.core import WorkerCore, encode
from dongyu.worker.metrics import prometheus_text

log = logging.getLogger("dongyu.services.worker")


@dataclass(frozen=True)
class WorkerConfig:
    mqtt: MqttEndpoint
    model_ids: tuple[int, ...]
    worker_id: str
    topic_base: str
    programs: tuple[str, ...] = ("remote_worker", "color_form")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    heartbeat_s: float = 30.0
    mqtt_client_id: str | None = None
    """The MQTT client id, i.e. the broker session; default ``dongyu-worker-<worker_id>``.
    Keep it stable across restarts (and pods) so unacknowledged messages are redelivered."""
    state_file: Path | None = None
    """Where the worker keeps its table, handled op_ids and unsent replies (SQLite);
    ``None``: nothing survives a restart but what the broker's session keeps."""


@dataclass(frozen=True)
class _Outgoing:
    """What one handled message still owes the broker: its replies, then its ack."""

    replies: list[tuple[str, bytes]]
    outbox_ids: list[int]
    ack: Ack | None
    op_id: str | None


class WorkerService(Service):
    """``async with WorkerService(config) as worker: await worker.wait()``."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__("worker")
        self.config = config
        self.outbox = OutboxHost()
        self.store = ComponentStore(config.state_file) if config.state_file is not None else None
        self._restored = self.store.load() if self.store is not None else None
        table = None
        if self._restored is not None and self._restored.snapshot is not None:
            table = from_snapshot(self._restored.snapshot)
        self.runtime = Runtime(self.outbox, table=table)
        self.core: WorkerCore | None = None
        self._outgoing: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self.link: MqttLink | None = None
        self.http: HttpServer | None = None

    # ---- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        log.info(
            "starting worker %s for model(s) %s", cfg.worker_id, ", ".join(map(str, cfg.model_ids))
        )
        restored = self._restored
        for name in cfg.programs:
            patch = programs.load(name)
            if restored is not None and restored.snapshot is not None:
                patch = programs.structure(patch)  # keep the saved data, take the code
            result = self.runtime.load_program(patch)
            log.info("program model loaded: %s (%s)", name, result.summary())
        self.core = WorkerCore(
            self.runtime,
            self.outbox,
            model_id=cfg.model_ids,
            topic_base=cfg.topic_base,
            worker_id=cfg.worker_id,
            dedup=OpIdWindow(10_000, seen=restored.seen) if restored is not None else None,
        )
        if restored is not None:
            log.info(
                "state restored from %s: %s, %d handled op_ids, %d unsent replies",
                cfg.state_file,
                "table" if restored.snapshot is not None else "no table yet",
                len(restored.seen),
                len(restored.pending),
            )
        self.http = HttpServer(
            health_app(
                self._alive, self._ready, self._metrics, lambda: to_snapshot(self.runtime.table)
            ),
            cfg.http_host,
            cfg.http_port,
            name="worker health",
        )
        await self.http.start()
        self.link = MqttLink(
            cfg.mqtt,
            client_id=cfg.mqtt_client_id or f"dongyu-worker-{cfg.worker_id}",
            subscriptions=self.core.subscriptions,
            on_message_deferred=self._on_message,
        )
        if restored is not None and restored.pending:
            # replies committed before a crash and never acknowledged by the broker go first
            ids = [item.id for item in restored.pending]
            await self._outgoing.put(
                _Outgoing([(i.topic, i.payload) for i in restored.pending], ids, None, None)
            )
        log.info("connecting to MQTT %s:%d", cfg.mqtt.host, cfg.mqtt.port)
        self._tasks.start("mqtt", self.link.run())
        self._tasks.start("sender", self._sender())
        self._tasks.start("heartbeat", self._heartbeat())

    async def stop(self) -> None:
        self._stopping.set()
        await self._tasks.cancel_all()
        if self.http is not None:
            await self.http.stop()
        if self.store is not None:
            self.store.close()
        log.info("worker %s stopped", self.config.worker_id)

    async def wait_ready(self, timeout_s: float) -> None:
        assert self.link is not None
        await self.link.wait_connected(timeout_s)

    # ---- work --------------------------------------------------------------
    async def _on_message(self, topic: str, payload: bytes, ack: Ack) -> None:
        """Handle, commit (table, op_id, replies) and hand the replies to the sender,
        which publishes them and only then acknowledges the message.

        The handler never waits for the broker itself: it runs inside the MQTT link's
        receive loop, which must stay free to reconnect if the broker goes away."""
        assert self.core is not None
        handled = self.core.handle(topic, payload)
        if handled.refused is not None or handled.duplicate:
            await self._outgoing.put(_Outgoing([], [], ack, handled.op_id))
            return
        encoded = [(reply_topic, encode(reply)) for reply_topic, reply in handled.replies]
        ids: list[int] = []
        if self.store is not None:
            ids = self.store.commit(
                snapshot=to_snapshot(self.runtime.table),
                seen=[handled.op_id] if handled.op_id else [],
                outbox=encoded,
            )
        await self._outgoing.put(_Outgoing(encoded, ids, ack, handled.op_id))

    async def _sender(self) -> None:
        """One queue, in order: publish each message's replies (QoS 1, retried across
        reconnects), forget them in the outbox, then acknowledge the message."""
        assert self.link is not None
        while True:
            item = await self._outgoing.get()
            for reply_topic, data in item.replies:
                await self.link.publish(reply_topic, data)
                log.info("reply published to %s [op_id %s]", reply_topic, item.op_id)
            if self.store is not None and item.outbox_ids:
                self.store.sent(item.outbox_ids)
            if item.ack is not None:
                item.ack()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            counts = {
                mid: len(model.cells)
                for mid in self.config.model_ids
                if (model := self.runtime.table.model(mid)) is not None
            }
            log.info("heartbeat: cells per model %s; MQTT %s", counts, self._connection_state())

    # ---- health ------------------------------------------------------------
    def _connection_state(self) -> str:
        return "connected" if self.link is not None and self.link.connected else "not connected"

    def _alive(self) -> bool:
        return not self._tasks.failed.is_set()

    def _ready(self) -> tuple[bool, str]:
        if self.core is None:
            return False, "program model not loaded"
        if self.link is None or not self.link.connected:
            return False, "MQTT not connected"
        return True, f"ready: worker {self.config.worker_id}, models {list(self.config.model_ids)}"

    def _metrics(self) -> str:
        core = self.core
        if core is None:
            return ""
        m = core.metrics
        rows: list[tuple[str, str, str, float | int, dict[str, str] | None]] = [
            (
                "dongyu_worker_messages_in_total",
                "counter",
                "MQTT messages received",
                m.messages_in,
                None,
            ),
            (
                "dongyu_worker_messages_out_total",
                "counter",
                "MQTT replies published",
                m.messages_out,
                None,
            ),
            (
                "dongyu_worker_duplicates_total",
                "counter",
                "messages ignored as duplicate op_ids",
                m.duplicates,
                None,
            ),
            (
                "dongyu_worker_function_runs_total",
                "counter",
                "program function runs",
                m.function_runs,
                None,
            ),
            (
                "dongyu_worker_function_errors_total",
                "counter",
                "program functions that raised",
                m.function_errors,
                None,
            ),
            (
                "dongyu_worker_function_seconds_total",
                "counter",
                "time spent in program functions",
                round(m.function_seconds, 6),
                None,
            ),
            (
                "dongyu_worker_mqtt_connected",
                "gauge",
                "1 when connected to the broker",
                int(self.link is not None and self.link.connected),
                None,
            ),
        ]
        rows.append(
            (
                "dongyu_worker_rejected_total",
                "counter",
                "messages refused, by reason",
                sum(m.rejected.values()),
                None,
            )
        )
        for reason, count in sorted(m.rejected.items()):
            rows.append(
                (
                    "dongyu_worker_rejected_by_reason_total",
                    "counter",
                    "messages refused, by reason",
                    count,
                    {"reason": reason},
                )
            )
        return prometheus_text(rows)
