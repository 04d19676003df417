"""An asyncio Matrix link for the services (matrix-nio): a durable send queue and a sync loop.

- :meth:`MatrixLink.send` returns the event id once the homeserver has
  accepted the event (it answered 200: Synapse has persisted it). It waits
  and retries on HTTP 429 (``retry_after_ms``) and on connection errors, with
  the same transaction id (the homeserver de-duplicates): an event is never
  dropped.
- :meth:`MatrixLink.events` long-polls ``/sync`` and yields the ``dy.bus.v0``
  events of the configured peer in the configured room, in order; everything
  else is ignored and logged. The sync position (``next_batch``) is saved to
  a file after each batch has been handled, so a restart neither misses nor
  re-reads events (op_id de-duplication backs this up). Without a saved
  position, the first sync skips history.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, RoomSendResponse, SyncResponse

from dongyu.adapters.matrix.client import (
    BUS_EVENT_TYPE,
    BusEvent,
    MatrixClientError,
    bus_events,
    check_content,
)

log = logging.getLogger("dongyu.adapters.matrix.link")

_MAX_BACKOFF_S = 5.0
_TIMELINE_LIMIT = 1000


class MatrixLink:
    def __init__(
        self,
        homeserver_url: str,
        *,
        user_id: str,
        access_token: str | None,
        password: str | None,
        device_id: str | None,
        room_id: str,
        peer_user_id: str,
        tls_verify: bool = True,
        sync_token_file: Path | None = None,
        sync_timeout_ms: int = 30_000,
        event_type: str = BUS_EVENT_TYPE,
    ) -> None:
        self.room_id = room_id
        self.event_type = event_type
        self.peer_user_id = peer_user_id
        self.sync_timeout_ms = sync_timeout_ms
        self._password = password
        self._access_token = access_token
        self._device_id = device_id or ""
        self._token_file = sync_token_file
        config = AsyncClientConfig(
            max_limit_exceeded=0,  # 429s come back to us: we wait and retry ourselves
            max_timeouts=0,
            request_timeout=sync_timeout_ms / 1000 + 15,
        )
        self._client = AsyncClient(
            homeserver_url, user_id, device_id=self._device_id, config=config, ssl=tls_verify
        )
        self._next_batch: str | None = None
        self._saving: asyncio.Future[None] | None = None
        self.sent = 0
        self.received = 0
        self.ignored = 0
        self.synced = asyncio.Event()
        self._filter: dict[str, Any] = {
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "room": {
                "rooms": [room_id],
                # Every event of the room, filtered here rather than by the homeserver: a
                # server-side filter ("types", "not_senders") keeps the since-token from
                # advancing while only filtered-out events arrive, and Synapse then
                # re-scans everything since that token on each wake-up (measured: a hop
                # went from 26 to 49 ms over 400 such events; docs/performance.md).
                "timeline": {"limit": _TIMELINE_LIMIT},
                "state": {"lazy_load_members": True},
                "ephemeral": {"not_types": ["*"]},
                "account_data": {"not_types": ["*"]},
            },
        }

    @property
    def user_id(self) -> str:
        return str(self._client.user_id)

    async def login(self) -> None:
        """Use the access token, or log in with the password; check who we are."""
        if self._access_token:
            self._client.restore_login(self.user_id, self._device_id, self._access_token)
        elif self._password:
            answer = await self._client.login(password=self._password, device_name="dongyu")
            if not hasattr(answer, "access_token"):
                raise MatrixClientError(f"login of {self.user_id} failed: {answer}")
        else:
            raise MatrixClientError(f"no access token or password for {self.user_id}")
        who = await self._client.whoami()
        if getattr(who, "user_id", None) != self.user_id:
            raise MatrixClientError(f"whoami for {self.user_id} failed: {who}")
        self._next_batch = self._load_token()
        log.info(
            "Matrix client ready: %s in %s (peer %s, %s)",
            self.user_id,
            self.room_id,
            self.peer_user_id,
            "resuming the saved sync position" if self._next_batch else "starting from now",
        )

    async def send(self, content: Mapping[str, Any]) -> str:
        """Send one event (of :attr:`event_type`); its event id once the homeserver accepted it."""
        check_content(content)
        txn = uuid.uuid4().hex
        backoff = 0.2
        while True:
            try:
                answer = await self._client.room_send(
                    self.room_id, self.event_type, dict(content), tx_id=txn
                )
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("send failed (%s): retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            except Exception as exc:  # aiohttp's client errors (nio does not wrap them)
                if type(exc).__module__.startswith("aiohttp"):
                    log.warning("send failed (%s): retrying in %.1f s", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                raise
            if isinstance(answer, RoomSendResponse):
                self.sent += 1
                return str(answer.event_id)
            status = getattr(answer, "status_code", None)
            if status == "M_LIMIT_EXCEEDED":
                wait_ms = getattr(answer, "retry_after_ms", None) or 500
                log.info("send rate limited by the homeserver: retrying in %d ms", wait_ms)
                await asyncio.sleep(wait_ms / 1000)
                continue
            transport = getattr(answer, "transport_response", None)
            http_status = getattr(transport, "status", None)
            if http_status is None or http_status >= 500:
                log.warning("send failed (%s): retrying in %.1f s", answer, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            raise MatrixClientError(f"the homeserver refused an event for {self.room_id}: {answer}")

    async def events(self) -> AsyncIterator[list[BusEvent]]:
        """Batches of the peer's bus events, forever. The position is saved when the
        consumer asks for the next batch (so a batch is re-read if it crashed on it)."""
        if self._next_batch is None:
            answer = await self._sync(0)
            self._save(answer.next_batch)
        self.synced.set()
        while True:
            answer = await self._sync(self.sync_timeout_ms)
            batch = self._bus_events(answer)
            if batch:
                yield batch
            self._save_soon(answer.next_batch)

    async def _sync(self, timeout_ms: int) -> SyncResponse:
        backoff = 0.2
        while True:
            try:
                answer = await self._client.sync(
                    timeout=timeout_ms, since=self._next_batch, sync_filter=self._filter
                )
            except Exception as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                answer = exc
            if isinstance(answer, SyncResponse):
                return answer
            wait = backoff
            if getattr(answer, "status_code", None) == "M_LIMIT_EXCEEDED":
                wait = (getattr(answer, "retry_after_ms", None) or 500) / 1000
            log.warning("sync failed (%s): retrying in %.1f s", answer, wait)
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _bus_events(self, answer: SyncResponse) -> list[BusEvent]:
        events: list[BusEvent] = []
        for room_id, room in answer.rooms.join.items():
            if room_id != self.room_id:
                continue
            if room.timeline.limited:
                log.warning("sync timeline of %s was limited: older events may be missed", room_id)
            for event in bus_events(room_id, room.timeline.events, self.event_type):
                if event.sender != self.peer_user_id:
                    if event.sender != self.user_id:
                        self.ignored += 1
                        log.warning(
                            "ignored a %s event from %s: only %s is listened to",
                            self.event_type,
                            event.sender,
                            self.peer_user_id,
                        )
                    continue
                self.received += 1
                events.append(event)
        return events

    def _load_token(self) -> str | None:
        if self._token_file is None or not self._token_file.is_file():
            return None
        token = self._token_file.read_text(encoding="utf-8").strip()
        return token or None

    def _save(self, token: str) -> None:
        self._next_batch = token
        self._write_token(token)

    def _write_token(self, token: str) -> None:
        if self._token_file is None:
            return
        tmp = self._token_file.with_suffix(".tmp")
        tmp.write_text(token, encoding="utf-8")
        os.replace(tmp, self._token_file)

    def _save_soon(self, token: str) -> None:
        """Take ``token`` as the position now; write it to the file in a thread, after any
        earlier write. Measured: the write (and rename) took ~1 ms on the event loop, just
        when the bridge's MQTT reply or the UI server's next request was waiting."""
        self._next_batch = token
        if self._token_file is None:
            return
        previous = self._saving

        async def write() -> None:
            if previous is not None:
                await previous
            try:
                await asyncio.to_thread(self._write_token, token)
            except OSError as exc:
                log.warning("cannot save the sync position to %s: %s", self._token_file, exc)

        self._saving = asyncio.ensure_future(write())

    async def close(self) -> None:
        if self._saving is not None:
            await self._saving  # the newest position is on disk before we go
        await self._client.close()
