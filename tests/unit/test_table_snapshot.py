"""The ModelTable, its event log and its deterministic snapshot (spec 2)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dongyu.core.events import EventLog
from dongyu.core.labels import Label, check_label
from dongyu.core.snapshot import (
    from_snapshot,
    snapshot_bytes,
    snapshot_to_patch,
    to_snapshot,
)
from dongyu.core.table import ModelTable
from dongyu.errors import InvalidSnapshot
from dongyu.patch.engine import PatchEngine
from tests.unit.strategies import PROPERTY, build_table, record_lists, tables


def test_new_table_holds_only_the_root_model() -> None:
    table = ModelTable()
    assert list(table.models) == [0]
    assert (table.models[0].name, table.models[0].type) == ("MT", "main")
    assert snapshot_bytes(table) == (
        b'{"models":{"0":{"cells":{},"id":0,"name":"MT","type":"main"}}}'
    )


def test_missing_cell_reads_empty() -> None:
    table = ModelTable()
    assert dict(table.cell(0, (9, 9, 9))) == {}
    assert dict(table.cell(12345, (0, 0, 0))) == {}
    assert table.get_label(12345, (0, 0, 0), "k") is None


def test_table_cell_view_is_read_only() -> None:
    table = ModelTable()
    table.put_label(0, (0, 0, 0), Label("a", "str", "x"))
    view = table.cell(0, (0, 0, 0))
    with pytest.raises(TypeError):
        view["b"] = Label("b", "str", "y")  # type: ignore[index]


def test_snapshot_is_a_copy() -> None:
    table = ModelTable()
    table.put_label(0, (0, 0, 0), Label("a", "json", {"x": [1]}))
    snap = to_snapshot(table)
    snap["models"]["0"]["cells"]["0,0,0"]["labels"]["a"]["v"]["x"].append(2)
    assert table.get_label(0, (0, 0, 0), "a") == Label("a", "json", {"x": [1]})


def test_empty_cells_are_dropped() -> None:
    table = ModelTable()
    table.put_label(0, (1, 2, 3), Label("a", "str", "x"))
    table.delete_label(0, (1, 2, 3), "a")
    assert (1, 2, 3) not in table.models[0].cells
    assert snapshot_bytes(table) == snapshot_bytes(ModelTable())


def test_event_log_is_bounded_but_ids_keep_increasing() -> None:
    log = EventLog(capacity=3)
    for _ in range(5):
        log.append("error", reason="x")
    assert len(log) == 3
    assert [e.event_id for e in log] == [3, 4, 5]
    assert log.last_id == 5
    assert [e.event_id for e in log.since(4)] == [5]
    with pytest.raises(ValueError):
        EventLog(capacity=0)


def test_event_log_listeners_and_unsubscribe() -> None:
    log = EventLog()
    seen: list[int] = []
    unsubscribe = log.subscribe(lambda e: seen.append(e.event_id))
    log.append("error")
    unsubscribe()
    log.append("error")
    assert seen == [1]


def test_event_log_extend_must_continue_ids() -> None:
    log = EventLog()
    log.append("error")
    other = EventLog()
    stale = other.append("error")  # id 1, but the log is at 2
    with pytest.raises(ValueError):
        log.extend([stale])


def test_event_to_dict() -> None:
    table = ModelTable()
    event = table.put_label(0, (1, -2, 3), Label("a", "int", 5), trace_id="t", ts=7)
    assert event.to_dict() == {
        "event_id": 1,
        "ts": 7,
        "op": "add_label",
        "model_id": 0,
        "cell": {"p": 1, "r": -2, "c": 3},
        "label": {"k": "a", "t": "int", "v": 5},
        "prev": None,
        "result": "applied",
        "reason": None,
        "trace_id": "t",
    }


@pytest.mark.parametrize(
    ("snapshot", "fragment"),
    [
        ([], "must be an object"),
        ({}, "'models' must be an object"),
        ({"models": {"x": {}}}, "not an integer"),
        ({"models": {"01": {}}}, "canonical integer"),
        ({"models": {"1": {"id": 2, "name": "a", "type": "b", "cells": {}}}}, "'id'"),
        ({"models": {"1": {"id": 1, "name": "", "type": "b", "cells": {}}}}, "'name'"),
        ({"models": {"1": {"id": 1, "name": "a", "type": "b", "cells": []}}}, "'cells'"),
        (
            {"models": {"1": {"id": 1, "name": "a", "type": "b", "cells": {"0,0": {}}}}},
            "'p,r,c'",
        ),
        (
            {
                "models": {
                    "1": {
                        "id": 1,
                        "name": "a",
                        "type": "b",
                        "cells": {"0,0,0": {"p": 0, "r": 0, "c": 1, "labels": {}}},
                    }
                }
            },
            "'c' must be 0",
        ),
        (
            {
                "models": {
                    "1": {
                        "id": 1,
                        "name": "a",
                        "type": "b",
                        "cells": {
                            "0,0,0": {
                                "p": 0,
                                "r": 0,
                                "c": 0,
                                "labels": {"a": {"k": "a", "t": "float", "v": float("nan")}},
                            }
                        },
                    }
                }
            },
            "non-finite",
        ),
    ],
)
def test_from_snapshot_refuses_bad_documents(snapshot: object, fragment: str) -> None:
    with pytest.raises(InvalidSnapshot) as err:
        from_snapshot(snapshot)
    assert fragment in str(err.value)


# ---- properties ----------------------------------------------------------


@PROPERTY
@given(tables)
def test_snapshot_as_patch_rebuilds_the_same_table(table: ModelTable) -> None:
    expected = snapshot_bytes(table)
    patch = snapshot_to_patch(to_snapshot(table), "rebuild")
    rebuilt = ModelTable()
    result = PatchEngine(rebuilt).apply(patch, trusted=True, allow_create_model=True)
    assert result.ok, result.to_dict()
    assert snapshot_bytes(rebuilt) == expected


@PROPERTY
@given(tables)
def test_from_snapshot_round_trips_exactly(table: ModelTable) -> None:
    expected = snapshot_bytes(table)
    assert snapshot_bytes(from_snapshot(to_snapshot(table))) == expected
    # and through the bytes themselves (what a store or the wire keeps)
    assert snapshot_bytes(from_snapshot(json.loads(expected))) == expected


@PROPERTY
@given(record_lists, st.randoms(use_true_random=False))
def test_snapshot_bytes_are_deterministic(
    records: list[dict[str, Any]], rnd: random.Random
) -> None:
    table = build_table(records)
    assert snapshot_bytes(table) == snapshot_bytes(table)
    assert snapshot_bytes(build_table(records, op_id="again")) == snapshot_bytes(table)
    # Same content, other insertion order: keep each label's last write only (so
    # last-write-wins is not affected), create models first, shuffle the rest.
    creates = [r for r in records if r["op"] == "create_model"]
    last: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in records:
        if rec["op"] == "add_label":
            ref = (rec["model_id"], rec["p"], rec["r"], rec["c"], rec["k"])
            last.pop(ref, None)
            last[ref] = rec
    labels = list(last.values())
    rnd.shuffle(labels)
    # create_model of an existing id is a no-op, so only each id's first create counts
    first_creates: dict[Any, dict[str, Any]] = {}
    for rec in creates:
        first_creates.setdefault(rec.get("model_id", rec.get("id")), rec)
    # ids first created implicitly by a label record keep their default identity
    created_first_by_label: set[Any] = set()
    seen: set[Any] = set()
    for rec in records:
        mid = rec.get("model_id", rec.get("id"))
        if mid not in seen:
            seen.add(mid)
            if rec["op"] == "add_label":
                created_first_by_label.add(mid)
    ordered_creates = [r for mid, r in first_creates.items() if mid not in created_first_by_label]
    rnd.shuffle(ordered_creates)
    shuffled = build_table(ordered_creates + labels, op_id="shuffled")
    assert snapshot_bytes(shuffled) == snapshot_bytes(table)


def test_snapshot_bytes_are_canonical_text() -> None:
    table = ModelTable()
    table.put_label(0, (0, 0, 0), check_label("ü", "json", {"b": -0.0, "a": [1.5, "é", 10**30]}))
    raw = snapshot_bytes(table)
    raw.decode("ascii")  # ASCII only
    assert b" " not in raw
    assert b'"v":{"a":[1.5,"\\u00e9",1000000000000000000000000000000],"b":-0.0}' in raw
