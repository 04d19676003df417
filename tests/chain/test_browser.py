"""The seed's step 0.4, for real: a headless Chromium (Debian's, driven by Playwright)
opens the page, types #ff00ff into the colour input and clicks Submit; the event goes
UI server -> Matrix -> MBR -> MQTT -> worker and back, and the page repaints."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, sync_playwright

from dongyu.adapters.browser import launch_chromium
from dongyu.stack.local import LocalStack
from tests.chain.conftest import ARTIFACTS, WORKER_ID


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        try:
            yield chromium
        finally:
            chromium.close()


def test_submit_repaints_with_the_workers_colour(stack: LocalStack, browser: Browser) -> None:
    page = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.goto(stack.ui_url, wait_until="load")
    page.wait_for_function("document.body.dataset.live === 'yes'", timeout=10_000)

    colour = page.get_by_label("Color", exact=True)
    submit = page.get_by_role("button", name="Submit")
    box = page.locator("#box-100")
    colour.fill("#ff00ff")
    started = time.monotonic()
    submit.click()
    page.wait_for_function(
        "getComputedStyle(document.getElementById('box-100')).backgroundColor === 'rgb(255, 0, 255)'",
        timeout=20_000,
    )
    elapsed = time.monotonic() - started
    status = page.locator("#status-100").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-after-submit.png"), full_page=True)
    style: Any = box.evaluate("el => el.style.backgroundColor")
    page.close()

    assert style == "rgb(255, 0, 255)"
    assert status == f"{WORKER_ID}: #FF00FF", status
    assert problems == [], problems
    assert elapsed < 20


def test_a_second_colour_repaints_again(stack: LocalStack, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(stack.ui_url, wait_until="load")
    page.wait_for_function("document.body.dataset.live === 'yes'", timeout=10_000)
    page.get_by_label("Color", exact=True).fill("#00ff80")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_function(
        "document.getElementById('status-100').textContent.endsWith('#00FF80')", timeout=20_000
    )
    assert (
        page.locator("#box-100").evaluate("el => getComputedStyle(el).backgroundColor")
        == "rgb(0, 255, 128)"
    )
    page.close()
