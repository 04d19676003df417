"""The UI server's web application (aiohttp).

``GET /`` the page, ``GET /snapshot`` ``{"snapshot": {"models": ...}}``,
``POST /ui_event`` a browser event, ``GET /events`` server-sent events with
the table's changes, ``GET /trace/<op_id>`` the hops of the reply to an event,
``GET /trace?since=<seq>&limit=<n>`` the replies applied after ``seq`` in the
order applied, ``GET /healthz``. The logic lives behind
:class:`UiBackend` (the UI server service); this module only speaks HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger("dongyu.adapters.http.ui_app")

MAX_BODY_BYTES = 64 * 1024
"""The largest ``POST /ui_event`` body accepted (larger: 413)."""
MAX_TRACES = 10_000
"""The most records one ``GET /trace`` answers with."""


class UiBackend(Protocol):
    def page(self) -> str: ...

    def snapshot(self) -> dict[str, Any]: ...

    async def post_ui_event(self, body: object) -> tuple[int, dict[str, Any]]: ...

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]: ...

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None: ...

    def health(self) -> tuple[bool, str]: ...

    def trace(self, op_id: str) -> list[dict[str, Any]] | None: ...

    def traces(self, since: int, limit: int) -> dict[str, Any]: ...


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": code, "reason": reason}, status=status)


def ui_app(backend: UiBackend, *, max_body: int = MAX_BODY_BYTES) -> web.Application:
    async def index(_: web.Request) -> web.Response:
        return web.Response(text=backend.page(), content_type="text/html", charset="utf-8")

    async def snapshot(_: web.Request) -> web.Response:
        return web.json_response({"snapshot": backend.snapshot()})

    async def post_ui_event(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body:
            return _error(413, "too_large", f"the body is larger than {max_body} bytes")
        try:
            raw = await request.content.read(max_body + 1)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            return _error(400, "unreadable", f"cannot read the body: {exc}")
        if len(raw) > max_body:
            return _error(413, "too_large", f"the body is larger than {max_body} bytes")
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "invalid_json", f"the body is not JSON: {exc}")
        status, answer = await backend.post_ui_event(body)
        return web.json_response(answer, status=status)

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue = backend.subscribe()
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                data = json.dumps(message, separators=(",", ":"))
                await response.write(f"event: changes\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            backend.unsubscribe(queue)
        return response

    async def trace(request: web.Request) -> web.Response:
        op_id = request.match_info["op_id"]
        hops = backend.trace(op_id)
        if hops is None:
            return _error(
                404, "unknown_op_id", f"no applied reply for {op_id} among the newest kept"
            )
        return web.json_response({"op_id": op_id, "hops": hops})

    async def traces(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            return _error(400, "invalid_query", "'since' and 'limit' must be integers")
        if since < 0 or not 1 <= limit <= MAX_TRACES:
            return _error(
                400, "invalid_query", f"'since' must be >= 0 and 'limit' from 1 to {MAX_TRACES}"
            )
        return web.json_response(backend.traces(since, limit))

    async def healthz(_: web.Request) -> web.Response:
        ok, why = backend.health()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")

    app = web.Application(client_max_size=max_body)
    app.router.add_get("/", index)
    app.router.add_get("/snapshot", snapshot)
    app.router.add_post("/ui_event", post_ui_event)
    app.router.add_get("/events", events)
    app.router.add_get("/trace", traces)
    app.router.add_get("/trace/{op_id}", trace)
    app.router.add_get("/healthz", healthz)
    return app
