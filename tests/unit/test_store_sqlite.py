"""The SQLite store: load / flush / checkpoint round-trip any table exactly (spec 2)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given

from dongyu.core.labels import Label
from dongyu.core.snapshot import dumps_canonical, from_snapshot, snapshot_bytes, to_snapshot
from dongyu.core.table import ModelTable
from dongyu.errors import StoreError
from dongyu.store import SqliteStore
from tests.unit.strategies import FEW, PROPERTY, tables


def _bytes_of(snapshot: object) -> bytes:
    return snapshot_bytes(from_snapshot(snapshot))


@PROPERTY
@given(tables)
def test_flush_then_load_round_trips(table: ModelTable) -> None:
    expected = snapshot_bytes(table)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        with SqliteStore(path) as store:
            assert store.load() is None
            store.flush(to_snapshot(table))
            loaded = store.load()
            assert loaded is not None
            assert dumps_canonical(loaded) == dumps_canonical(to_snapshot(table))
            assert _bytes_of(loaded) == expected
        with SqliteStore(path) as reopened:
            again = reopened.load()
            assert again is not None
            assert _bytes_of(again) == expected


@FEW
@given(tables, tables)
def test_checkpoint_survives_later_flushes_and_reopen(
    first: ModelTable, second: ModelTable
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        with SqliteStore(path, keep_flushes=1) as store:
            store.flush(to_snapshot(first))
            cid = store.checkpoint("before second")
            for _ in range(3):
                store.flush(to_snapshot(second))
            checkpointed = store.load(cid)
            current = store.load()
            assert checkpointed is not None and current is not None
            assert _bytes_of(checkpointed) == snapshot_bytes(first)
            assert _bytes_of(current) == snapshot_bytes(second)
            assert [(i, reason) for i, _, reason in store.checkpoints()] == [(cid, "before second")]
        with SqliteStore(path) as reopened:
            checkpointed = reopened.load(cid)
            current = reopened.load()
            assert checkpointed is not None and current is not None
            assert _bytes_of(checkpointed) == snapshot_bytes(first)
            assert _bytes_of(current) == snapshot_bytes(second)


def test_flush_ids_increase_and_old_states_are_pruned(tmp_path: Path) -> None:
    table = ModelTable()
    with SqliteStore(tmp_path / "t.db", keep_flushes=2) as store:
        ids = []
        for i in range(5):
            table.put_label(0, (0, 0, 0), Label("n", "int", i))
            ids.append(store.flush(to_snapshot(table)))
        assert ids == sorted(ids) and len(set(ids)) == 5
        count = store._db.execute("SELECT COUNT(*) FROM state").fetchone()[0]
        assert count == 2
        loaded = store.load()
        assert loaded is not None
        assert loaded["models"]["0"]["cells"]["0,0,0"]["labels"]["n"]["v"] == 4


def test_prune_keeps_newest_checkpoints(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store:
        store.flush(to_snapshot(ModelTable()))
        ids = [store.checkpoint(f"c{i}") for i in range(4)]
        assert store.prune(1) == 3
        assert [c[0] for c in store.checkpoints()] == ids[-1:]
        with pytest.raises(StoreError):
            store.load(ids[0])


def test_checkpoint_before_any_flush_is_refused(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store, pytest.raises(StoreError) as err:
        store.checkpoint("nothing yet")
    assert "flush" in str(err.value)


def test_load_of_unknown_checkpoint(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store, pytest.raises(StoreError) as err:
        store.load(42)
    assert err.value.code == "store_error"
    assert "42" in str(err.value)


def test_invalid_snapshot_is_not_flushed(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store:
        with pytest.raises(StoreError) as err:
            store.flush({"models": {"x": {}}})
        assert "invalid snapshot" in str(err.value)
        assert store.load() is None


def test_keep_flushes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SqliteStore(tmp_path / "t.db", keep_flushes=0)


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "missing-dir" / "t.db")
