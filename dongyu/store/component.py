"""A component's durable state in one SQLite file: its table, its op_id window, its outbox.

What survives a ``kill -9`` of the worker (or another component) and how:

- ``snapshot``: the component's ModelTable after the last handled message;
- ``seen``: the op_ids handled, oldest first, trimmed to the window's capacity;
- ``outbox``: messages produced by a handled message and not yet acknowledged
  by their bus; they are sent again at the next start.

:meth:`ComponentStore.commit` writes all three in one transaction, *before*
the component acknowledges the input message: after a crash, either the
message was committed (its op_id is in ``seen``: a redelivery is a duplicate,
and its replies are in the outbox) or it was not (the bus delivers it again).
WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
process dying (not a power cut), which is the fault this testbed models.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from dongyu.core.snapshot import dumps_canonical
from dongyu.errors import StoreError

log = logging.getLogger("dongyu.store.component")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (n INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Pending:
    id: int
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Loaded:
    snapshot: dict[str, Any] | None
    seen: list[str]
    pending: list[Pending]
    values: dict[str, str]


class ComponentStore:
    def __init__(self, path: str | Path, *, seen_capacity: int = 10_000) -> None:
        self.path = Path(path)
        self.seen_capacity = seen_capacity
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the state file {self.path}: {exc}") from exc

    def load(self) -> Loaded:
        try:
            values = dict(self._db.execute("SELECT key, value FROM kv").fetchall())
            seen = [row[0] for row in self._db.execute("SELECT op_id FROM seen ORDER BY n")]
            pending = [
                Pending(int(i), str(t), bytes(p))
                for i, t, p in self._db.execute("SELECT id, topic, payload FROM outbox ORDER BY id")
            ]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the state file {self.path}: {exc}") from exc
        snapshot_text = values.pop("snapshot", None)
        snapshot = json.loads(snapshot_text) if snapshot_text is not None else None
        return Loaded(snapshot, seen, pending, values)

    def commit(
        self,
        *,
        snapshot: dict[str, Any] | None = None,
        seen: Sequence[str] = (),
        outbox: Sequence[tuple[str, bytes]] = (),
        values: dict[str, str] | None = None,
    ) -> list[int]:
        """Write everything given in one transaction; the new outbox rows' ids."""
        ids: list[int] = []
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            if snapshot is not None:
                db.execute(
                    "INSERT OR REPLACE INTO kv (key, value) VALUES ('snapshot', ?)",
                    (dumps_canonical(snapshot),),
                )
            for key, value in (values or {}).items():
                db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))
            for op_id in seen:
                db.execute("INSERT OR IGNORE INTO seen (op_id) VALUES (?)", (op_id,))
            if seen:
                db.execute(
                    "DELETE FROM seen WHERE n <= (SELECT MAX(n) FROM seen) - ?",
                    (self.seen_capacity,),
                )
            for topic, payload in outbox:
                cur = db.execute(
                    "INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload)
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"cannot write the state file {self.path}: {exc}") from exc
        return ids

    def sent(self, ids: Sequence[int]) -> None:
        """The bus acknowledged these outbox messages: forget them."""
        if ids:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ComponentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
