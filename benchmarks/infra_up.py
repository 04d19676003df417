"""Figures of `dongyu infra up`: time from nothing, from an existing state folder, and RSS.

Usage: .venv/bin/python benchmarks/infra_up.py [--runs N]

Each run uses a fresh temporary state folder and free ports, and stops
everything it started (by PID, through `down()`) before it ends:

  cold     `up` with an empty state folder: write configs, start Synapse and
           mosquitto, register @drop and @mbr, create the DM room
  warm     `down`, then `up` again on the same folder: start both servers,
           keep users and room (the daily case)
  no-op    `up` while everything runs (idempotent check only)
  RSS      resident memory of each server after the warm start (and of the
           amqtt fallback, started once on the same folder)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from dongyu.infra import down, status, up
from dongyu.infra.process import free_port
from dongyu.settings import InfraSettings


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn: object, *args: object, **kwargs: object) -> float:
    t = time.perf_counter()
    fn(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - t


def one_run() -> dict[str, float]:
    state_dir = Path(tempfile.mkdtemp(prefix="dongyu-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o711)
    settings = InfraSettings(state_dir=state_dir, matrix_port=free_port(), mqtt_port=free_port())
    figures: dict[str, float] = {}
    try:
        figures["cold_s"] = timed(up, settings)
        down(settings)
        figures["warm_s"] = timed(up, settings)
        figures["noop_s"] = timed(up, settings)
        for server in status(settings).servers:
            figures[f"rss_{server.name}_mb"] = rss_mb(server.pid)
        down(settings)
        amqtt = InfraSettings(
            state_dir=state_dir,
            matrix_port=settings.matrix_port,
            mqtt_port=settings.mqtt_port,
            broker="amqtt",
        )
        figures["warm_amqtt_s"] = timed(up, amqtt)
        for server in status(amqtt).servers:
            if server.name == "amqtt":
                figures["rss_amqtt_mb"] = rss_mb(server.pid)
    finally:
        down(settings)
        shutil.rmtree(state_dir, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    print(f"dongyu infra up: median of {args.runs} runs ({os.cpu_count()} cores)")
    labels = {
        "cold_s": "up from nothing (start, register, create room)",
        "warm_s": "up from an existing state folder (servers stopped)",
        "noop_s": "up while everything runs (idempotent check)",
        "warm_amqtt_s": "up from the state folder with the amqtt fallback",
        "rss_synapse_mb": "RSS Synapse",
        "rss_mosquitto_mb": "RSS mosquitto",
        "rss_amqtt_mb": "RSS amqtt (fallback)",
    }
    for key, label in labels.items():
        values = [r[key] for r in runs if key in r]
        if not values:
            continue
        unit = "MB" if key.startswith("rss") else "s"
        spread = f"(min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else ""
        print(f"  {label:52} {statistics.median(values):8.2f} {unit} {spread}")


if __name__ == "__main__":
    main()
