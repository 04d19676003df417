"""The whole chain, for real: Synapse, mosquitto, and the UI server, MBR and worker as
local processes (dongyu.stack.LocalStack), on free ports in a temporary state folder.
One stack serves the whole session; it is stopped (and the servers with it) at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dongyu.e2e.probes import http_json
from dongyu.infra.process import free_port
from dongyu.settings import InfraSettings
from dongyu.stack.local import LocalStack, StackPorts
from dongyu.worker.metrics import parse_prometheus

ARTIFACTS = Path(os.environ.get("DONGYU_TEST_ARTIFACTS", "out/test-artifacts")).absolute()
WORKER_ID = "test_worker_7"


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    state_dir = Path(tempfile.mkdtemp(prefix="dongyu-chain-test-", dir="/tmp"))
    os.chmod(state_dir, 0o711)
    matrix, mqtt, ui, mbr, worker = _ports(5)
    settings = InfraSettings(state_dir=state_dir, matrix_port=matrix, mqtt_port=mqtt, timeout_s=60)
    local = LocalStack(
        settings,
        ports=StackPorts(ui=ui, mbr_health=mbr, worker_health=worker),
        worker_id=WORKER_ID,
        timeout_s=60,
    )
    local.start()
    try:
        yield local
    finally:
        local.stop(stop_infra=True)
        shutil.rmtree(state_dir, ignore_errors=True)


http = http_json  # the tests' name for it


def ui_event(
    model_id: int, k: str, v: Any, op_id: str | None, action: str = "label_update"
) -> dict[str, Any]:
    meta = {} if op_id is None else {"op_id": op_id}
    return {
        "source": "ui_renderer",
        "type": "label_add",
        "payload": {
            "action": action,
            "meta": meta,
            "target": {"model_id": model_id, "p": 0, "r": 0, "c": 0, "k": k},
            "value": {"t": "str", "v": v},
        },
    }


def metrics(url: str) -> dict[str, float]:
    """Prometheus text -> {name{labels}: value}."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return parse_prometheus(answer.read().decode())
