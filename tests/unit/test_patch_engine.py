"""Patch engine semantics (spec 3): the four ops, model creation, dedup window, results."""

from __future__ import annotations

from typing import Any

import pytest

from dongyu.core.labels import Label
from dongyu.core.snapshot import snapshot_bytes
from dongyu.core.table import ModelTable
from dongyu.patch import OpIdWindow, PatchEngine, PatchResult
from dongyu.patch.envelope import Envelope


def _patch(records: list[Any], op_id: str = "p") -> dict[str, Any]:
    return {"version": "mt.v0", "op_id": op_id, "records": records}


def _add(
    model_id: int, k: str, v: Any, t: str = "str", cell: tuple[int, int, int] = (0, 0, 0)
) -> dict[str, Any]:
    p, r, c = cell
    return {"op": "add_label", "model_id": model_id, "p": p, "r": r, "c": c, "k": k, "t": t, "v": v}


@pytest.mark.parametrize("field", ["model_id", "id"])
def test_create_model_accepts_model_id_and_id(field: str) -> None:
    table = ModelTable()
    result = PatchEngine(table).apply(
        _patch([{"op": "create_model", field: 7, "name": "seven", "type": "ui"}]),
        allow_create_model=True,
    )
    assert result.ok and result.applied == 1
    model = table.model(7)
    assert model is not None and (model.name, model.type) == ("seven", "ui")
    assert [e.op for e in result.events] == ["create_model"]


def test_create_model_with_both_fields_agreeing() -> None:
    table = ModelTable()
    result = PatchEngine(table, allow_create_model=True).apply(
        _patch([{"op": "create_model", "model_id": -3, "id": -3, "name": "n", "type": "system"}])
    )
    assert result.ok and table.has_model(-3)


def test_existing_model_counts_as_success_and_is_not_renamed() -> None:
    table = ModelTable()
    engine = PatchEngine(table, allow_create_model=True)
    engine.apply(_patch([{"op": "create_model", "model_id": 5, "name": "a", "type": "data"}], "1"))
    last = table.log.last_id
    result = engine.apply(
        _patch([{"op": "create_model", "model_id": 5, "name": "b", "type": "ui"}], "2")
    )
    assert result.ok and result.applied == 1 and result.events == ()
    assert table.log.last_id == last
    model = table.model(5)
    assert model is not None and (model.name, model.type) == ("a", "data")


def test_model_creation_is_off_by_default() -> None:
    table = ModelTable()
    engine = PatchEngine(table)
    result = engine.apply(
        _patch([{"op": "create_model", "model_id": 5, "name": "a", "type": "d"}, _add(6, "k", "v")])
    )
    assert result.rejected == 2
    assert [e.reason.split(":")[0] for e in result.errors] == [
        "model_creation_not_allowed",
        "model_not_found",
    ]
    assert sorted(table.models) == [0]
    # the per-call override wins over the engine's default, both ways
    assert engine.apply(_patch([_add(6, "k", "v")], "again"), allow_create_model=True).ok
    strict = PatchEngine(ModelTable(), allow_create_model=True)
    assert not strict.apply(_patch([_add(6, "k", "v")]), allow_create_model=False).ok


@pytest.mark.parametrize(
    ("model_id", "name", "mtype"),
    [(-5, "system_model_-5", "system"), (-1, "system_model_-1", "system"), (3, "model_3", "data")],
)
@pytest.mark.parametrize("slow", [False, True])
def test_implicit_model_identity(model_id: int, name: str, mtype: str, slow: bool) -> None:
    table = ModelTable()
    # a json value takes the slow path, a string the fast one
    rec = _add(model_id, "k", {"a": 1} if slow else "v", t="json" if slow else "str")
    result = PatchEngine(table, allow_create_model=True).apply(_patch([rec]))
    assert result.ok
    model = table.model(model_id)
    assert model is not None and (model.name, model.type) == (name, mtype)
    assert [(e.op, e.model_id) for e in table.log] == [
        ("create_model", model_id),
        ("add_label", model_id),
    ]


def test_result_events_include_implicit_model_creation() -> None:
    """``PatchResult.events`` are "the changes made, in order": a model created
    for a record is one of them, as it is for an explicit create_model."""
    table = ModelTable()
    result = PatchEngine(table, allow_create_model=True).apply(_patch([_add(3, "k", "v")]))
    assert result.ok
    assert list(result.events) == list(table.log)
    assert [e.op for e in result.events] == ["create_model", "add_label"]


def test_last_write_wins_without_merge() -> None:
    table = ModelTable()
    PatchEngine(table).apply(
        _patch(
            [
                _add(0, "k", {"a": 1, "b": 2}, t="json"),
                _add(0, "k", {"c": 3}, t="json"),
                _add(0, "s", "first"),
                _add(0, "s", 2, t="int"),
            ]
        )
    )
    assert table.get_label(0, (0, 0, 0), "k") == Label("k", "json", {"c": 3})
    assert table.get_label(0, (0, 0, 0), "s") == Label("s", "int", 2)


def test_event_label_null_clears_the_mailbox() -> None:
    table = ModelTable()
    engine = PatchEngine(table, allow_create_model=True)
    engine.apply(_patch([_add(-1, "ui_event", {"x": 1}, t="event", cell=(0, 0, 1))], "1"))
    assert table.get_label(-1, (0, 0, 1), "ui_event") == Label("ui_event", "event", {"x": 1})
    result = engine.apply(_patch([_add(-1, "ui_event", None, t="event", cell=(0, 0, 1))], "2"))
    assert result.ok
    assert table.get_label(-1, (0, 0, 1), "ui_event") is None
    assert (0, 0, 1) not in table.models[-1].cells
    (event,) = result.events
    assert event.op == "rm_label" and event.prev == Label("ui_event", "event", {"x": 1})
    # clearing an empty mailbox is fine and changes nothing
    again = engine.apply(_patch([_add(-1, "ui_event", None, t="event", cell=(0, 0, 1))], "3"))
    assert again.ok and again.events[0].prev is None


def test_null_of_other_types_is_a_value() -> None:
    table = ModelTable()
    PatchEngine(table).apply(_patch([_add(0, "j", None, t="json")]))
    assert table.get_label(0, (0, 0, 0), "j") == Label("j", "json", None)


def test_rm_label() -> None:
    table = ModelTable()
    engine = PatchEngine(table)
    engine.apply(_patch([_add(0, "a", "1"), _add(0, "b", "2")], "1"))
    result = engine.apply(
        _patch([{"op": "rm_label", "model_id": 0, "p": 0, "r": 0, "c": 0, "k": "a"}], "2")
    )
    assert result.ok
    assert set(table.cell(0, (0, 0, 0))) == {"b"}
    assert result.events[0].prev == Label("a", "str", "1")


def test_cell_clear_of_missing_cell_is_ok_and_changes_nothing() -> None:
    table = ModelTable()
    before = snapshot_bytes(table)
    result = PatchEngine(table).apply(
        _patch([{"op": "cell_clear", "model_id": 0, "p": 9, "r": 9, "c": 9}])
    )
    assert result.ok and result.applied == 1 and result.events == ()
    assert snapshot_bytes(table) == before


def test_records_apply_in_order() -> None:
    table = ModelTable()
    result = PatchEngine(table).apply(
        _patch(
            [
                _add(0, "a", "1"),
                {"op": "rm_label", "model_id": 0, "p": 0, "r": 0, "c": 0, "k": "a"},
                _add(0, "a", "3"),
                {"op": "rm_label", "model_id": 0, "p": 0, "r": 0, "c": 0, "k": "missing"},
            ]
        )
    )
    assert [e.op for e in result.events] == ["add_label", "rm_label", "add_label"]
    assert table.get_label(0, (0, 0, 0), "a") == Label("a", "str", "3")
    assert result.to_dict() == {
        "op_id": "p",
        "applied": 3,
        "rejected": 1,
        "reason": result.errors[0].reason,
        "errors": [{"index": 3, "op": "rm_label", "reason": result.errors[0].reason}],
    }
    assert result.errors[0].reason.startswith("label_not_found: ")


def test_result_summary_and_ok() -> None:
    ok = PatchResult("x", 2, 0)
    assert ok.ok and ok.summary() == "op_id=x applied=2 rejected=0"
    assert ok.to_dict() == {"op_id": "x", "applied": 2, "rejected": 0}
    dup = PatchResult("x", 0, 0, "duplicate_op_id", duplicate=True)
    assert dup.ok and dup.to_dict()["duplicate"] is True
    refused = PatchResult(None, 0, 0, "invalid_patch: x", refused=True)
    assert not refused.ok and "reason=invalid_patch: x" in refused.summary()


def test_trace_id_defaults_to_op_id_and_ts_comes_from_the_clock() -> None:
    table = ModelTable()
    engine = PatchEngine(table, clock=lambda: 99, allow_create_model=True)
    engine.apply(_patch([_add(0, "a", "1"), _add(4, "b", [1], t="json"), {"op": "x"}], "op-1"))
    assert {e.trace_id for e in table.log} == {"op-1"}
    assert {e.ts for e in table.log} == {99}
    engine.apply(_patch([_add(0, "a", "2")], "op-2"), trace_id="tr")
    assert list(table.log)[-1].trace_id == "tr"
    no_clock = ModelTable()
    PatchEngine(no_clock, clock=None).apply(_patch([_add(0, "a", "1")]))
    assert list(no_clock.log)[-1].ts is None


def test_engine_accepts_a_parsed_envelope() -> None:
    table = ModelTable()
    result = PatchEngine(table).apply(Envelope("e", [_add(0, "a", "1")]))
    assert result.ok and table.get_label(0, (0, 0, 0), "a") is not None


def test_duplicate_op_id_even_after_rejections() -> None:
    table = ModelTable()
    engine = PatchEngine(table)
    first = engine.apply(_patch([_add(9, "a", "1")], "same"))
    assert first.rejected == 1
    second = engine.apply(_patch([_add(0, "a", "1")], "same"))
    assert second.duplicate and table.get_label(0, (0, 0, 0), "a") is None


# ---- OpIdWindow -----------------------------------------------------------


def test_op_id_window_is_bounded_fifo() -> None:
    window = OpIdWindow(3)
    for op in "abcd":
        window.add(op)
    assert len(window) == 3 and window.capacity == 3
    assert "a" not in window and all(op in window for op in "bcd")
    assert window.export() == ["b", "c", "d"]
    window.add("b")  # refreshed: now the newest
    window.add("e")
    assert window.export() == ["d", "b", "e"]
    restored = OpIdWindow(2, window.export())
    assert restored.export() == ["b", "e"]
    with pytest.raises(ValueError):
        OpIdWindow(0)


def test_evicted_op_id_is_applied_again() -> None:
    table = ModelTable()
    engine = PatchEngine(table, dedup=OpIdWindow(2))
    assert engine.apply(_patch([_add(0, "n", 1, t="int")], "a")).applied == 1
    assert engine.apply(_patch([], "a")).duplicate
    engine.apply(_patch([], "b"))
    engine.apply(_patch([], "c"))  # evicts "a"
    assert len(engine.dedup) == 2
    again = engine.apply(_patch([_add(0, "n", 2, t="int")], "a"))
    assert not again.duplicate and again.applied == 1
    assert table.get_label(0, (0, 0, 0), "n") == Label("n", "int", 2)
