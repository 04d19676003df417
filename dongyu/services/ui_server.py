"""The UI server service (``dongyu ui-server``): the page, ``POST /ui_event``, live updates.

``POST /ui_event`` is answered only once the event is **durably handed to the
management bus**: the homeserver answered the send with an event id, which it
does after persisting the event in its database. From then on the event is in
the room for the bridge to read, even if the UI server dies the next moment.
The answer is ``200 {"op_id", "event_id", "status": "sent", "seq"}`` (``seq``:
the order in which the server accepted the event, which is its order on the
bus); bad input gets ``400``/``413`` with ``{"error", "reason"}`` and changes
nothing.

One task sends to Matrix, in the order events were accepted. When events queue
up while a send is in flight, the next send carries all of them in one
``batch`` event (:mod:`dongyu.messages.batch`); each request is answered once
the event carrying its message is accepted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dongyu import programs
from dongyu.adapters.http.server import HttpServer
from dongyu.adapters.http.ui_app import ui_app
from dongyu.core.snapshot import from_snapshot, to_snapshot
from dongyu.errors import DongyuError, ValidationError
from dongyu.messages.batch import encoded_size, group, pack, unpack
from dongyu.messages.bus import BusMessage
from dongyu.patch.dedup import OpIdWindow
from dongyu.program.host import OutboxHost
from dongyu.program.runtime import Runtime
from dongyu.services.base import Service
from dongyu.services.mbr import MatrixEndpoint, coalesce_from_env, matrix_link
from dongyu.store.component import ComponentStore
from dongyu.ui.core import UiCore
from dongyu.ui.page import render_page

log = logging.getLogger("dongyu.services.ui_server")

_SUBSCRIBER_QUEUE = 1000


@dataclass(frozen=True)
class UiServerConfig:
    matrix: MatrixEndpoint
    state_dir: Path
    http_host: str = "127.0.0.1"
    http_port: int = 9000
    programs: tuple[str, ...] = ("ui_server", "color_form")
    coalesce: bool = field(default_factory=lambda: coalesce_from_env(os.environ))
    """Send queued messages together in one ``batch`` event (``DY_BUS_COALESCE=0``: never)."""


_Outgoing = tuple[list[dict[str, Any]], "asyncio.Future[str]"]


class UiServerService(Service):
    def __init__(self, config: UiServerConfig) -> None:
        super().__init__("ui-server")
        self.config = config
        self.outbox = OutboxHost()
        # durable state: the table and the applied deltas' op_ids, committed after each
        # batch from Matrix and before the sync position moves past it
        self.store = ComponentStore(config.state_dir / "ui_server.sqlite", seen_capacity=100_000)
        restored = self.store.load()
        table = from_snapshot(restored.snapshot) if restored.snapshot is not None else None
        self.runtime = Runtime(
            self.outbox, table=table, dedup=OpIdWindow(100_000, seen=restored.seen)
        )
        for name in config.programs:
            patch = programs.load(name)
            self.runtime.load_program(programs.structure(patch) if table is not None else patch)
        if table is not None:
            log.info(
                "table restored from %s (%d applied deltas remembered)",
                self.store.path,
                len(restored.seen),
            )
        self.core = UiCore(self.runtime, self.outbox)
        self.matrix = matrix_link(config.matrix, config.state_dir / "ui_server.sync_token")
        self.http = HttpServer(ui_app(self), config.http_host, config.http_port, name="UI server")
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._outgoing: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self.bridge_seen_ms: int | None = None
        self.accepted = 0
        self.refused = 0

    @property
    def url(self) -> str:
        return self.http.url

    # ---- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "connecting to Matrix %s as %s",
            self.config.matrix.homeserver_url,
            self.config.matrix.user_id,
        )
        await self.matrix.login()
        self._tasks.start("matrix-receiver", self._matrix_receiver())
        self._tasks.start("matrix-sender", self._matrix_sender())
        await self.http.start()
        log.info("UI server ready at %s", self.url)

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(self.matrix.synced.wait(), timeout_s)

    async def stop(self) -> None:
        self._stopping.set()
        await self.http.stop()
        await self._tasks.cancel_all()
        await self.matrix.close()
        self.store.close()
        log.info("UI server stopped")

    # ---- the UiBackend of the web app -----------------------------------------
    def page(self) -> str:
        return render_page(self.runtime.table)

    def snapshot(self) -> dict[str, Any]:
        return to_snapshot(self.runtime.table)

    async def post_ui_event(self, body: object) -> tuple[int, dict[str, Any]]:
        try:
            accepted = self.core.accept(body, now_ms=time.time_ns() // 1_000_000)
        except ValidationError as exc:
            self.refused += 1
            log.warning("POST /ui_event refused: %s", exc)
            return 400, {"error": exc.code, "reason": exc.detail}
        except DongyuError as exc:
            self.refused += 1
            log.error("POST /ui_event failed: %s", exc)
            return 500, {"error": exc.code, "reason": exc.detail}
        try:
            # through the typed message: values Matrix would refuse travel as JSON text
            contents = [BusMessage.from_dict(message).to_dict() for message in accepted.messages]
        except ValidationError as exc:
            log.error("forward_ui_events produced a bad message for %s: %s", accepted.op_id, exc)
            return 500, {"error": "bad_program_output", "reason": exc.detail}
        event_id: str | None = None
        if contents:
            sent: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._outgoing.put_nowait((contents, sent))
            try:
                # shielded: a client that goes away does not take the queued send with it
                event_id = await asyncio.shield(sent)
            except DongyuError as exc:
                log.error("ui_event %s not sent: %s", accepted.op_id, exc)
                return 502, {"error": exc.code, "reason": exc.detail, "op_id": accepted.op_id}
            for message in contents:
                log.info(
                    "sent %s %s to Matrix as %s [op_id %s]",
                    message.get("type"),
                    message.get("action"),
                    event_id,
                    accepted.op_id,
                )
        self.accepted += 1
        return 200, {
            "op_id": accepted.op_id,
            "event_id": event_id,
            "status": "sent",
            "seq": accepted.seq,
        }

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def trace(self, op_id: str) -> list[dict[str, Any]] | None:
        return self.core.trace(op_id)

    def traces(self, since: int, limit: int) -> dict[str, Any]:
        return {
            "traces": [t.to_dict() for t in self.core.traces_since(since, limit)],
            "last_seq": self.core.traces.last_seq,
            "accepted": self.core.accepted,
            "duplicate_deltas": self.core.duplicate_deltas,
        }

    def health(self) -> tuple[bool, str]:
        if self._tasks.failed.is_set():
            return False, f"failed: {self._tasks.failure!r}"
        return True, "ok"

    # ---- the management bus ------------------------------------------------------
    async def _matrix_sender(self) -> None:
        """One sender: messages reach Matrix in the order the events were accepted."""
        while True:
            items = [await self._outgoing.get()]
            if self.config.coalesce:
                while not self._outgoing.empty():
                    items.append(self._outgoing.get_nowait())
            contents = [c for messages, _ in items for c in messages]
            owner = [n for n, (messages, _) in enumerate(items) for _ in messages]
            groups = (
                group([encoded_size(c) for c in contents])
                if self.config.coalesce
                else [range(i, i + 1) for i in range(len(contents))]
            )
            event_ids: dict[int, str] = {}
            failed: dict[int, DongyuError] = {}
            for part in groups:
                try:
                    event_id = await self._send_group([contents[i] for i in part])
                except DongyuError as exc:
                    for i in part:
                        failed.setdefault(owner[i], exc)
                    continue
                for i in part:
                    event_ids.setdefault(owner[i], event_id)
            for n, (_, future) in enumerate(items):
                if future.done():
                    continue
                if n in failed:
                    future.set_exception(failed[n])
                else:
                    future.set_result(event_ids[n])

    async def _send_group(self, contents: list[dict[str, Any]]) -> str:
        """Send messages as one event; if the homeserver refuses a batch, one by one."""
        try:
            event_id = await self.matrix.send(pack(contents))
        except DongyuError:
            if len(contents) == 1:
                raise
            log.warning(
                "a batch of %d messages was refused: sending them one by one", len(contents)
            )
            event_ids = [await self.matrix.send(c) for c in contents]
            return event_ids[0]
        if len(contents) > 1:
            log.info("sent %d messages to Matrix in one event %s", len(contents), event_id)
        return event_id

    async def _matrix_receiver(self) -> None:
        async for batch in self.matrix.events():
            applied: list[str] = []
            for event in batch:
                try:
                    contents = unpack(event.content)
                except ValidationError as exc:
                    log.warning("Matrix event %s refused: %s", event.event_id, exc)
                    continue
                for content in contents:
                    op_id = self._receive(event.event_id, content)
                    if op_id is not None:
                        applied.append(op_id)
            if applied:
                self.store.commit(snapshot=to_snapshot(self.runtime.table), seen=applied)

    def _receive(self, event_id: str, content: object) -> str | None:
        """Handle one bus message; the op_id of a delta it applied (to persist)."""
        try:
            message = BusMessage.from_dict(content)
        except ValidationError as exc:
            log.warning("Matrix event %s refused: %s", event_id, exc)
            return None
        if message.type == "mbr_ready":
            self.bridge_seen_ms = time.time_ns() // 1_000_000
            log.debug("the bridge is alive (%s)", message.op_id)
            return None
        if message.type != "snapshot_delta":
            log.info("Matrix %s message %s ignored", message.type, message.op_id)
            return None
        result, changes = self.core.apply_delta(message)
        if changes:
            self._push({"op_id": message.op_id, "changes": changes})
        return result.op_id if not result.refused and not result.duplicate else None

    def _push(self, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("a browser is not reading its updates: dropping its connection")
                self._subscribers.discard(queue)
