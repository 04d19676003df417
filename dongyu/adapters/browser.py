"""A real headless browser for tests, notebooks and benchmarks: Debian's Chromium driven
by Playwright (never ``playwright install``: no browser is downloaded here).

Playwright is a development dependency; import this module only where a browser is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("DY_CHROMIUM", "/usr/lib/chromium/chromium")
"""The browser binary (Debian's package; the /usr/bin/chromium wrapper script is avoided)."""

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
"""Flags for this machine: no sandbox as root, and no attempts to reach the internet."""


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium from a started ``sync_playwright()`` (or async) instance."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(
            f"{CHROMIUM} not found: install Debian's 'chromium' (scripts/setup does)"
        )
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
    )
