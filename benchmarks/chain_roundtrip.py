"""Round trip of the whole chain, measured in a real browser: Submit -> repaint.

Starts the chain (LocalStack: Synapse, mosquitto, UI server, MBR, worker) in a
temporary state folder, opens the page in headless Chromium and clicks Submit N
times with a new colour each time, timing from the click to the box's new colour
(page.wait_for_function). Prints median, p95 and the RSS of each process.

    .venv/bin/python benchmarks/chain_roundtrip.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from dongyu.adapters.browser import launch_chromium
from dongyu.infra.process import free_port
from dongyu.settings import InfraSettings
from dongyu.stack.local import LocalStack, StackPorts


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="dongyu-bench-", dir="/tmp"))
    os.chmod(state, 0o711)
    ports = sorted({free_port() for _ in range(8)})[:5]
    settings = InfraSettings(state_dir=state, matrix_port=ports[0], mqtt_port=ports[1])
    stack = LocalStack(
        settings, ports=StackPorts(ui=ports[2], mbr_health=ports[3], worker_health=ports[4])
    )
    stack.start()
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page()
            page.goto(stack.ui_url, wait_until="load")
            page.wait_for_function("document.body.dataset.live === 'yes'")
            times: list[float] = []
            for i in range(args.rounds):
                colour = f"#{(i * 37) % 256:02x}{(255 - i * 11) % 256:02x}{(i * 91) % 256:02x}"
                page.get_by_label("Color", exact=True).fill(colour)
                start = time.perf_counter()
                page.get_by_role("button", name="Submit").click()
                page.wait_for_function(
                    "c => document.getElementById('status-100').textContent.endsWith(c)",
                    arg=colour.upper(),
                    timeout=20_000,
                )
                times.append((time.perf_counter() - start) * 1000)
            browser.close()
        memory = {
            name: round(rss_mb(c.process.pid), 1)
            for name, c in stack.components.items()
            if c.process is not None
        }
    finally:
        stack.stop(stop_infra=True)
        shutil.rmtree(state, ignore_errors=True)
    figures = {
        "rounds": args.rounds,
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "rss_mb": memory,
    }
    print(
        f"browser Submit -> repaint over {args.rounds} clicks: median {figures['median_ms']} ms, "
        f"p95 {figures['p95_ms']} ms (min {figures['min_ms']}, max {figures['max_ms']})"
    )
    print(
        "original JavaScript system: median 1026 ms, p95 1286 ms "
        f"-> {1026 / figures['median_ms']:.1f}x faster at the median"
    )
    print("RSS per component (MB):", memory)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
