"""``ctx``: the only way a program function reaches the table and the world (spec 4).

Every write goes through the ModelTable and is logged with the run's
``trace_id``; values are checked like patch records (a bad one raises
:class:`~dongyu.errors.ProgramError` inside the function, which the engine
turns into an ``error`` event).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dongyu.core.events import Event
from dongyu.core.labels import (
    CONFIG_CELL,
    EDITOR_STATE_MODEL,
    JSON,
    CellKey,
    check_int,
    check_key,
    check_label,
    copy_json,
    json_problem,
)
from dongyu.errors import ProgramError, RecordRejected

if TYPE_CHECKING:
    from dongyu.program.runtime import Runtime


def parse_cell_ref(ref: object) -> tuple[int, CellKey]:
    """``{model_id, p, r, c}`` -> ``(model_id, (p, r, c))``; :class:`ProgramError` if malformed."""
    if not isinstance(ref, Mapping):
        raise ProgramError(f"a cell reference must be a dict with model_id, p, r, c; got {ref!r}")
    try:
        model_id = check_int("model_id", ref["model_id"])
        key = (check_int("p", ref["p"]), check_int("r", ref["r"]), check_int("c", ref["c"]))
    except KeyError as exc:
        raise ProgramError(f"reference {dict(ref)!r} lacks {exc.args[0]!r}") from None
    except RecordRejected as exc:
        raise ProgramError(f"bad reference {dict(ref)!r}: {exc.detail}") from exc
    return model_id, key


def parse_label_ref(ref: object) -> tuple[int, CellKey, str]:
    """``{model_id, p, r, c, k}`` -> ``(model_id, (p, r, c), k)``."""
    model_id, key = parse_cell_ref(ref)
    assert isinstance(ref, Mapping)
    try:
        k = check_key("k", ref["k"])
    except KeyError:
        raise ProgramError(f"reference {dict(ref)!r} lacks 'k'") from None
    except RecordRejected as exc:
        raise ProgramError(f"bad reference {dict(ref)!r}: {exc.detail}") from exc
    return model_id, key, k


class Ctx:
    """The host API handed to a function. Attributes describe why it runs:

    - ``function_name``: the function's name (its label's ``k``);
    - ``model_id``, ``pin``: the model and pin whose ``IN`` value triggered
      it (``None`` for a ``run_<name>`` trigger or a direct call);
    - ``value``: that ``IN`` value (a copy);
    - ``trace_id``, ``op_id``: the operation being followed.
    """

    def __init__(
        self,
        runtime: Runtime,
        function_name: str,
        *,
        model_id: int | None = None,
        pin: str | None = None,
        value: JSON = None,
        trace_id: str | None = None,
        op_id: str | None = None,
    ) -> None:
        self._runtime = runtime
        self.function_name = function_name
        self.model_id = model_id
        self.pin = pin
        self.value = value
        self.trace_id = trace_id
        self.op_id = op_id
        self.logger = logging.getLogger(f"dongyu.program.function.{function_name}")
        self.log = self.logger
        self.events: list[Event] = []
        """The changes this run made, in order (the engine looks for triggers in them)."""

    # ---- the table -------------------------------------------------------
    def get_label(self, ref: Mapping[str, Any]) -> JSON:
        """The value of the label at ``ref`` (``{model_id, p, r, c, k}``), or ``None``."""
        model_id, key, k = parse_label_ref(ref)
        label = self._runtime.table.get_label(model_id, key, k)
        return None if label is None else copy_json(label.v)

    def write_label(self, ref: Mapping[str, Any], t: str, v: JSON) -> None:
        """Write label ``ref['k']`` with type ``t`` and value ``v`` (last write wins)."""
        model_id, key, k = parse_label_ref(ref)
        self._put(model_id, key, k, t, v)

    def set_label(self, cell_ref: Mapping[str, Any], label: Mapping[str, Any]) -> None:
        """Write ``label`` (``{k, t, v}``) into the cell ``cell_ref`` (``{model_id, p, r, c}``)."""
        model_id, key = parse_cell_ref(cell_ref)
        if not isinstance(label, Mapping) or not {"k", "t", "v"} <= label.keys():
            raise ProgramError(f"a label must be a dict with k, t, v; got {label!r}")
        self._put(model_id, key, label["k"], label["t"], label["v"])

    def rm_label(self, ref: Mapping[str, Any]) -> bool:
        """Remove the label at ``ref``; whether there was one."""
        model_id, key, k = parse_label_ref(ref)
        table = self._runtime.table
        if table.get_label(model_id, key, k) is None:
            return False
        self.events.append(table.delete_label(model_id, key, k, self.trace_id, self._runtime.now()))
        return True

    def get_state(self, key: str) -> JSON:
        """A value of the editor state (model -2, cell (0,0,0)), or ``None``."""
        label = self._runtime.table.get_label(EDITOR_STATE_MODEL, CONFIG_CELL, key)
        return None if label is None else copy_json(label.v)

    def get_state_int(self, key: str) -> int | None:
        """:meth:`get_state` as an int (``"12"`` and ``12`` give 12), else ``None``."""
        value = self.get_state(key)
        if type(value) is int:
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return None
        return None

    # ---- the buses -------------------------------------------------------
    def send_matrix(self, payload: Mapping[str, Any]) -> None:
        """Hand ``payload`` (a JSON object) to the host for the management bus."""
        if not isinstance(payload, Mapping):
            raise ProgramError(f"send_matrix needs a dict, got {type(payload).__name__}")
        payload = dict(payload)
        problem = json_problem(payload)
        if problem is not None:
            raise ProgramError(f"send_matrix payload is not JSON: {problem}")
        self._runtime.host.send_matrix(copy_json(payload))

    def publish_mqtt(self, topic: str, payload: JSON) -> None:
        """Hand ``payload`` (JSON) to the host for the control bus, on ``topic``."""
        if not isinstance(topic, str) or not topic or "#" in topic or "+" in topic:
            raise ProgramError(f"publish_mqtt needs a concrete topic name, got {topic!r}")
        problem = json_problem(payload)
        if problem is not None:
            raise ProgramError(f"publish_mqtt payload is not JSON: {problem}")
        self._runtime.host.publish_mqtt(topic, copy_json(payload))

    def current_topic(self, pin: str, model_id: int | None = None) -> str:
        """``<mqtt_topic_base>/<model_id>/<pin>``; ``model_id`` defaults to the triggering model."""
        target = self.model_id if model_id is None else model_id
        if target is None:
            raise ProgramError("current_topic: no model triggered this run; pass model_id")
        return self._runtime.topic(target, pin)

    # ---- internals -------------------------------------------------------
    def _put(self, model_id: int, key: CellKey, k: object, t: object, v: object) -> None:
        try:
            label = check_label(k, t, v)
        except RecordRejected as exc:
            raise ProgramError(f"cannot write label {k!r}: {exc}") from exc
        runtime = self._runtime
        if not runtime.table.has_model(model_id):
            raise ProgramError(f"cannot write label {label.k!r}: model {model_id} does not exist")
        if label.t in ("function", "func.python"):
            runtime.check_function(label.k, label.v)
        self.events.append(
            runtime.table.put_label(model_id, key, label, self.trace_id, runtime.now())
        )
