"""Property tests of the patch engine: dedup, cell_clear, the event log, fast vs slow path."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dongyu.core.events import Event
from dongyu.core.labels import Label
from dongyu.core.snapshot import from_snapshot, snapshot_bytes
from dongyu.core.table import ModelTable
from dongyu.patch.engine import PatchEngine
from tests.unit.strategies import (
    PROPERTY,
    add_label_records,
    build_table,
    ints,
    json_values,
    keys,
    record_lists,
    valid_records,
)


def _patch(records: list[Any], op_id: str = "p1") -> dict[str, Any]:
    return {"version": "mt.v0", "op_id": op_id, "records": records}


# ---- op_id de-duplication --------------------------------------------------


@PROPERTY
@given(record_lists, record_lists, st.booleans())
def test_same_op_id_twice_changes_nothing(
    before: list[dict[str, Any]], records: list[dict[str, Any]], trusted: bool
) -> None:
    table = build_table(before)
    engine = PatchEngine(table, allow_create_model=True)
    first = engine.apply(_patch(records, "dup"), trusted=trusted)
    assert not first.duplicate
    snap, last_id = snapshot_bytes(table), table.log.last_id
    second = engine.apply(_patch(records, "dup"), trusted=trusted)
    assert second.duplicate
    assert (second.applied, second.rejected, second.reason) == (0, 0, "duplicate_op_id")
    assert second.events == ()
    assert snapshot_bytes(table) == snap
    assert table.log.last_id == last_id


# ---- cell_clear protection --------------------------------------------------

_protected_keys = st.sampled_from(
    [
        "ui_event",
        "ui_event_error",
        "ui_event_last_op_id",
        "pin_in",
        "pin_out",
        "v1n_id",
        "data_type",
        "run_",
        "run_go",
        "mqtt_topic_base",
        "mqtt_",
        "matrix_room_id",
        "CONNECT_",
        "CONNECT_x",
        "_CONNECT",
        "a_CONNECT",
    ]
)
_clear_keys = st.one_of(
    _protected_keys,
    st.sampled_from(["Run_x", "xrun_", "mqtt", "pin_inx", "a_CONNECTb", "connect_a", "ui_events"]),
    keys,
)
_clear_types = st.sampled_from(
    ["str", "int", "bool", "json", "float", "event", "PIN_IN", "IN", "OUT", "custom"]
)


def _spec_clearable(k: str, t: str) -> bool:
    """Spec 3, written out independently of the implementation."""
    if t not in ("str", "int", "bool", "json"):
        return False
    if k in ("ui_event", "ui_event_error", "ui_event_last_op_id"):
        return False
    if k in ("pin_in", "pin_out", "v1n_id", "data_type"):
        return False
    for prefix in ("run_", "mqtt_", "matrix_", "CONNECT_"):
        if k.startswith(prefix):
            return False
    return not k.endswith("_CONNECT")


@PROPERTY
@given(
    st.lists(st.tuples(_clear_keys, _clear_types, json_values), max_size=20),
    st.sampled_from([0, -10, 7]),
)
def test_cell_clear_removes_exactly_the_clearable_labels(
    labels: list[tuple[str, str, Any]], model_id: int
) -> None:
    records = [
        {"op": "add_label", "model_id": model_id, "p": 1, "r": 2, "c": 3, "k": k, "t": t, "v": v}
        for k, t, v in labels
    ]
    # a neighbour cell that must not be touched
    records.append(
        {
            "op": "add_label",
            "model_id": model_id,
            "p": 1,
            "r": 2,
            "c": 4,
            "k": "n",
            "t": "str",
            "v": "",
        }
    )
    table = build_table(records)
    before = dict(table.cell(model_id, (1, 2, 3)))
    neighbour = dict(table.cell(model_id, (1, 2, 4)))
    result = PatchEngine(table).apply(
        _patch([{"op": "cell_clear", "model_id": model_id, "p": 1, "r": 2, "c": 3}])
    )
    assert result.ok and result.applied == 1
    after = dict(table.cell(model_id, (1, 2, 3)))
    assert after == {k: lab for k, lab in before.items() if not _spec_clearable(k, lab.t)}
    assert dict(table.cell(model_id, (1, 2, 4))) == neighbour
    removed = {e.prev.k for e in result.events if e.prev is not None}
    assert removed == {k for k, lab in before.items() if _spec_clearable(k, lab.t)}
    assert all(e.op == "rm_label" for e in result.events)


# ---- the event log replays the table ---------------------------------------

_ops = st.one_of(
    valid_records,
    st.builds(
        lambda m, p, k: {"op": "rm_label", "model_id": m, "p": p, "r": 0, "c": 0, "k": k},
        st.sampled_from([0, 1, -10]),
        st.integers(-1, 1),
        keys,
    ),
    st.builds(
        lambda m, p: {"op": "cell_clear", "model_id": m, "p": p, "r": 0, "c": 0},
        st.sampled_from([0, 1, -10]),
        st.integers(-1, 1),
    ),
    add_label_records(model_id=st.sampled_from([0, 1, -10])).map(
        lambda r: {**r, "p": r["p"] % 3 - 1, "r": 0, "c": 0}
    ),
)


@PROPERTY
@given(st.lists(st.lists(_ops, max_size=12), max_size=4))
def test_event_log_is_a_faithful_replay(patches: list[list[dict[str, Any]]]) -> None:
    table = ModelTable()
    engine = PatchEngine(table, allow_create_model=True)
    seen: list[Event] = []
    table.log.subscribe(seen.append)
    for i, records in enumerate(patches):
        engine.apply(_patch(records, f"op{i}"), trusted=True)
    ids = [e.event_id for e in seen]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert ids == [e.event_id for e in table.log]
    shadow: dict[tuple[int, tuple[int, int, int], str], Label] = {}
    models = {0}
    for e in seen:
        if e.result != "applied":
            assert e.reason
            continue
        if e.op == "create_model":
            models.add(e.model_id)  # type: ignore[arg-type]
            continue
        assert e.model_id in models
        assert e.cell is not None
        ref_k = e.label.k if e.label is not None else e.prev.k if e.prev is not None else None
        if ref_k is None:
            continue  # a removal of nothing (a mailbox clear of an empty pin)
        ref = (e.model_id, e.cell, ref_k)
        assert shadow.get(ref) == e.prev, e  # type: ignore[arg-type]
        if e.op == "add_label":
            assert e.label is not None
            shadow[ref] = e.label  # type: ignore[index]
        else:
            assert e.op == "rm_label"
            shadow.pop(ref, None)  # type: ignore[arg-type]
    actual = {(m, key, lab.k): lab for m, key, lab in table.iter_labels()}
    assert actual == shadow
    assert set(table.models) == models


@PROPERTY
@given(st.lists(_ops, max_size=15), st.booleans(), st.booleans())
def test_result_events_are_the_applied_events_of_the_log(
    records: list[dict[str, Any]], trusted: bool, create: bool
) -> None:
    table = build_table([{"op": "create_model", "model_id": 1, "name": "one", "type": "data"}])
    last = table.log.last_id
    result = PatchEngine(table).apply(_patch(records), trusted=trusted, allow_create_model=create)
    logged = table.log.since(last)
    assert list(result.events) == [e for e in logged if e.result == "applied"]
    assert len([e for e in logged if e.result == "rejected"]) == result.rejected


# ---- fast path vs slow path -------------------------------------------------


class _SlowRecord(dict):  # type: ignore[type-arg]
    """A record the fast path does not take (it only takes exact dicts)."""


_scalar_or_bad = st.one_of(
    st.text(max_size=4),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(),  # incl. nan and infinities
    json_values,
    st.sampled_from([(1,), {1: 2}, [float("nan")], {"a": {"b": float("inf")}}, {"z": 1, "a": [2]}]),
)
_fast_candidates = st.builds(
    lambda m, p, r, c, k, t, v, drop: {
        key: val
        for key, val in {
            "op": "add_label",
            "model_id": m,
            "p": p,
            "r": r,
            "c": c,
            "k": k,
            "t": t,
            "v": v,
        }.items()
        if key != drop
    },
    st.one_of(st.sampled_from([0, 1, 5, True]), st.just("0")),
    st.one_of(st.integers(-2, 2), st.just(1.0), st.just(False)),
    st.integers(-1, 1),
    st.integers(-1, 1),
    st.one_of(st.sampled_from(["a", "b", "f"]), st.just(""), st.just(3)),
    st.sampled_from(["str", "int", "bool", "IN", "event", "function", "func.js", "", "x"]),
    _scalar_or_bad,
    st.sampled_from([None, None, None, "v", "model_id", "k"]),
)


@PROPERTY
@given(st.lists(st.one_of(_fast_candidates, valid_records), max_size=20), st.booleans())
def test_fast_and_slow_paths_make_the_same_changes(
    records: list[dict[str, Any]], trusted: bool
) -> None:
    base = [
        {"op": "create_model", "model_id": 1, "name": "one", "type": "data"},
        {
            "op": "add_label",
            "model_id": 1,
            "p": 0,
            "r": 0,
            "c": 0,
            "k": "f",
            "t": "function",
            "v": "return 1",
        },
    ]

    def run(wrap: bool) -> tuple[Any, ...]:
        table = build_table(base)
        engine = PatchEngine(table, allow_create_model=True, clock=lambda: 1234)
        recs = [_SlowRecord(r) if wrap else dict(r) for r in records]
        result = engine.apply(_patch(recs), trusted=trusted)
        return result.to_dict(), result.events, list(table.log), snapshot_bytes(table)

    fast, slow = run(False), run(True)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]
    assert fast[3] == slow[3]


@PROPERTY
@given(st.lists(add_label_records(model_id=st.just(0)), min_size=1, max_size=10))
def test_trace_id_defaults_to_op_id(records: list[dict[str, Any]]) -> None:
    table = ModelTable()
    result = PatchEngine(table).apply(_patch(records, "the-op"))
    assert result.events
    assert all(e.trace_id == "the-op" for e in table.log)
    other = ModelTable()
    PatchEngine(other).apply(_patch(records, "the-op"), trace_id="trace-9")
    assert all(e.trace_id == "trace-9" for e in other.log)


@PROPERTY
@given(ints, json_values)
def test_whatever_the_table_accepts_it_can_serialise(p: int, v: Any) -> None:
    table = ModelTable()
    rec = {"op": "add_label", "model_id": 0, "p": p, "r": 0, "c": 0, "k": "k", "t": "json", "v": v}
    result = PatchEngine(table).apply(_patch([rec]))
    assert result.ok
    raw = snapshot_bytes(table)
    assert snapshot_bytes(from_snapshot(json.loads(raw))) == raw
    label = table.get_label(0, (p, 0, 0), "k")
    assert label is not None
    assert json.dumps(label.v, sort_keys=True) == json.dumps(v, sort_keys=True)
