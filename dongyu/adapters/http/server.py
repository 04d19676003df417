"""Running an aiohttp application on 127.0.0.1 (or a given host) with explicit start/stop."""

from __future__ import annotations

import errno
import logging
from types import TracebackType

from aiohttp import web

from dongyu.errors import DongyuError

log = logging.getLogger("dongyu.adapters.http.server")


class HttpServerError(DongyuError):
    code = "http_error"


class HttpServer:
    """``async with HttpServer(app, host, port):`` serves ``app`` until the block ends."""

    def __init__(self, app: web.Application, host: str, port: int, *, name: str) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, shutdown_timeout=2.0)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise HttpServerError(
                    f"{self.name}: port {self.port} on {self.host} is already in use "
                    "(stop what uses it, or choose another port)"
                ) from exc
            raise HttpServerError(
                f"{self.name}: cannot listen on {self.host}:{self.port}: {exc}"
            ) from exc
        self._runner = runner
        log.info("%s listening on %s", self.name, self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
