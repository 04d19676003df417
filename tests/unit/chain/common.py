"""Builders shared by the chain tests: runtimes loaded with the shipped program models,
UI event bodies and helpers to inspect JSON values."""

from __future__ import annotations

import copy
import json
from typing import Any

from dongyu import programs
from dongyu.bridge.core import BridgeCore
from dongyu.core.snapshot import snapshot_bytes
from dongyu.program.host import OutboxHost
from dongyu.program.runtime import Runtime
from dongyu.ui.core import UiCore
from dongyu.worker.core import WorkerCore

BASE = "UIPUT/ws/dam/pic/de/sw"
NOW_MS = 1_700_000_000_000
WORKER_ID = "pod-w7"


def runtime(*names: str, host: OutboxHost | None = None) -> Runtime:
    rt = Runtime(host, clock=lambda: NOW_MS)
    for name in names:
        assert rt.load_program(programs.load(name)).ok
    return rt


def bridge() -> BridgeCore:
    return BridgeCore(runtime("color_form", "remote_worker"), topic_base=BASE)


def worker(model_id: int = 100, worker_id: str = WORKER_ID) -> WorkerCore:
    outbox = OutboxHost()
    rt = runtime("remote_worker", "color_form", host=outbox)
    return WorkerCore(rt, outbox, model_id=model_id, topic_base=BASE, worker_id=worker_id)


def ui_core() -> UiCore:
    outbox = OutboxHost()
    rt = runtime("ui_server", "color_form", host=outbox)
    return UiCore(rt, outbox)


def body(
    action: str = "label_update",
    *,
    model_id: int = 100,
    k: str | None = "input_value",
    value: dict[str, Any] | None = None,
    op_id: str | None = "op-1",
) -> dict[str, Any]:
    """A spec 7.1 ``POST /ui_event`` body."""
    target: dict[str, Any] = {"model_id": model_id, "p": 0, "r": 0, "c": 0}
    if k is not None:
        target["k"] = k
    payload: dict[str, Any] = {"action": action, "target": target}
    if op_id is not None:
        payload["meta"] = {"op_id": op_id}
    if value is not None:
        payload["value"] = value
    elif action in ("label_add", "label_update"):
        payload["value"] = {"t": "str", "v": "#ff00ff"}
    return {"source": "ui_renderer", "type": "label_add", "payload": payload}


def ui_message(
    action: str = "label_update",
    *,
    model_id: int = 100,
    k: str | None = "input_value",
    value: dict[str, Any] | None = None,
    op_id: str = "op-1",
) -> dict[str, Any]:
    """The ``dy.bus.v0`` content the UI server sends for :func:`body` (spec 7.2)."""
    payload = body(action, model_id=model_id, k=k, value=value, op_id=op_id)["payload"]
    data = {key: payload[key] for key in ("target", "value") if key in payload}
    return {
        "version": "v0",
        "type": "ui_event",
        "op_id": op_id,
        "source_model_id": model_id,
        "action": action,
        "data": data,
        "timestamp": NOW_MS,
        "hops": [{"hop": "ui_server.received", "ts_us": 1_700_000_000_000_000}],
    }


def floats_in(value: Any) -> list[float]:
    """Every float anywhere in a JSON value."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, list):
        return [f for item in value for f in floats_in(item)]
    if isinstance(value, dict):
        return [f for item in value.values() for f in floats_in(item)]
    return []


def hop_names(hops: Any) -> list[str]:
    return [h["hop"] for h in hops]


def frozen(value: Any) -> Any:
    """A deep copy, to compare a value before and after a call."""
    return copy.deepcopy(value)


def snap(rt: Runtime) -> bytes:
    return snapshot_bytes(rt.table)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
