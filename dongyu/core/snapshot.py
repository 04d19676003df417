"""Deterministic snapshots of a ModelTable, and back (spec 2).

``{"models": {"<id>": {"id", "name", "type", "cells": {"p,r,c": {"p", "r",
"c", "labels": {"<k>": {"k", "t", "v"}}}}}}}``. :func:`snapshot_bytes` is
canonical: one fixed key order (models by id and cells by (p, r, c),
numerically; every other object's keys sorted), no spaces, ASCII only, so the
same table always gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from dongyu.core.gcpause import gc_paused
from dongyu.core.labels import EVENT_TYPE, JSON, ROOT_MODEL, CellKey, Label, check_label, copy_json
from dongyu.core.table import Model, ModelTable
from dongyu.errors import InvalidSnapshot, RecordRejected

Snapshot = dict[str, Any]


def to_snapshot(table: ModelTable) -> Snapshot:
    """The table as a snapshot dict (containers are copies, never the table's own)."""
    return _snapshot(table, copy=True)


def _snapshot(table: ModelTable, copy: bool) -> Snapshot:
    """Models, cells and labels in sorted order (models and cells numerically).

    Label values' objects are stored with sorted keys (see
    :func:`~dongyu.core.labels.clean_json`), so the whole dict is in one
    canonical order and can be serialised without ``sort_keys``.
    """
    models: dict[str, JSON] = {}
    with gc_paused(sum(len(m.cells) for m in table.models.values()) >= 1_000):
        for model_id in sorted(table.models):
            model = table.models[model_id]
            cells: dict[str, JSON] = {}
            model_cells = model.cells
            for key in sorted(model_cells):
                cell = model_cells[key]
                labels = {}
                for k in sorted(cell) if len(cell) > 1 else cell:
                    label = cell[k]
                    v = label.v
                    if copy and (type(v) is list or type(v) is dict):
                        v = copy_json(v)
                    labels[k] = {"k": k, "t": label.t, "v": v}
                cell_id = "%d,%d,%d" % key  # noqa: UP031 (faster than an f-string here)
                cells[cell_id] = {"c": key[2], "labels": labels, "p": key[0], "r": key[1]}
            models[str(model_id)] = {
                "cells": cells,
                "id": model_id,
                "name": model.name,
                "type": model.type,
            }
    return {"models": models}


def dumps_canonical(value: JSON) -> str:
    """Canonical JSON text: sorted keys, compact, ASCII, no NaN/Infinity."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def snapshot_bytes(table: ModelTable) -> bytes:
    """The canonical serialisation of the table's snapshot: compact, ASCII, every
    object's keys in a fixed order (models and cells numerically, all else sorted)."""
    # The dict is serialised at once and never escapes, so it may share the table's values.
    snapshot = _snapshot(table, copy=False)
    return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )


def _expect(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise InvalidSnapshot(f"{where}: {what}")


def _int_key(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidSnapshot(f"{where}: key {text!r} is not an integer") from None
    _expect(str(value) == text, where, f"key {text!r} is not in canonical integer form")
    return value


def _load_cell(model: Model, cell_key: str, raw: object, where: str) -> None:
    _expect(isinstance(raw, dict), where, "a cell must be an object")
    assert isinstance(raw, dict)
    parts = cell_key.split(",")
    _expect(len(parts) == 3, where, f"cell key {cell_key!r} is not 'p,r,c'")
    key: CellKey = (_int_key(parts[0], where), _int_key(parts[1], where), _int_key(parts[2], where))
    for name, value in zip(("p", "r", "c"), key, strict=True):
        _expect(
            type(raw.get(name)) is int and raw[name] == value, where, f"'{name}' must be {value}"
        )
    labels = raw.get("labels")
    _expect(isinstance(labels, dict), where, "'labels' must be an object")
    assert isinstance(labels, dict)
    cell: dict[str, Label] = {}
    for k, lab in labels.items():
        lwhere = f"{where} label {k!r}"
        _expect(isinstance(lab, dict), lwhere, "a label must be an object")
        _expect(lab.get("k") == k, lwhere, "'k' must equal its key")
        _expect("t" in lab and "v" in lab, lwhere, "a label needs 't' and 'v'")
        try:
            label = check_label(lab["k"], lab["t"], lab["v"])
        except RecordRejected as exc:
            raise InvalidSnapshot(f"{lwhere}: {exc.detail}") from exc
        if not (label.t == EVENT_TYPE and label.v is None):  # a cleared mailbox is no label
            cell[k] = label
    if cell:
        model.cells[key] = cell


def from_snapshot(snapshot: object) -> ModelTable:
    """Build a table from a snapshot dict; :class:`InvalidSnapshot` says what is wrong.

    Empty cells and cleared (``null``) event labels are dropped; a snapshot without model 0 still gives a table
    with the root model.
    """
    _expect(isinstance(snapshot, dict), "snapshot", "must be an object")
    assert isinstance(snapshot, dict)
    models = snapshot.get("models")
    _expect(isinstance(models, dict), "snapshot", "'models' must be an object")
    assert isinstance(models, dict)
    table = ModelTable()
    for id_text, raw in models.items():
        where = f"model {id_text!r}"
        model_id = _int_key(id_text, where)
        _expect(isinstance(raw, dict), where, "a model must be an object")
        _expect(
            type(raw.get("id")) is int and raw["id"] == model_id, where, "'id' must equal its key"
        )
        for field in ("name", "type"):
            _expect(
                isinstance(raw.get(field), str) and bool(raw[field]),
                where,
                f"'{field}' must be a non-empty string",
            )
        cells = raw.get("cells")
        _expect(isinstance(cells, dict), where, "'cells' must be an object")
        model = Model(model_id, raw["name"], raw["type"])
        for cell_key, cell_raw in cells.items():
            _load_cell(model, cell_key, cell_raw, f"{where} cell {cell_key!r}")
        table.models[model_id] = model
    return table


def snapshot_to_patch(snapshot: Snapshot, op_id: str) -> dict[str, JSON]:
    """An mt.v0 patch that rebuilds ``snapshot`` on an empty table.

    Apply it as trusted with model creation allowed. The root model is not
    created (it always exists); other models come first, then their labels.
    """
    records: list[JSON] = []
    models = snapshot["models"]
    for model in models.values():
        if model["id"] != ROOT_MODEL:
            records.append(
                {
                    "op": "create_model",
                    "model_id": model["id"],
                    "name": model["name"],
                    "type": model["type"],
                }
            )
    for model in models.values():
        for cell in model["cells"].values():
            for label in cell["labels"].values():
                records.append(
                    {
                        "op": "add_label",
                        "model_id": model["id"],
                        "p": cell["p"],
                        "r": cell["r"],
                        "c": cell["c"],
                        "k": label["k"],
                        "t": label["t"],
                        "v": label["v"],
                    }
                )
    return {"version": "mt.v0", "op_id": op_id, "records": records}
