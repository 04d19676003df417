"""SQLite implementation of the persistence contract.

One file, two tables: ``state`` holds each flushed snapshot (the newest row
is the current state) and ``checkpoints`` the snapshots kept on purpose, with
their reason. Snapshots are stored as canonical JSON text, so a load gives
back exactly what was flushed. Only the newest ``keep_flushes`` flushed
states are kept; checkpoints are kept until :meth:`SqliteStore.prune`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from types import TracebackType

from dongyu.core.persistence import Snapshot
from dongyu.core.snapshot import dumps_canonical, from_snapshot
from dongyu.errors import InvalidSnapshot, StoreError

log = logging.getLogger("dongyu.store.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    snapshot TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    state_id INTEGER NOT NULL,
    snapshot TEXT NOT NULL
);
"""


class SqliteStore:
    """A :class:`~dongyu.core.persistence.Store` in one SQLite file (WAL mode)."""

    def __init__(self, path: str | Path, *, keep_flushes: int = 10) -> None:
        if keep_flushes < 1:
            raise ValueError("keep_flushes must be at least 1")
        self.path = Path(path)
        self.keep_flushes = keep_flushes
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

    def load(self, checkpoint_id: int | None = None) -> Snapshot | None:
        if checkpoint_id is None:
            row = self._db.execute("SELECT snapshot FROM state ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return None
        else:
            row = self._db.execute(
                "SELECT snapshot FROM checkpoints WHERE id = ?", (checkpoint_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no checkpoint {checkpoint_id} in {self.path}")
        snapshot: Snapshot = json.loads(row[0])
        return snapshot

    def flush(self, snapshot: Snapshot) -> int:
        try:
            from_snapshot(snapshot)  # refuse to persist something that cannot be loaded back
        except InvalidSnapshot as exc:
            raise StoreError(f"refusing to flush an invalid snapshot: {exc}") from exc
        text = dumps_canonical(snapshot)
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO state (created_ms, snapshot) VALUES (?, ?)", (_now_ms(), text)
            )
            state_id = cur.lastrowid
            assert state_id is not None
            self._db.execute("DELETE FROM state WHERE id <= ?", (state_id - self.keep_flushes,))
        log.debug("flushed state %d (%d bytes) to %s", state_id, len(text), self.path)
        return state_id

    def checkpoint(self, reason: str) -> int:
        with self._transaction():
            row = self._db.execute(
                "SELECT id, snapshot FROM state ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise StoreError("nothing flushed yet: flush a snapshot before a checkpoint")
            cur = self._db.execute(
                "INSERT INTO checkpoints (created_ms, reason, state_id, snapshot) VALUES (?, ?, ?, ?)",
                (_now_ms(), reason, row[0], row[1]),
            )
        checkpoint_id = cur.lastrowid
        assert checkpoint_id is not None
        log.info("checkpoint %d (%s) of state %d in %s", checkpoint_id, reason, row[0], self.path)
        return checkpoint_id

    def checkpoints(self) -> list[tuple[int, int, str]]:
        """``(id, created_ms, reason)`` of every kept checkpoint, oldest first."""
        rows = self._db.execute(
            "SELECT id, created_ms, reason FROM checkpoints ORDER BY id"
        ).fetchall()
        return [(int(a), int(b), str(c)) for a, b, c in rows]

    def prune(self, keep: int) -> int:
        """Drop all but the newest ``keep`` checkpoints; returns how many were dropped."""
        with self._transaction():
            cur = self._db.execute(
                "DELETE FROM checkpoints WHERE id NOT IN "
                "(SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)",
                (keep,),
            )
        return cur.rowcount

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
