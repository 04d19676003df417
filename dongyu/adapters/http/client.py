"""A small asyncio HTTP client (aiohttp) for tools that drive the UI server: JSON calls and
server-sent events. Used by the benchmark (``dongyu bench``)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

log = logging.getLogger("dongyu.adapters.http.client")


class HttpClient:
    """``async with HttpClient(connections=64) as http: await http.post_json(url, body)``."""

    def __init__(self, *, connections: int = 64, timeout_s: float = 60.0) -> None:
        self._connections = connections
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=self._timeout_s),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside 'async with'")
        return self._session

    async def post_json(self, url: str, body: Any) -> tuple[int, Any]:
        async with self.session.post(url, json=body) as answer:
            return answer.status, await _body(answer)

    async def get_json(self, url: str) -> tuple[int, Any]:
        async with self.session.get(url) as answer:
            return answer.status, await _body(answer)

    async def sse(self, url: str) -> AsyncIterator[tuple[str, str]]:
        """``(event name, data)`` of a server-sent events stream, until it ends; a comment
        line (``: text``) comes as ``(":", text)``."""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.session.get(url, timeout=timeout) as answer:
            name, data = "message", list[str]()
            async for raw in answer.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield name, "\n".join(data)
                    name, data = "message", list[str]()
                elif line.startswith(":"):
                    yield ":", line[1:].strip()
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())


async def _body(answer: aiohttp.ClientResponse) -> Any:
    text = await answer.text()
    try:
        return json.loads(text)
    except ValueError:
        return text
