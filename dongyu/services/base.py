"""What every service shares: its named tasks, start/stop, ``wait()``, ``async with``."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from dongyu.services.tasks import TaskGroup


class Service:
    """A service owns named background tasks (:attr:`_tasks`) and a stop flag.

    Subclasses implement :meth:`start` and :meth:`stop` (which must set
    :attr:`_stopping` and cancel the tasks); ``async with`` runs them.
    """

    def __init__(self, name: str) -> None:
        self._tasks = TaskGroup(name)
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def wait(self) -> None:
        """Until :meth:`stop` is called or a background task fails."""
        stop = asyncio.ensure_future(self._stopping.wait())
        failed = asyncio.ensure_future(self._tasks.failed.wait())
        try:
            await asyncio.wait({stop, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            failed.cancel()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
