"""One benchmark run: start the chain, measure everything on the same servers, stop it."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dongyu.bench import chain, raw
from dongyu.infra.process import free_port
from dongyu.settings import InfraSettings, read_infra_info
from dongyu.stack.local import LocalStack, StackPorts

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    matrix_samples: int = 50
    mqtt_samples: int = 500
    rounds: int = 200
    burst: int = 1000
    burst_concurrency: int = 64
    browser_runs: int = 30
    browser: bool = True
    keep_state: bool = False

    @classmethod
    def quick(cls) -> BenchOptions:
        return cls(matrix_samples=15, mqtt_samples=100, rounds=30, burst=200, browser_runs=5)


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in kB."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "os": os_name,
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
    }


def run_bench(options: BenchOptions, *, say: Progress = print) -> dict[str, Any]:
    """Start the chain in a temporary state folder on free ports, measure, stop it."""
    state = Path(tempfile.mkdtemp(prefix="dongyu-bench-", dir="/tmp"))
    os.chmod(state, 0o711)
    ports: set[int] = set()
    while len(ports) < 5:
        ports.add(free_port())
    matrix_port, mqtt_port, ui, mbr, worker = sorted(ports)
    settings = InfraSettings(state_dir=state, matrix_port=matrix_port, mqtt_port=mqtt_port)
    stack = LocalStack(
        settings,
        ports=StackPorts(ui=ui, mbr_health=mbr, worker_health=worker),
        progress=say,
    )
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": asdict(options),
        "machine": machine(),
        "coalesce": os.environ.get("DY_BUS_COALESCE", "1"),
    }
    say(f"starting the chain in {state} (Synapse, mosquitto, UI server, MBR, worker)")
    t0 = time.monotonic()
    stack.start()
    results["stack_start_s"] = round(time.monotonic() - t0, 1)
    try:
        info = read_infra_info(state)
        results["servers"] = {"matrix": info.matrix.mode, "mqtt": info.mqtt.mode}
        pids = {
            name: c.process.pid for name, c in stack.components.items() if c.process is not None
        }
        results["rss_idle_kb"] = {name: rss_kb(pid) for name, pid in pids.items()}
        peak: dict[str, int] = {}

        def sample_rss() -> None:
            for name, pid in pids.items():
                kb = rss_kb(pid).get("VmRSS", 0)
                peak[name] = max(peak.get(name, 0), kb)

        async def measure() -> None:
            say(f"raw Matrix hop: {options.matrix_samples} events @drop -> @mbr's sync")
            results["raw_matrix"] = await raw.matrix_hop(info, options.matrix_samples, say=say)
            say(f"raw MQTT hop: {options.mqtt_samples} QoS 1 messages")
            results["raw_mqtt"] = await raw.mqtt_hop(info, options.mqtt_samples, say=say)
            say(f"round trip: {options.rounds} sequential UI events (POST -> reply applied)")
            results["round_trip"] = await chain.round_trips(stack.ui_url, options.rounds, say=say)
            say(f"burst: {options.burst} UI events, {options.burst_concurrency} requests in flight")
            results["burst"] = await chain.burst(
                stack.ui_url,
                f"http://127.0.0.1:{worker}/metrics",
                f"http://127.0.0.1:{mbr}/metrics",
                options.burst,
                concurrency=options.burst_concurrency,
                sample_rss=sample_rss,
                say=say,
            )

        asyncio.run(measure())
        results["rss_burst_peak_kb"] = peak
        results["rss_after_kb"] = {name: rss_kb(pid) for name, pid in pids.items()}
        if options.browser and options.browser_runs > 0:
            say(f"browser: {options.browser_runs} clicks, Submit -> repaint (headless Chromium)")
            from dongyu.bench.browser import click_to_repaint

            try:
                results["browser"] = click_to_repaint(stack.ui_url, options.browser_runs, say=say)
            except Exception as exc:  # no Chromium or Playwright: the rest still counts
                say(f"  browser run failed: {exc!r}")
                results["browser"] = {"error": repr(exc)}
    finally:
        say("stopping the chain")
        stack.stop(stop_infra=True)
        if not options.keep_state:
            shutil.rmtree(state, ignore_errors=True)
        else:
            say(f"state and logs kept in {state}")
    results["goals"] = goals(results)
    return results


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, computed from this run's figures."""
    out: dict[str, Any] = {}
    m = results.get("raw_matrix", {}).get("hop_ms", {}).get("p50")
    q = results.get("raw_mqtt", {}).get("hop_ms", {}).get("p50")
    rt = results.get("round_trip", {}).get("round_trip_ms", {})
    if m is not None and q is not None and rt.get("p50") is not None:
        floor = 2 * m + 2 * q
        out["round_trip_p50"] = {
            "value_ms": rt["p50"],
            "floor_ms": round(floor, 3),
            "limit_ms": round(1.25 * floor, 3),
            "ratio_to_floor": round(rt["p50"] / floor, 3),
            "met": rt["p50"] <= 1.25 * floor,
        }
        out["round_trip_p99"] = {
            "value_ms": rt["p99"],
            "limit_ms": round(2 * rt["p50"], 3),
            "ratio_to_p50": round(rt["p99"] / rt["p50"], 3),
            "met": rt["p99"] <= 2 * rt["p50"],
        }
    b = results.get("burst", {})
    rate = results.get("raw_matrix", {}).get("sequential", {}).get("events_per_s")
    if b:
        exact = (
            b["applied_by_ui_server"] == b["events"]
            and b["worker_messages_in"] == b["events"]
            and b["applied_twice"] == 0
            and b["worker_duplicates"] == 0
            and b["worker_function_errors"] == 0
            and b["worker_rejected"] == 0
            and b["post_status"] == {"200": b["events"]}
            and b["order_violations_ui_server"] == 0
            and b["order_violations_worker"] == 0
        )
        out["burst_exactly_once_in_order"] = {"met": exact}
        if rate:
            out["burst_throughput"] = {
                "value_per_s": b["events_per_s"],
                "raw_matrix_per_s": rate,
                "limit_per_s": round(3 * rate, 1),
                "ratio_to_raw": round(b["events_per_s"] / rate, 2),
                "met": b["events_per_s"] >= 3 * rate,
            }
    peak = max(
        results.get("rss_burst_peak_kb", {}).get("worker", 0),
        results.get("rss_after_kb", {}).get("worker", {}).get("VmHWM", 0),
    )
    if peak:
        out["worker_rss"] = {
            "value_mb": round(peak / 1024, 1),
            "limit_mb": 80,
            "met": peak <= 80 * 1024,
        }
    return out
