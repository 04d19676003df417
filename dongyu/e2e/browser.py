"""A real browser on the UI server's page: type a colour, click Submit, wait for the repaint."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import ConsoleMessage, async_playwright

from dongyu.adapters.browser import launch_chromium
from dongyu.messages.hops import now_us


@dataclass(frozen=True)
class SubmitResult:
    op_id: str
    colour: str
    background: str
    """The box's computed background colour after the repaint (``rgb(r, g, b)``)."""
    status: str
    elapsed_ms: float
    click_us: int
    """When the page's submit handler ran (epoch microseconds, millisecond precision)."""
    repaint_us: int
    """When the page applied the repaint (same precision)."""
    screenshot: Path | None
    console: tuple[str, ...] = field(default=())
    """Browser console errors and warnings, and page errors (none expected)."""


def rgb(colour: str) -> str:
    """``#rrggbb`` -> ``rgb(r, g, b)`` as browsers report computed colours."""
    value = colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


async def submit_colour(
    ui_url: str,
    colour: str,
    *,
    model_id: int = 100,
    screenshot: Path | None = None,
    timeout_s: float = 30.0,
) -> SubmitResult:
    """Open the page, type ``colour`` into the colour input, click Submit, and wait until
    the box shows the worker's colour (``colour`` in upper case in the status).

    A coroutine: ``await`` it in a notebook (ipykernel runs an event loop, where
    Playwright's sync API cannot run), ``asyncio.run`` it elsewhere."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    async with async_playwright() as p:
        browser = await launch_chromium(p)
        try:
            page = await browser.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
            await page.goto(ui_url, wait_until="load")
            await page.wait_for_function(
                "document.body.dataset.live === 'yes'", timeout=timeout_s * 1000
            )
            await page.get_by_label("Color", exact=True).fill(colour)
            click_us = now_us()
            started = time.perf_counter()
            await page.get_by_role("button", name="Submit").click()
            await page.wait_for_function(
                "([id, c]) => document.getElementById('status-' + id).textContent.endsWith(c)",
                arg=[model_id, colour.upper()],
                timeout=timeout_s * 1000,
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            repaint_us = now_us()
            form = page.locator(f"form[data-model='{model_id}']")
            op_id = str(await form.get_attribute("data-last-op-id"))
            # the page's own clock (same machine, same wall clock): when its submit handler
            # ran and when it applied the last change, without Playwright's own overhead
            submit_ms = await form.get_attribute("data-submit-ms")
            paint_ms = await page.evaluate("document.body.dataset.lastPaintMs")
            if submit_ms:
                click_us = int(submit_ms) * 1000
            if paint_ms:
                repaint_us = int(paint_ms) * 1000
            box = page.locator(f"#box-{model_id}")
            background = str(await box.evaluate("el => getComputedStyle(el).backgroundColor"))
            status = await page.locator(f"#status-{model_id}").inner_text()
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    return SubmitResult(
        op_id=op_id,
        colour=colour,
        background=background,
        status=status,
        elapsed_ms=elapsed_ms,
        click_us=click_us,
        repaint_us=repaint_us,
        screenshot=screenshot,
        console=tuple(problems),
    )
