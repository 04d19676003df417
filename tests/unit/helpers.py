"""Small builders shared by the program-engine tests."""

from __future__ import annotations

from typing import Any

from dongyu.program import RecordingHost, Runtime


def add(model_id: int, cell: tuple[int, int, int], k: str, t: str, v: Any) -> dict[str, Any]:
    p, r, c = cell
    return {"op": "add_label", "model_id": model_id, "p": p, "r": r, "c": c, "k": k, "t": t, "v": v}


def patch(records: list[Any], op_id: str) -> dict[str, Any]:
    return {"version": "mt.v0", "op_id": op_id, "records": records}


def runtime_with(
    functions: dict[str, str], *records: dict[str, Any]
) -> tuple[Runtime, RecordingHost]:
    """A runtime (RecordingHost, fixed clock) with ``functions`` on model -10 and ``records``."""
    host = RecordingHost()
    rt = Runtime(host, clock=lambda: 1000)
    recs: list[Any] = [
        {"op": "create_model", "model_id": -10, "name": "system", "type": "system"},
        {"op": "create_model", "model_id": -2, "name": "editor", "type": "system"},
        {"op": "create_model", "model_id": 5, "name": "five", "type": "data"},
    ]
    recs += [
        add(-10, (1, 0, i), name, "function", src)
        for i, (name, src) in enumerate(functions.items())
    ]
    recs += list(records)
    rt.load_program(patch(recs, "setup"))
    return rt, host


def run_trigger(name: str, value: Any = "1") -> dict[str, Any]:
    return add(-10, (0, 0, 0), f"run_{name}", "str", value)
