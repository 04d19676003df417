"""The worker's pure logic: one MQTT message in, pin writes and function runs, replies out.

No I/O: the service (:mod:`dongyu.worker.service`) feeds it messages from the
broker and publishes what :meth:`WorkerCore.handle` returns.

Routing (spec 6): a message on ``<base>/<model_id>/<pin>`` where ``pin`` is a
declared ``PIN_IN`` of the model goes to that pin; any other message for the
model lands in ``mqtt_in``. A payload that is not JSON, is not an object, or
whose ``op_id`` was handled before, is refused (and counted) without touching
the table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from dongyu.bridge.translate import PATCH_OUT_PIN, parse_topic
from dongyu.core.labels import CONFIG_CELL, EDITOR_STATE_MODEL, JSON, Label
from dongyu.errors import DongyuError, InvalidPatch, ValidationError
from dongyu.messages.hops import stamp
from dongyu.patch.dedup import OpIdWindow
from dongyu.patch.envelope import loads_json, parse_envelope
from dongyu.program.host import OutboxHost
from dongyu.program.runtime import FunctionRun, Runtime

log = logging.getLogger("dongyu.worker.core")

FALLBACK_PIN = "mqtt_in"
_CODE_TYPES = frozenset({"function", "func.python", "func.js"})
MAX_PAYLOAD_BYTES = 1_000_000


@dataclass
class WorkerMetrics:
    """Counters exported on ``/metrics``."""

    messages_in: int = 0
    messages_out: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    function_runs: int = 0
    function_errors: int = 0
    function_seconds: float = 0.0

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


@dataclass(frozen=True)
class Handled:
    """What one message did."""

    topic: str
    op_id: str | None
    pin: str | None
    runs: tuple[FunctionRun, ...] = ()
    replies: tuple[tuple[str, JSON], ...] = ()
    refused: str | None = None
    duplicate: bool = False


class WorkerCore:
    def __init__(
        self,
        runtime: Runtime,
        outbox: OutboxHost,
        *,
        model_id: int | tuple[int, ...],
        topic_base: str,
        worker_id: str,
        dedup: OpIdWindow | None = None,
    ) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self.model_ids = (model_id,) if isinstance(model_id, int) else tuple(model_id)
        self.model_id = self.model_ids[0]
        self.topic_base = topic_base.strip("/")
        self.worker_id = worker_id
        self.dedup = dedup if dedup is not None else OpIdWindow(10_000)
        self.metrics = WorkerMetrics()
        for mid in self.model_ids:
            if not runtime.table.has_model(mid):
                raise ValidationError(f"the program models loaded do not define model {mid}")
        runtime.table.ensure_model(EDITOR_STATE_MODEL)
        runtime.table.put_label(
            EDITOR_STATE_MODEL, CONFIG_CELL, Label("worker_id", "str", worker_id)
        )

    @property
    def subscription(self) -> str:
        """The topic filter of the seed's worker: ``<base>/<model_id>/#``."""
        return f"{self.topic_base}/{self.model_id}/#"

    @property
    def subscriptions(self) -> list[str]:
        """One ``<base>/<model_id>/#`` filter per served model."""
        return [f"{self.topic_base}/{mid}/#" for mid in self.model_ids]

    def handle(self, topic: str, payload: bytes) -> Handled:
        """Handle one message; never raises for bad input (the result says why)."""
        try:
            model_id, pin = parse_topic(self.topic_base, topic)
        except DongyuError:
            model_id, pin = None, None
        if model_id is not None and pin is not None and self._is_output(model_id, pin):
            # our own replies come back through the <base>/<model>/# subscription
            return Handled(topic, None, None, refused="output pin: not an input")
        self.metrics.messages_in += 1
        try:
            model_id, pin = parse_topic(self.topic_base, topic)
            if model_id not in self.model_ids:
                served = ", ".join(map(str, self.model_ids))
                raise ValidationError(
                    f"topic {topic!r} is for model {model_id}, not served here ({served})"
                )
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValidationError(
                    f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
                )
            try:
                message = loads_json(payload)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise ValidationError(f"payload is not JSON: {exc}", code="not_json") from exc
            if not isinstance(message, dict):
                raise ValidationError("payload is not a JSON object", code="not_an_object")
            _check_patch(message)
        except DongyuError as exc:
            return self._refuse(topic, None, exc)
        op_id = message.get("op_id") if isinstance(message.get("op_id"), str) else None
        log.info("topic received: %s (%d bytes) [op_id %s]", topic, len(payload), op_id)
        log.info("payload: %s", _preview(payload))
        if op_id is not None and op_id in self.dedup:
            self.metrics.duplicates += 1
            log.info("op_id %s already handled: ignored (duplicate delivery)", op_id)
            return Handled(topic, op_id, None, duplicate=True)
        if "hops" in message:
            try:
                message["hops"] = stamp(message["hops"], "worker.received")
            except ValidationError as exc:
                return self._refuse(topic, op_id, exc)
        target_pin = pin if pin in self.runtime.declared_pins(model_id) else FALLBACK_PIN
        log.info("written to PIN_IN %s of model %d [op_id %s]", target_pin, model_id, op_id)
        try:
            runs = self.runtime.write_pin(
                model_id, target_pin, message, trace_id=op_id, op_id=op_id
            )
        except DongyuError as exc:
            return self._refuse(topic, op_id, exc)
        if op_id is not None:
            self.dedup.add(op_id)
        for run in runs:
            self.metrics.function_runs += 1
            self.metrics.function_seconds += run.duration_ns / 1e9
            if not run.ok:
                self.metrics.function_errors += 1
        _, mqtt = self.outbox.drain()
        replies = tuple((t, _stamp_reply(p, message.get("hops"))) for t, p in mqtt)
        self.metrics.messages_out += len(replies)
        if runs and all(r.ok for r in runs):
            log.info("processed successfully [op_id %s]: %d function run(s)", op_id, len(runs))
        elif not runs:
            log.warning(
                "no function is bound to pin %s of model %d [op_id %s]", target_pin, model_id, op_id
            )
        return Handled(topic, op_id, target_pin, tuple(runs), replies)

    def _is_output(self, model_id: int, pin: str) -> bool:
        return pin == PATCH_OUT_PIN or pin in self.runtime.declared_pins(model_id, "PIN_OUT")

    def _refuse(self, topic: str, op_id: str | None, exc: DongyuError) -> Handled:
        self.metrics.reject(exc.code)
        log.warning("message on %s refused: %s", topic, exc)
        return Handled(topic, op_id, None, refused=str(exc))


def _check_patch(message: dict[str, object]) -> None:
    """A payload that says it is an mt.v0 patch must be one, and, coming over a bus, must
    not carry program code: the worker never installs functions from its inputs."""
    if "version" not in message and "records" not in message:
        return  # a plain event (the seed's worker accepts any JSON object)
    try:
        envelope = parse_envelope(message)
    except InvalidPatch as exc:
        raise ValidationError(
            f"payload is not an mt.v0 patch: {exc.detail}", code="invalid_patch"
        ) from exc
    for index, record in enumerate(envelope.records):
        if isinstance(record, dict) and record.get("t") in _CODE_TYPES:
            raise ValidationError(
                f"record {index} carries a {record.get('t')!r} label: function labels come only "
                "from trusted sources, never from the bus",
                code="untrusted_function",
            )


def _stamp_reply(payload: JSON, request_hops: JSON) -> JSON:
    """A reply carries the request's hops (unless its function set its own) plus the worker's."""
    if isinstance(payload, dict):
        hops = payload.get("hops", request_hops)
        return {**payload, "hops": stamp(hops, "worker.reply")}
    return payload


def _preview(payload: bytes, limit: int = 300) -> str:
    text = payload.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def encode(payload: JSON) -> bytes:
    """A reply's bytes on the wire (compact JSON)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
