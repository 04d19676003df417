"""Applying mt.v0 patches to a ModelTable (spec 3).

Records apply in order; each is checked on its own and a rejected record
changes nothing (it is logged as a ``rejected`` event with its reason). An
envelope that is not a patch is refused whole (``invalid_patch``) and logged
as an ``error`` event. A patch whose ``op_id`` was applied before changes
nothing (:class:`~dongyu.patch.dedup.OpIdWindow`).

Trust: a patch applied with ``trusted=False`` (anything that arrived over a
bus) cannot add, change or remove ``function`` labels.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from dongyu.core.events import APPLIED, Event
from dongyu.core.functions import compile_function
from dongyu.core.gcpause import gc_paused
from dongyu.core.labels import (
    FUNCTION_TYPES,
    INT_FLOOR,
    INT_LIMIT,
    ROOT_MODEL,
    CellKey,
    Label,
    NotJSON,
    check_int,
    check_key,
    check_label,
    clean_json,
    is_clearable,
    type_name,
)
from dongyu.core.table import ModelTable
from dongyu.errors import InvalidPatch, RecordRejected
from dongyu.patch.dedup import DEFAULT_CAPACITY, OpIdWindow
from dongyu.patch.envelope import Envelope, parse_envelope
from dongyu.patch.result import PatchResult, RecordError

log = logging.getLogger("dongyu.patch.engine")

KNOWN_OPS = ("add_label", "rm_label", "create_model", "cell_clear")
_LABEL_FIELDS = ("model_id", "p", "r", "c", "k", "t", "v")
_REF_FIELDS = ("model_id", "p", "r", "c", "k")
_CELL_FIELDS = ("model_id", "p", "r", "c")


_tuple_new = tuple.__new__
_SLOW_TYPES = FUNCTION_TYPES | {"func.js", "event"}
_GC_PAUSE_MIN_RECORDS = 1_000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _missing(rec: dict[str, Any], fields: tuple[str, ...]) -> RecordRejected:
    absent = [f for f in fields if f not in rec]
    return RecordRejected(f"missing field '{absent[0]}'", code="missing_field")


def _cell_of(rec: dict[str, Any]) -> tuple[int, CellKey]:
    """``model_id`` and ``(p, r, c)`` of a record, all checked as integers."""
    try:
        model_id, p, r, c = rec["model_id"], rec["p"], rec["r"], rec["c"]
    except KeyError:
        raise _missing(rec, _CELL_FIELDS) from None
    if type(model_id) is int and type(p) is int and type(r) is int and type(c) is int:
        return model_id, (p, r, c)
    return check_int("model_id", model_id), (
        check_int("p", p),
        check_int("r", r),
        check_int("c", c),
    )


def _untrusted_function(action: str, k: str) -> RecordRejected:
    return RecordRejected(
        f"cannot {action} function label '{k}': the patch is untrusted (function labels come "
        "only from trusted sources: patch files loaded at start-up, an operator)",
        code="untrusted_function",
    )


class PatchEngine:
    """Applies patches to one table, remembering applied ``op_id``s.

    ``allow_create_model`` (off by default) lets records create missing
    models; it can be overridden per call.
    """

    def __init__(
        self,
        table: ModelTable,
        *,
        allow_create_model: bool = False,
        dedup: OpIdWindow | None = None,
        clock: Callable[[], int] | None = wall_clock_ms,
    ) -> None:
        self.table = table
        self.allow_create_model = allow_create_model
        self.dedup = dedup if dedup is not None else OpIdWindow(DEFAULT_CAPACITY)
        self._clock = clock

    # ---- public ----------------------------------------------------------
    def apply(
        self,
        patch: object,
        *,
        trusted: bool = False,
        allow_create_model: bool | None = None,
        trace_id: str | None = None,
    ) -> PatchResult:
        """Apply a patch (a dict, or an already parsed :class:`Envelope`)."""
        ts = self._clock() if self._clock is not None else None
        try:
            envelope = patch if isinstance(patch, Envelope) else parse_envelope(patch)
        except InvalidPatch as exc:
            op_id = patch.get("op_id") if isinstance(patch, dict) else None
            safe_op_id = op_id if type(op_id) is str else None
            self.table.error(str(exc), trace_id or safe_op_id, ts)
            log.warning("patch refused: %s", exc)
            return PatchResult(safe_op_id, 0, 0, str(exc), refused=True)
        op_id = envelope.op_id
        if op_id in self.dedup:
            log.info("patch %s already applied: ignored", op_id)
            return PatchResult(op_id, 0, 0, "duplicate_op_id", duplicate=True)
        create = self.allow_create_model if allow_create_model is None else allow_create_model
        result = self._apply_records(envelope, trusted, create, trace_id or op_id, ts)
        self.dedup.add(op_id)
        if result.rejected:
            log.warning("patch %s: %d rejected, first: %s", op_id, result.rejected, result.reason)
        return result

    # ---- records ---------------------------------------------------------
    def _apply_records(
        self, envelope: Envelope, trusted: bool, create: bool, trace_id: str, ts: int | None
    ) -> PatchResult:
        """Apply each record in order.

        ``add_label`` records with a JSON value (not null), in an existing model and
        not touching a function label (nearly all of them) take an inlined
        fast path that builds their events in bulk; everything else goes
        through the per-op methods. Both paths make the same change and the
        same event.
        """
        table = self.table
        models = table.models
        log = table.log
        events: list[Event] = []
        errors: list[RecordError] = []
        pending: list[Event] = []  # fast-path events not yet in the log
        next_id = log.last_id + 1
        records = envelope.records
        lo, hi = INT_FLOOR, INT_LIMIT  # integer bounds, as locals for the hot loop
        with gc_paused(len(records) >= _GC_PAUSE_MIN_RECORDS):
            for index, rec in enumerate(records):
                if type(rec) is dict and rec.get("op") == "add_label":
                    try:
                        model_id, p, r, c, k, t, v = (
                            rec["model_id"],
                            rec["p"],
                            rec["r"],
                            rec["c"],
                            rec["k"],
                            rec["t"],
                            rec["v"],
                        )
                    except KeyError:
                        pass
                    else:
                        tv = type(v)
                        if tv is list or tv is dict:
                            try:
                                v = clean_json(v)
                            except NotJSON:
                                tv = type(None)  # not JSON: the slow path says why
                        elif tv is float and math.isfinite(v):
                            tv = str  # a finite float is as good as a string here
                        elif tv is int and not lo < v < hi:
                            tv = type(None)  # too large: the slow path says why
                        model = models.get(model_id) if type(model_id) is int else None
                        if (
                            model is not None
                            and type(p) is int
                            and type(r) is int
                            and type(c) is int
                            and lo < p < hi
                            and lo < r < hi
                            and lo < c < hi
                            and type(k) is str
                            and k
                            and type(t) is str
                            and t
                            and (tv is str or tv is int or tv is bool or tv is list or tv is dict)
                            and t not in _SLOW_TYPES
                        ):
                            key = (p, r, c)
                            cell = model.cells.get(key)
                            if cell is None:
                                cell = model.cells[key] = {}
                            prev = cell.get(k)
                            if trusted or prev is None or prev.t not in FUNCTION_TYPES:
                                label = _tuple_new(Label, (k, t, v))
                                cell[k] = label
                                pending.append(
                                    _tuple_new(
                                        Event,
                                        (
                                            next_id,
                                            ts,
                                            "add_label",
                                            model_id,
                                            key,
                                            label,
                                            prev,
                                            APPLIED,
                                            None,
                                            trace_id,
                                        ),
                                    )
                                )
                                next_id += 1
                                continue
                            if not cell:
                                del model.cells[key]
                # slow path: flush the fast path's events first, to keep ids in order
                if pending:
                    log.extend(pending)
                    events.extend(pending)
                    pending = []
                self._apply_one(index, rec, trusted, create, trace_id, ts, events, errors)
                next_id = log.last_id + 1
            if pending:
                log.extend(pending)
                events.extend(pending)
        rejected = len(errors)
        return PatchResult(
            envelope.op_id,
            len(records) - rejected,
            rejected,
            errors[0].reason if errors else None,
            tuple(errors),
            events=tuple(events),
        )

    def _apply_one(
        self,
        index: int,
        rec: object,
        trusted: bool,
        create: bool,
        trace_id: str,
        ts: int | None,
        events: list[Event],
        errors: list[RecordError],
    ) -> None:
        op = rec.get("op") if isinstance(rec, dict) else None
        try:
            if not isinstance(rec, dict):
                raise RecordRejected(
                    f"a record must be an object, got {type_name(rec)}", code="invalid_record"
                )
            if op == "add_label":
                events.extend(self._add_label(rec, trusted, create, trace_id, ts))
            elif op == "rm_label":
                events.append(self._rm_label(rec, trusted, trace_id, ts))
            elif op == "create_model":
                event = self._create_model(rec, create, trace_id, ts)
                if event is not None:
                    events.append(event)
            elif op == "cell_clear":
                events.extend(self._cell_clear(rec, trace_id, ts))
            elif "op" not in rec:
                raise RecordRejected("missing field 'op'", code="missing_field")
            else:
                raise RecordRejected(
                    f"unknown op {op!r} (known: {', '.join(KNOWN_OPS)})", code="unknown_op"
                )
        except RecordRejected as exc:
            reason = str(exc)
            op_name = op if type(op) is str else None
            errors.append(RecordError(index, op_name, reason))
            self.table.reject(op_name or "error", reason, None, None, None, trace_id, ts)

    def _add_label(
        self, rec: dict[str, Any], trusted: bool, create: bool, trace_id: str, ts: int | None
    ) -> list[Event]:
        if not all(name in rec for name in _LABEL_FIELDS):
            raise _missing(rec, _LABEL_FIELDS)
        k, t, v = rec["k"], rec["t"], rec["v"]
        model_id, key = _cell_of(rec)
        label = check_label(k, t, v)
        table = self.table
        missing = model_id not in table.models
        if missing and not create:
            raise RecordRejected(
                f"model {model_id} does not exist (model creation is not allowed)",
                code="model_not_found",
            )
        # every check before the model is created: a rejected record changes nothing
        if label.t in FUNCTION_TYPES:
            if not trusted:
                raise _untrusted_function("add", label.k)
            compile_function(label.k, label.v)
        elif not trusted:
            prev = table.get_label(model_id, key, label.k)
            if prev is not None and prev.t in FUNCTION_TYPES:
                raise _untrusted_function("overwrite", label.k)
        created = table.ensure_model(model_id, trace_id, ts) if missing else None
        event = table.put_label(model_id, key, label, trace_id, ts)
        return [event] if created is None else [created, event]

    def _rm_label(self, rec: dict[str, Any], trusted: bool, trace_id: str, ts: int | None) -> Event:
        if "k" not in rec:
            raise _missing(rec, _REF_FIELDS)
        model_id, key = _cell_of(rec)
        k = check_key("k", rec["k"])
        table = self.table
        if model_id not in table.models:
            raise RecordRejected(f"model {model_id} does not exist", code="model_not_found")
        prev = table.get_label(model_id, key, k)
        if prev is None:
            raise RecordRejected(
                f"no label '{k}' at model {model_id} cell {key}: nothing to remove",
                code="label_not_found",
            )
        if prev.t in FUNCTION_TYPES and not trusted:
            raise _untrusted_function("remove", k)
        return table.delete_label(model_id, key, k, trace_id, ts)

    def _create_model(
        self, rec: dict[str, Any], create: bool, trace_id: str, ts: int | None
    ) -> Event | None:
        if "model_id" in rec and "id" in rec and rec["model_id"] != rec["id"]:
            raise RecordRejected(
                f"'model_id' ({rec['model_id']!r}) and 'id' ({rec['id']!r}) disagree",
                code="invalid_value",
            )
        if "model_id" in rec:
            model_id = check_int("model_id", rec["model_id"])
        elif "id" in rec:
            model_id = check_int("id", rec["id"])
        else:
            raise RecordRejected("missing field 'model_id' (or 'id')", code="missing_field")
        for field in ("name", "type"):
            if field not in rec:
                raise RecordRejected(f"missing field '{field}'", code="missing_field")
        name = check_key("name", rec["name"])
        model_type = check_key("type", rec["type"])
        if model_id == ROOT_MODEL:
            raise RecordRejected(
                "model 0 is the root model and cannot be created", code="reserved_model"
            )
        if not create:
            raise RecordRejected(
                f"model creation is not allowed (create_model {model_id})",
                code="model_creation_not_allowed",
            )
        return self.table.add_model(model_id, name, model_type, trace_id, ts)

    def _cell_clear(self, rec: dict[str, Any], trace_id: str, ts: int | None) -> list[Event]:
        model_id, key = _cell_of(rec)
        table = self.table
        model = table.models.get(model_id)
        if model is None:
            raise RecordRejected(f"model {model_id} does not exist", code="model_not_found")
        cell = model.cells.get(key, {})
        doomed = [label.k for label in cell.values() if is_clearable(label)]
        return [table.delete_label(model_id, key, k, trace_id, ts) for k in doomed]
