"""The runtime: a ModelTable, its patch engine and the program engine (spec 4).

Functions are ``function`` / ``func.python`` labels (normally on model -10);
the label's ``k`` is the function's name. A function runs when:

- ``run_<name>`` is written on model -10 cell (0,0,0) with a value other than
  ``null``/``false``/``0``/``"0"``/``""``: the trigger is removed, then
  ``<name>`` runs once;
- an ``IN`` label is written in the pin mailbox (cell (0,1,1)) of a model
  whose cell (0,0,1) declares that pin as ``PIN_IN`` with the function's name
  as its value: the function runs with ``ctx.model_id``, ``ctx.pin`` and
  ``ctx.value`` set;
- a host calls :meth:`Runtime.run_function`.

Writes made by a function can trigger more functions; one input runs at most
``max_runs_per_input`` functions (a guard against loops). A function that
raises never takes the host down: the error is an ``error`` event carrying
the function's name and traceback, and :class:`FunctionRun` reports it.
"""

from __future__ import annotations

import builtins
import json
import linecache
import logging
import math
import re
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dongyu.core.events import APPLIED, Event
from dongyu.core.functions import (
    FUNCTION_WRAPPER_NAME,
    compile_function,
    function_filename,
    wrap_source,
)
from dongyu.core.labels import (
    CONFIG_CELL,
    FUNCTION_TYPES,
    JSON,
    PIN_DECL_CELL,
    PIN_MAILBOX_CELL,
    ROOT_MODEL,
    SYSTEM_MODEL,
    CellKey,
    Label,
    check_label,
    copy_json,
)
from dongyu.core.table import ModelTable
from dongyu.errors import ProgramError, RecordRejected
from dongyu.patch.dedup import OpIdWindow
from dongyu.patch.engine import PatchEngine, wall_clock_ms
from dongyu.patch.result import PatchResult
from dongyu.program.ctx import Ctx
from dongyu.program.host import Host, NullHost

log = logging.getLogger("dongyu.program.runtime")

DEFAULT_TOPIC_BASE = "UIPUT/ws/dam/pic/de/sw"
"""The seed's ``mqtt_topic_base``, used when model 0 cell (0,0,0) has none."""

_FALSE_TRIGGERS: tuple[JSON, ...] = (None, False, 0, "0", "")
_FUNCTION_GLOBALS = {"__builtins__": builtins, "json": json, "math": math, "re": re}
_COMPILED_CACHE_SIZE = 256


@dataclass(frozen=True)
class FunctionRun:
    """The outcome of one function run."""

    name: str
    trigger: str
    """``run_trigger``, ``pin:<model_id>/<pin>`` or ``direct``."""
    ok: bool
    error: str | None
    duration_ns: int
    trace_id: str | None
    result: JSON = None


@dataclass(frozen=True)
class _Trigger:
    name: str
    trigger: str
    model_id: int | None = None
    pin: str | None = None
    value: JSON = None


class Runtime:
    """One ModelTable with its patch engine and program engine, embedded in a host."""

    def __init__(
        self,
        host: Host | None = None,
        *,
        allow_create_model: bool = False,
        dedup: OpIdWindow | None = None,
        clock: Callable[[], int] | None = wall_clock_ms,
        max_runs_per_input: int = 100,
        table: ModelTable | None = None,
    ) -> None:
        self.table = table if table is not None else ModelTable()
        self.patches = PatchEngine(
            self.table, allow_create_model=allow_create_model, dedup=dedup, clock=clock
        )
        self.host: Host = host if host is not None else NullHost()
        self.max_runs_per_input = max_runs_per_input
        self._clock = clock
        self._compiled: dict[tuple[str, str], Callable[[Ctx], Any]] = {}
        self.runs: deque[FunctionRun] = deque(maxlen=1000)
        """The newest function runs (for status pages and tests)."""

    def now(self) -> int | None:
        return self._clock() if self._clock is not None else None

    # ---- patches ---------------------------------------------------------
    def apply_patch(
        self,
        patch: object,
        *,
        trusted: bool = False,
        allow_create_model: bool | None = None,
        trace_id: str | None = None,
    ) -> PatchResult:
        """Apply a patch, then run the functions its changes trigger."""
        result = self.patches.apply(
            patch, trusted=trusted, allow_create_model=allow_create_model, trace_id=trace_id
        )
        if result.events:
            self._run_triggered(result.events, trace_id or result.op_id, result.op_id)
        return result

    def load_program(self, patch: object) -> PatchResult:
        """Apply a program model patch as trusted, with model creation allowed.

        Raises :class:`ProgramError` when the patch is refused or any record
        is rejected: a program model loads whole or the host must not start.
        """
        result = self.apply_patch(patch, trusted=True, allow_create_model=True)
        if not result.ok:
            raise ProgramError(f"program model patch {result.op_id} did not load: {result.reason}")
        return result

    # ---- functions -------------------------------------------------------
    def find_function(self, name: str) -> tuple[CellKey, str] | None:
        """The cell and source of function ``name`` on model -10 (first cell in order)."""
        model = self.table.model(SYSTEM_MODEL)
        if model is None:
            return None
        for key in sorted(model.cells):
            label = model.cells[key].get(name)
            if label is not None and label.t in FUNCTION_TYPES:
                return key, label.v
        return None

    def check_function(self, name: str, source: object) -> None:
        """Raise :class:`ProgramError` unless ``source`` compiles as a function body."""
        if not isinstance(source, str):
            raise ProgramError(f"function '{name}' must be a string of Python source")
        try:
            compile_function(name, source)
        except RecordRejected as exc:
            raise ProgramError(exc.detail) from exc

    def run_function(
        self,
        name: str,
        *,
        model_id: int | None = None,
        pin: str | None = None,
        value: JSON = None,
        trace_id: str | None = None,
        op_id: str | None = None,
    ) -> list[FunctionRun]:
        """Run function ``name`` now, then whatever its writes trigger.

        Returns every run, the first being ``name``'s own.
        """
        first = _Trigger(name, "direct", model_id, pin, copy_json(value))
        return self._run_queue(deque([first]), trace_id, op_id)

    def write_pin(
        self,
        model_id: int,
        pin: str,
        value: JSON,
        *,
        trace_id: str | None = None,
        op_id: str | None = None,
    ) -> list[FunctionRun]:
        """Write ``value`` as the ``IN`` label ``pin`` of ``model_id`` and run what it triggers.

        The model must exist. Raises :class:`RecordRejected` for a bad pin
        name or a value that is not JSON.
        """
        label = check_label(pin, "IN", value)
        if "/" in pin:
            raise RecordRejected(f"pin name {pin!r} contains '/'", code="invalid_value")
        if not self.table.has_model(model_id):
            raise RecordRejected(f"model {model_id} does not exist", code="model_not_found")
        event = self.table.put_label(model_id, PIN_MAILBOX_CELL, label, trace_id, self.now())
        return self._run_triggered([event], trace_id, op_id)

    def pin_function(self, model_id: int, pin: str) -> str | None:
        """The function bound to ``PIN_IN`` ``pin`` of ``model_id``, if any."""
        decl = self.table.get_label(model_id, PIN_DECL_CELL, pin)
        if decl is None or decl.t != "PIN_IN" or not isinstance(decl.v, str) or not decl.v:
            return None
        return decl.v

    def declared_pins(self, model_id: int, pin_type: str = "PIN_IN") -> list[str]:
        """Names of the pins of ``model_id`` declared with ``pin_type``."""
        return sorted(
            label.k
            for label in self.table.cell(model_id, PIN_DECL_CELL).values()
            if label.t == pin_type
        )

    # ---- topics ----------------------------------------------------------
    def topic_base(self) -> str:
        label = self.table.get_label(ROOT_MODEL, CONFIG_CELL, "mqtt_topic_base")
        if label is not None and isinstance(label.v, str) and label.v.strip("/"):
            return label.v.strip("/")
        return DEFAULT_TOPIC_BASE

    def topic(self, model_id: int, pin: str) -> str:
        """``<mqtt_topic_base>/<model_id>/<pin>`` (spec 6)."""
        if not isinstance(pin, str) or not pin or any(ch in pin for ch in "/#+"):
            raise ProgramError(f"pin name {pin!r} is not one topic level")
        return f"{self.topic_base()}/{model_id}/{pin}"

    # ---- internals -------------------------------------------------------
    def _triggers_in(self, events: list[Event] | tuple[Event, ...]) -> list[_Trigger]:
        found: list[_Trigger] = []
        for event in events:
            label = event.label
            if event.op != "add_label" or event.result != APPLIED or label is None:
                continue
            if (
                event.model_id == SYSTEM_MODEL
                and event.cell == CONFIG_CELL
                and label.k.startswith("run_")
            ):
                trigger = self._take_run_trigger(label, event.trace_id)
                if trigger is not None:
                    found.append(trigger)
            elif event.cell == PIN_MAILBOX_CELL and label.t == "IN" and event.model_id is not None:
                name = self.pin_function(event.model_id, label.k)
                if name is not None:
                    found.append(
                        _Trigger(
                            name,
                            f"pin:{event.model_id}/{label.k}",
                            event.model_id,
                            label.k,
                            copy_json(label.v),
                        )
                    )
        return found

    def _take_run_trigger(self, label: Label, trace_id: str | None) -> _Trigger | None:
        """Remove a ``run_<name>`` trigger; the run it asks for, unless its value is off."""
        self.table.delete_label(SYSTEM_MODEL, CONFIG_CELL, label.k, trace_id, self.now())
        if any(label.v == off and type(label.v) is type(off) for off in _FALSE_TRIGGERS):
            return None
        return _Trigger(label.k[len("run_") :], "run_trigger")

    def _run_triggered(
        self, events: list[Event] | tuple[Event, ...], trace_id: str | None, op_id: str | None
    ) -> list[FunctionRun]:
        triggers = self._triggers_in(events)
        if not triggers:
            return []
        return self._run_queue(deque(triggers), trace_id, op_id)

    def _run_queue(
        self, queue: deque[_Trigger], trace_id: str | None, op_id: str | None
    ) -> list[FunctionRun]:
        runs: list[FunctionRun] = []
        while queue:
            if len(runs) >= self.max_runs_per_input:
                reason = (
                    f"trigger chain stopped after {len(runs)} function runs "
                    f"(max_runs_per_input); not run: {', '.join(t.name for t in queue)}"
                )
                self.table.error(reason, trace_id, self.now())
                log.error("%s [trace %s]", reason, trace_id)
                break
            trigger = queue.popleft()
            run, ctx = self._run_one(trigger, trace_id, op_id)
            runs.append(run)
            self.runs.append(run)
            queue.extend(self._triggers_in(ctx.events))
        return runs

    def _compiled_function(self, name: str, source: str) -> Callable[[Ctx], Any]:
        fn = self._compiled.get((name, source))
        if fn is None:
            code = compile_function(name, source)
            filename = function_filename(name)
            text = wrap_source(source)
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
            namespace: dict[str, Any] = dict(_FUNCTION_GLOBALS)
            exec(code, namespace)
            fn = namespace[FUNCTION_WRAPPER_NAME]
            if len(self._compiled) >= _COMPILED_CACHE_SIZE:
                self._compiled.clear()
            self._compiled[(name, source)] = fn
        return fn

    def _run_one(
        self, trigger: _Trigger, trace_id: str | None, op_id: str | None
    ) -> tuple[FunctionRun, Ctx]:
        name = trigger.name
        ctx = Ctx(
            self,
            name,
            model_id=trigger.model_id,
            pin=trigger.pin,
            value=trigger.value,
            trace_id=trace_id,
            op_id=op_id,
        )
        start = time.perf_counter_ns()
        found = self.find_function(name)
        try:
            if found is None:
                raise ProgramError(f"no function '{name}' on model {SYSTEM_MODEL}")
            result = self._compiled_function(name, found[1])(ctx)
            problem_free = result is None or isinstance(result, (str, int, float, bool, list, dict))
            run = FunctionRun(
                name,
                trigger.trigger,
                True,
                None,
                time.perf_counter_ns() - start,
                trace_id,
                copy_json(result) if problem_free else None,
            )
            log.debug(
                "function %s ran (%s) in %d us", name, trigger.trigger, run.duration_ns // 1000
            )
            return run, ctx
        except Exception as exc:
            detail = _function_traceback(name, exc)
            reason = f"function {name} raised {type(exc).__name__}: {exc}\n{detail}"
            self.table.error(reason, trace_id, self.now())
            log.error(
                "function %s (%s) failed [trace %s]: %s", name, trigger.trigger, trace_id, reason
            )
            return (
                FunctionRun(
                    name, trigger.trigger, False, reason, time.perf_counter_ns() - start, trace_id
                ),
                ctx,
            )


def _function_traceback(name: str, exc: BaseException) -> str:
    """The traceback frames inside the function's own source (line numbers of its label)."""
    filename = function_filename(name)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = [
        f"  line {max((f.lineno or 2) - 1, 1)} of function {name}: {f.line or ''}".rstrip()
        for f in frames
    ]
    if not lines:
        lines = [line.rstrip() for line in traceback.format_exception(exc)[-3:]]
    return "Traceback (function frames):\n" + "\n".join(lines)
