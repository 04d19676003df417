"""Settings for a notebook or test run: a state folder and ports, fresh unless given."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dongyu.infra.process import free_port
from dongyu.settings import InfraSettings
from dongyu.stack.local import StackPorts


@dataclass(frozen=True)
class RunSettings:
    infra: InfraSettings
    ports: StackPorts


def run_settings(
    state_dir: str = "",
    *,
    matrix_port: int = 0,
    mqtt_port: int = 0,
    ui_port: int = 0,
    timeout_s: float = 60.0,
) -> RunSettings:
    """``state_dir`` empty: a new folder under /tmp (mode 0711, like ``.dongyu``);
    a port of 0: a free one. Nothing is read from the environment: a run never
    turns to external servers by accident."""
    if state_dir:
        folder = Path(state_dir).absolute()
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="dongyu-run-", dir="/tmp"))
        os.chmod(folder, 0o711)
    taken: set[int] = set()

    def pick(port: int) -> int:
        while not port or port in taken:
            port = free_port()
        taken.add(port)
        return port

    infra = InfraSettings(
        state_dir=folder,
        matrix_port=pick(matrix_port),
        mqtt_port=pick(mqtt_port),
        timeout_s=timeout_s,
    )
    ports = StackPorts(ui=pick(ui_port), mbr_health=pick(0), worker_health=pick(0))
    return RunSettings(infra, ports)
