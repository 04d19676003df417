"""``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text) for a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

Readiness = Callable[[], tuple[bool, str]]
MetricsText = Callable[[], str]


def health_app(
    alive: Callable[[], bool],
    ready: Readiness,
    metrics: MetricsText,
    snapshot: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """``/healthz``: 200 while the process works; ``/readyz``: 200 when ``ready()`` says so,
    503 with the reason otherwise; ``/metrics``: Prometheus text exposition; with
    ``snapshot``, ``/snapshot`` (read-only) answers ``{"snapshot": ...}``."""

    async def healthz(_: web.Request) -> web.Response:
        ok = alive()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "not alive\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, why = ready()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")

    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(text=metrics(), content_type="text/plain", charset="utf-8")

    async def snapshot_handler(_: web.Request) -> web.Response:
        assert snapshot is not None
        return web.json_response({"snapshot": snapshot()})

    app = web.Application()
    if snapshot is not None:
        app.router.add_get("/snapshot", snapshot_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app
