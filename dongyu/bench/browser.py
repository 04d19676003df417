"""A real browser's click -> repaint (the approach of ``benchmarks/chain_roundtrip.py` (since replaced by `dongyu bench`)`).

Headless Chromium (:mod:`dongyu.adapters.browser`) opens the page, and for each
run fills a new colour and clicks Submit; the time is from the click to the
status text showing the worker's answer (``page.wait_for_function``).
Playwright is a development dependency: imported only when this runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dongyu.bench.stats import summary

Progress = Callable[[str], None]


def click_to_repaint(ui_url: str, runs: int, *, say: Progress = print) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from dongyu.adapters.browser import launch_chromium

    times: list[float] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.goto(ui_url, wait_until="load")
            page.wait_for_function("document.body.dataset.live === 'yes'")
            for i in range(-2, runs):  # two warm-up clicks
                colour = f"#{(i * 37) % 256:02x}{(255 - i * 11) % 256:02x}{(i * 91) % 256:02x}"
                page.get_by_label("Color", exact=True).fill(colour)
                start = time.perf_counter()
                page.get_by_role("button", name="Submit").click()
                page.wait_for_function(
                    "c => document.getElementById('status-100').textContent.endsWith(c)",
                    arg=colour.upper(),
                    timeout=20_000,
                )
                if i >= 0:
                    times.append((time.perf_counter() - start) * 1000)
                    if (i + 1) % 10 == 0:
                        say(f"  browser click {i + 1}/{runs}")
        finally:
            browser.close()
    return {"runs": runs, "click_to_repaint_ms": summary(times), "samples_ms": times}
