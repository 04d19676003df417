"""The MBR's pure logic: what to publish for a Matrix message, what to send for an MQTT one.

The service (:mod:`dongyu.bridge.service`) connects it to both buses.
Duplicate ``op_id``s from Matrix are dropped (spec 7.3); messages that are not
for the bridge are ignored and counted.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

from dongyu.bridge.translate import EVENT_PIN, patch_out_to_matrix, ui_event_to_mqtt
from dongyu.core.labels import JSON
from dongyu.errors import DongyuError, ValidationError
from dongyu.messages.batch import unpack
from dongyu.messages.bus import BusMessage
from dongyu.messages.hops import parse_hops, stamp
from dongyu.patch.dedup import OpIdWindow
from dongyu.patch.envelope import loads_json
from dongyu.program.runtime import Runtime

log = logging.getLogger("dongyu.bridge.core")


@dataclass
class BridgeMetrics:
    from_matrix: int = 0
    from_mqtt: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, code: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: dict[str, JSON]

    def encode(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":"), allow_nan=False).encode()


class BridgeCore:
    def __init__(
        self, runtime: Runtime, *, topic_base: str, dedup: OpIdWindow | None = None
    ) -> None:
        self.runtime = runtime
        self.topic_base = topic_base.strip("/")
        self.dedup = dedup if dedup is not None else OpIdWindow(100_000)
        self.metrics = BridgeMetrics()

    @property
    def patch_out_filter(self) -> str:
        """The MQTT filter of every model's ``patch_out``."""
        return f"{self.topic_base}/+/patch_out"

    def has_event_pin(self, model_id: int) -> bool:
        return EVENT_PIN in self.runtime.declared_pins(model_id)

    def from_matrix_event(self, content: object) -> list[Publish]:
        """The MQTT publications for one Matrix event of the peer, in order: one message,
        or each message of a ``batch`` (:mod:`dongyu.messages.batch`)."""
        try:
            contents = unpack(content)
        except ValidationError as exc:
            self.metrics.from_matrix += 1
            self.metrics.reject(exc.code)
            log.warning("Matrix batch refused: %s", exc)
            return []
        return [p for p in (self.from_matrix(c) for c in contents) if p is not None]

    def from_matrix(self, content: object) -> Publish | None:
        """The MQTT publication for one ``dy.bus.v0`` event of the peer, or ``None``."""
        self.metrics.from_matrix += 1
        try:
            message = BusMessage.from_dict(content)
        except ValidationError as exc:
            self.metrics.reject(exc.code)
            log.warning("Matrix message refused: %s", exc)
            return None
        if message.type != "ui_event":
            self.metrics.ignored += 1
            log.info(
                "Matrix %s message %s is not for the bridge: ignored", message.type, message.op_id
            )
            return None
        if message.op_id in self.dedup:
            self.metrics.duplicates += 1
            log.info("ui_event %s already bridged: duplicate dropped", message.op_id)
            return None
        hops = stamp([h.to_dict() for h in message.hops], "mbr.received")
        message = BusMessage(
            message.type,
            message.op_id,
            message.action,
            message.data,
            message.payload,
            message.source_model_id,
            message.timestamp,
            message.trace,
            parse_hops(hops),
        )
        try:
            topic, payload = ui_event_to_mqtt(message, self.topic_base, self.has_event_pin)
        except DongyuError as exc:
            self.metrics.reject(exc.code)
            log.warning("ui_event %s refused: %s", message.op_id, exc)
            return None
        self.dedup.add(message.op_id)
        log.info(
            "received Matrix ui_event %s (%s): publishing to %s",
            message.op_id,
            message.action,
            topic,
        )
        return Publish(topic, payload)

    def from_mqtt(self, topic: str, payload: bytes) -> BusMessage | None:
        """The ``snapshot_delta`` for a ``patch_out`` publication, or ``None`` if refused."""
        self.metrics.from_mqtt += 1
        try:
            try:
                patch = loads_json(payload)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise ValidationError(f"payload is not JSON: {exc}", code="not_json") from exc
            message = patch_out_to_matrix(topic, self.topic_base, patch)
        except DongyuError as exc:
            self.metrics.reject(exc.code)
            log.warning("MQTT message on %s refused: %s", topic, exc)
            return None
        log.info("patch_out %s on %s: sending snapshot_delta to Matrix", message.op_id, topic)
        return message

    @staticmethod
    def ready_message(bridge_id: str) -> BusMessage:
        """``mbr_ready``, sent at start and every 30 s (spec 5)."""
        return BusMessage("mbr_ready", f"mbr_ready:{uuid.uuid4().hex}", data={"bridge": bridge_id})
