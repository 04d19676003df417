"""The management-bus client over matrix-nio (the only module that imports nio).

:class:`MatrixBusClient` is one user of the DM room (spec section 5): it sends
``dy.bus.v0`` events and receives those of its configured peer in its
configured room, ignoring everything else. Rate limiting (HTTP 429
``M_LIMIT_EXCEEDED``) is handled here: a send waits ``retry_after_ms`` and
retries, it is never dropped. Event content must be canonical JSON: floats are
refused before they reach the homeserver (which would answer ``M_BAD_JSON``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient, AsyncClientConfig, RoomSendResponse, SyncResponse, WhoamiResponse

from dongyu.errors import DongyuError

log = logging.getLogger("dongyu.adapters.matrix.client")

BUS_EVENT_TYPE = "dy.bus.v0"
_MAX_CANONICAL_INT = 2**53 - 1


class MatrixClientError(DongyuError):
    """A Matrix call failed (network, authentication, a refused event)."""

    code = "matrix_error"


@dataclass(frozen=True)
class BusEvent:
    """One ``dy.bus.v0`` event received from the peer."""

    room_id: str
    event_id: str
    sender: str
    content: dict[str, Any]
    origin_server_ts: int


def check_content(value: Any, path: str = "content") -> None:
    """Raise :class:`MatrixClientError` unless ``value`` is canonical JSON (no floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_CANONICAL_INT:
            raise MatrixClientError(f"{path}: integer {value} is outside Matrix's range")
        return
    if isinstance(value, float):
        hint = "" if math.isfinite(value) else " (not even finite)"
        raise MatrixClientError(
            f"{path}: floats are refused by Matrix ({value!r}{hint}); send integers or strings"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MatrixClientError(f"{path}: key {key!r} is not a string")
            check_content(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_content(item, f"{path}[{index}]")
        return
    raise MatrixClientError(f"{path}: {type(value).__name__} is not JSON")


def bus_events(
    room_id: str, timeline: Iterable[Any], event_type: str = BUS_EVENT_TYPE
) -> list[BusEvent]:
    """The events of ``event_type`` in a room's sync timeline, in order, from any sender
    (the caller decides whom it listens to)."""
    found: list[BusEvent] = []
    for event in timeline:
        source: dict[str, Any] = getattr(event, "source", {}) or {}
        if source.get("type") != event_type:
            continue
        content = source.get("content")
        found.append(
            BusEvent(
                room_id=room_id,
                event_id=str(source.get("event_id", "")),
                sender=str(source.get("sender", "")),
                content=content if isinstance(content, dict) else {},
                origin_server_ts=int(source.get("origin_server_ts", 0)),
            )
        )
    return found


class MatrixBusClient:
    """One side of the DM room: send ``dy.bus.v0`` events, receive the peer's."""

    def __init__(
        self,
        homeserver_url: str,
        *,
        user_id: str,
        access_token: str,
        device_id: str | None,
        room_id: str,
        peer_user_id: str,
        tls_verify: bool = True,
        sync_timeout_ms: int = 30_000,
    ) -> None:
        self.room_id = room_id
        self.peer_user_id = peer_user_id
        self.sync_timeout_ms = sync_timeout_ms
        config = AsyncClientConfig(
            max_limit_exceeded=0,  # 429s come back to us: we wait and retry, see send()
            max_timeouts=0,
            request_timeout=sync_timeout_ms / 1000 + 15,  # above the long-poll
        )
        self._client = AsyncClient(
            homeserver_url, user_id, device_id=device_id or "", config=config, ssl=tls_verify
        )
        self._client.restore_login(user_id, device_id or "", access_token)
        self._started = False

    @property
    def user_id(self) -> str:
        return str(self._client.user_id)

    async def whoami(self) -> str:
        answer = await self._client.whoami()
        if not isinstance(answer, WhoamiResponse):
            raise MatrixClientError(f"whoami failed for {self.user_id}: {answer}")
        return str(answer.user_id)

    async def start(self) -> None:
        """An initial sync: what was sent before this point is history, not received."""
        answer = await self._client.sync(timeout=0, full_state=False)
        if not isinstance(answer, SyncResponse):
            raise MatrixClientError(f"initial sync failed for {self.user_id}: {answer}")
        self._started = True

    async def send(self, content: Mapping[str, Any], *, txn_id: str | None = None) -> str:
        """Send one ``dy.bus.v0`` event to the room; its event id. Retries on 429."""
        check_content(content)
        txn = txn_id or uuid.uuid4().hex
        while True:
            answer = await self._client.room_send(
                self.room_id, BUS_EVENT_TYPE, dict(content), tx_id=txn
            )
            if isinstance(answer, RoomSendResponse):
                return str(answer.event_id)
            if getattr(answer, "status_code", None) == "M_LIMIT_EXCEEDED":
                wait_ms = getattr(answer, "retry_after_ms", None) or 500
                log.info("send rate limited: retrying in %d ms", wait_ms)
                await asyncio.sleep(wait_ms / 1000)
                continue  # the same transaction id: the homeserver de-duplicates
            raise MatrixClientError(f"send to {self.room_id} failed: {answer}")

    async def receive(self, timeout_ms: int | None = None) -> list[BusEvent]:
        """One long-poll sync; the peer's ``dy.bus.v0`` events in the room, in order."""
        if not self._started:
            await self.start()
        answer = await self._client.sync(
            timeout=self.sync_timeout_ms if timeout_ms is None else timeout_ms
        )
        if not isinstance(answer, SyncResponse):
            if getattr(answer, "status_code", None) == "M_LIMIT_EXCEEDED":
                await asyncio.sleep((getattr(answer, "retry_after_ms", None) or 500) / 1000)
                return []
            raise MatrixClientError(f"sync failed for {self.user_id}: {answer}")
        room = answer.rooms.join.get(self.room_id)
        if room is None:
            return []
        events: list[BusEvent] = []
        for event in bus_events(self.room_id, room.timeline.events):
            if event.sender != self.peer_user_id:
                log.debug("ignoring a %s event from %s", BUS_EVENT_TYPE, event.sender)
                continue
            events.append(event)
        return events

    async def close(self) -> None:
        await self._client.close()
