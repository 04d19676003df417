"""The ModelTable: models -> cells -> labels (spec 2).

The table's mutators assume their input was validated (the patch engine and
the program ``ctx`` do that) and log every change in :attr:`ModelTable.log`.
Empty cells are dropped, so a table and its snapshot always agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from dongyu.core.events import APPLIED, DEFAULT_LOG_CAPACITY, REJECTED, Event, EventLog
from dongyu.core.labels import EVENT_TYPE, ROOT_MODEL, CellKey, Label

_EMPTY_CELL: Mapping[str, Label] = MappingProxyType({})


def default_model_identity(model_id: int) -> tuple[str, str]:
    """Name and type of a model created implicitly for a record (spec 3)."""
    if model_id < 0:
        return f"system_model_{model_id}", "system"
    return f"model_{model_id}", "data"


class Model:
    """One model: ``id``, ``name``, ``type`` and its cells."""

    __slots__ = ("cells", "id", "name", "type")

    def __init__(self, model_id: int, name: str, model_type: str) -> None:
        self.id = model_id
        self.name = name
        self.type = model_type
        self.cells: dict[CellKey, dict[str, Label]] = {}

    def cell(self, key: CellKey) -> Mapping[str, Label]:
        """The labels of a cell; an empty mapping when the cell does not exist."""
        cell = self.cells.get(key)
        return _EMPTY_CELL if cell is None else MappingProxyType(cell)

    def label_count(self) -> int:
        return sum(len(cell) for cell in self.cells.values())

    def __repr__(self) -> str:
        return (
            f"Model(id={self.id}, name={self.name!r}, type={self.type!r}, cells={len(self.cells)})"
        )


class ModelTable:
    """Models keyed by integer id; a new table holds the root model 0 (``MT``, ``main``)."""

    __slots__ = ("log", "models")

    def __init__(self, *, log_capacity: int = DEFAULT_LOG_CAPACITY) -> None:
        self.models: dict[int, Model] = {ROOT_MODEL: Model(ROOT_MODEL, "MT", "main")}
        self.log = EventLog(log_capacity)

    # ---- reading -------------------------------------------------------
    def model(self, model_id: int) -> Model | None:
        return self.models.get(model_id)

    def has_model(self, model_id: int) -> bool:
        return model_id in self.models

    def cell(self, model_id: int, key: CellKey) -> Mapping[str, Label]:
        """A cell's labels; empty for a missing cell or model (spec 2)."""
        model = self.models.get(model_id)
        return _EMPTY_CELL if model is None else model.cell(key)

    def get_label(self, model_id: int, key: CellKey, k: str) -> Label | None:
        model = self.models.get(model_id)
        if model is None:
            return None
        cell = model.cells.get(key)
        return None if cell is None else cell.get(k)

    def iter_labels(self) -> Iterator[tuple[int, CellKey, Label]]:
        for model_id, model in self.models.items():
            for key, cell in model.cells.items():
                for label in cell.values():
                    yield model_id, key, label

    def label_count(self) -> int:
        return sum(model.label_count() for model in self.models.values())

    # ---- writing (input already validated) ------------------------------
    def add_model(
        self,
        model_id: int,
        name: str,
        model_type: str,
        trace_id: str | None = None,
        ts: int | None = None,
    ) -> Event | None:
        """Create a model; ``None`` (no change) when it exists already."""
        if model_id in self.models:
            return None
        self.models[model_id] = Model(model_id, name, model_type)
        return self.log.append(
            "create_model",
            model_id,
            None,
            Label("name", "str", name),
            None,
            APPLIED,
            None,
            trace_id,
            ts,
        )

    def ensure_model(
        self, model_id: int, trace_id: str | None = None, ts: int | None = None
    ) -> Event | None:
        """Create ``model_id`` with its default name and type if it is missing."""
        if model_id in self.models:
            return None
        name, model_type = default_model_identity(model_id)
        return self.add_model(model_id, name, model_type, trace_id, ts)

    def put_label(
        self,
        model_id: int,
        key: CellKey,
        label: Label,
        trace_id: str | None = None,
        ts: int | None = None,
    ) -> Event:
        """Upsert ``label`` (last write wins). The model must exist.

        An ``event`` label whose value is ``null`` clears the mailbox: the
        label is removed and the change is logged as ``rm_label``.
        """
        if label.v is None and label.t == EVENT_TYPE:
            return self.delete_label(model_id, key, label.k, trace_id, ts)
        cells = self.models[model_id].cells
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {}
        prev = cell.get(label.k)
        cell[label.k] = label
        return self.log.append("add_label", model_id, key, label, prev, APPLIED, None, trace_id, ts)

    def delete_label(
        self,
        model_id: int,
        key: CellKey,
        k: str,
        trace_id: str | None = None,
        ts: int | None = None,
    ) -> Event:
        """Remove label ``k``; an ``rm_label`` event with ``prev`` (``None`` if absent)."""
        model = self.models.get(model_id)
        cell = None if model is None else model.cells.get(key)
        prev = None if cell is None else cell.pop(k, None)
        if cell is not None and not cell and model is not None:
            del model.cells[key]
        return self.log.append("rm_label", model_id, key, None, prev, APPLIED, None, trace_id, ts)

    def reject(
        self,
        op: str,
        reason: str,
        model_id: int | None = None,
        key: CellKey | None = None,
        label: Label | None = None,
        trace_id: str | None = None,
        ts: int | None = None,
    ) -> Event:
        """Log a refused operation; the table itself is not touched."""
        return self.log.append(op, model_id, key, label, None, REJECTED, reason, trace_id, ts)

    def error(self, reason: str, trace_id: str | None = None, ts: int | None = None) -> Event:
        """Log an ``error`` event (a function that raised, a refused envelope...)."""
        return self.log.append("error", None, None, None, None, REJECTED, reason, trace_id, ts)

    def __repr__(self) -> str:
        return f"ModelTable(models={sorted(self.models)}, labels={self.label_count()})"
