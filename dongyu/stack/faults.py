"""The fault matrix: while UI events flow, ``kill -9`` one component, restart it, and check
that every event the UI server acknowledged is applied by the worker exactly once.

Used by ``tests/faults`` and ``benchmarks/fault_matrix.py`` (which prints the table).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dongyu.infra import api as infra
from dongyu.infra.state import StatePaths, read_record
from dongyu.stack.local import LocalStack

SERVERS = ("mosquitto", "synapse")
COMPONENTS = ("mbr", "worker", "ui-server")
_PROCESSED = re.compile(r"processed successfully \[op_id ([^\]]+)\]")


@dataclass(frozen=True)
class FaultRow:
    """One line of the fault table."""

    component: str
    sent: int
    acknowledged: int
    applied: int
    duplicates: int
    lost: tuple[str, ...]
    recovery_s: float
    converged: bool
    detail: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.applied == self.acknowledged
            and self.duplicates == 0
            and not self.lost
            and self.converged
        )


@dataclass
class _Stream:
    ui_url: str
    prefix: str
    count: int
    interval_s: float
    model_id: int = 100
    acknowledged: list[tuple[str, str]] = field(default_factory=list)
    refused: int = 0

    def colour(self, n: int) -> str:
        return f"#{(n * 2654435761) % 0xFFFFFF:06x}"

    def run(self) -> None:
        for n in range(self.count):
            op_id = f"{self.prefix}-{n}"
            body = {
                "source": "ui_renderer",
                "type": "label_add",
                "payload": {
                    "action": "label_update",
                    "meta": {"op_id": op_id},
                    "target": {
                        "model_id": self.model_id,
                        "p": 0,
                        "r": 0,
                        "c": 0,
                        "k": "input_value",
                    },
                    "value": {"t": "str", "v": self.colour(n)},
                },
            }
            request = urllib.request.Request(
                f"{self.ui_url}/ui_event",
                data=json.dumps(body).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        if answer.status == 200:
                            self.acknowledged.append((op_id, self.colour(n)))
                    break
                except (urllib.error.URLError, OSError):
                    # the UI server is down: like a user, submit the same event again
                    self.refused += 1
                    time.sleep(0.2)
            time.sleep(self.interval_s)


def processed_counts(stack: LocalStack) -> Counter[str]:
    """How often the worker logged each op_id as processed (its log survives restarts)."""
    text = (stack.log_dir / "worker.log").read_text(errors="replace")
    return Counter(_PROCESSED.findall(text))


def _kill_server(stack: LocalStack, server: str) -> None:
    record = read_record(StatePaths(stack.state_dir), server)
    if record is None:
        raise RuntimeError(f"no process record for {server}")
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{record.pid}"):
        stat = Path(f"/proc/{record.pid}/stat").read_text().split(")", 1)[1].split()
        if stat[0] == "Z":
            break
        time.sleep(0.05)


def _ui_label(stack: LocalStack, k: str) -> Any:
    with urllib.request.urlopen(f"{stack.ui_url}/snapshot", timeout=10) as answer:
        snapshot = json.loads(answer.read())["snapshot"]
    labels = snapshot["models"]["100"]["cells"]["0,0,0"]["labels"]
    return labels.get(k, {}).get("v")


def run_fault(
    stack: LocalStack,
    target: str,
    *,
    events: int = 30,
    interval_s: float = 0.05,
    down_s: float = 1.0,
    timeout_s: float = 90.0,
    say: Callable[[str], None] | None = None,
) -> FaultRow:
    """Stream ``events`` UI events; a third of the way in, ``kill -9`` ``target`` (a
    component of ``stack`` or one of :data:`SERVERS`), wait ``down_s``, restart it; then
    wait until every acknowledged event was processed, and count."""
    say = say or (lambda _text: None)
    before = processed_counts(stack)
    stream = _Stream(
        stack.ui_url, f"fault-{target}-{int(time.time() * 1000) % 10**8}", events, interval_s
    )
    thread = threading.Thread(target=stream.run, name=f"stream-{target}")
    thread.start()
    while len(stream.acknowledged) < events // 3 and thread.is_alive():
        time.sleep(0.01)
    say(f"{target}: kill -9 after {len(stream.acknowledged)} acknowledged events")
    if target in SERVERS:
        _kill_server(stack, target)
        time.sleep(down_s)
        restart_at = time.monotonic()
        infra.up(stack.infra_settings)
    else:
        stack.stop_component(target, kill=True)
        time.sleep(down_s)
        restart_at = time.monotonic()
        stack.start_component(target)
    say(f"{target}: restarted")
    thread.join(timeout_s)
    acknowledged = [op for op, _ in stream.acknowledged]
    deadline = time.monotonic() + timeout_s
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        now = processed_counts(stack)
        counts = Counter({op: now[op] - before[op] for op in acknowledged})
        if all(counts[op] >= 1 for op in acknowledged):
            break
        time.sleep(0.2)
    recovered_at = time.monotonic()
    last_colour = stream.acknowledged[-1][1].upper() if stream.acknowledged else None
    converged = False
    while time.monotonic() < deadline + 10:
        try:
            converged = _ui_label(stack, "bg_color") == last_colour
        except (urllib.error.URLError, OSError, KeyError):
            converged = False
        if converged:
            break
        time.sleep(0.2)
    lost = tuple(op for op in acknowledged if counts[op] == 0)
    detail = f"{stream.refused} requests refused while down" if stream.refused else ""
    if lost:
        detail += "\n" + _log_tails(stack)
    return FaultRow(
        component=target,
        sent=events,
        acknowledged=len(acknowledged),
        applied=sum(1 for op in acknowledged if counts[op] >= 1),
        duplicates=sum(max(counts[op] - 1, 0) for op in acknowledged),
        lost=lost,
        recovery_s=round(recovered_at - restart_at, 2),
        converged=converged,
        detail=detail,
    )


def _log_tails(stack: LocalStack, lines: int = 12) -> str:
    """The end of each component's log, and whether it still runs (for a failure report)."""
    parts = []
    for name, component in stack.components.items():
        alive = component.process is not None and component.process.poll() is None
        tail = component.log_file.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {name} ({'running' if alive else 'NOT running'}):\n" + "\n".join(tail))
    return "\n".join(parts)


def markdown(rows: list[FaultRow]) -> str:
    lines = [
        "| component killed | sent | acknowledged | applied | duplicates | lost | recovery (s) | page converged |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.component} | {r.sent} | {r.acknowledged} | {r.applied} | {r.duplicates} | {len(r.lost)} "
        f"| {r.recovery_s} | {'yes' if r.converged else 'NO'} |"
        for r in rows
    ]
    return "\n".join(lines)


def _worker_label(stack: LocalStack, k: str) -> Any:
    url = f"http://127.0.0.1:{stack.ports.worker_health}/snapshot"
    with urllib.request.urlopen(url, timeout=10) as answer:
        snapshot = json.loads(answer.read())["snapshot"]
    return snapshot["models"]["100"]["cells"]["0,0,0"]["labels"].get(k, {}).get("v")


def state_survives_kill(stack: LocalStack, target: str) -> tuple[object, object]:
    """``kill -9`` and restart ``target`` with no traffic; the colour it held before and
    after (its table is restored from its state file)."""
    read = _ui_label if target == "ui-server" else _worker_label
    before = read(stack, "bg_color")
    stack.stop_component(target, kill=True)
    stack.start_component(target)
    return before, read(stack, "bg_color")
