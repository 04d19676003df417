"""Fuzzing the patch engine with arbitrary input (hypothesis): it never raises, never
corrupts the table, and an untrusted patch never touches a function label."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dongyu import programs
from dongyu.core.labels import FUNCTION_TYPES
from dongyu.core.snapshot import from_snapshot, snapshot_bytes, to_snapshot
from dongyu.program.host import RecordingHost
from dongyu.program.runtime import Runtime

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(
        [
            "add_label",
            "rm_label",
            "create_model",
            "cell_clear",
            "function",
            "event",
            "IN",
            "PIN_IN",
            "func.js",
            "mt.v0",
            "run_boom",
            "mqtt_in",
            "event_in",
        ]
    ),
)
anything = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
        st.tuples(children, children),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=12,
)
field_values = st.one_of(
    scalars, st.integers(-3, 3), st.sampled_from([2, 100, -10, -1, 0]), anything
)
records = st.one_of(
    anything,
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add_label", "rm_label", "create_model", "cell_clear", "nope"])},
        optional={
            f: field_values
            for f in ("model_id", "id", "p", "r", "c", "k", "t", "v", "name", "type")
        },
    ),
)
envelopes = st.one_of(
    anything,
    st.fixed_dictionaries(
        {
            "version": st.sampled_from(["mt.v0", "mt.v1", 0]),
            "op_id": st.one_of(st.text(max_size=6), scalars),
            "records": st.one_of(st.lists(records, max_size=8), anything),
        },
    ),
)


def _runtime() -> Runtime:
    runtime = Runtime(RecordingHost())
    for name in ("remote_worker", "color_form"):
        runtime.load_program(programs.load(name))
    return runtime


def _functions(runtime: Runtime) -> dict[Any, Any]:
    return {
        (mid, key, k): label
        for mid, key, label in runtime.table.iter_labels()
        for k in [label.k]
        if label.t in FUNCTION_TYPES
    }


@FUZZ
@given(st.lists(envelopes, min_size=1, max_size=4), st.booleans())
def test_arbitrary_patches_never_crash_or_corrupt(patches: list[Any], create: bool) -> None:
    runtime = _runtime()
    functions = _functions(runtime)
    for patch in patches:
        before = snapshot_bytes(runtime.table)
        result = runtime.apply_patch(patch, allow_create_model=create)  # untrusted
        if result.refused or result.duplicate:
            assert snapshot_bytes(runtime.table) == before
        else:
            assert result.applied + result.rejected == len(patch["records"])
            assert len(result.errors) == result.rejected
        # the table still serialises and loads back to the same bytes
        again = from_snapshot(to_snapshot(runtime.table))
        assert snapshot_bytes(again) == snapshot_bytes(runtime.table)
    assert _functions(runtime) == functions, "an untrusted patch changed a function label"


@FUZZ
@given(anything)
def test_arbitrary_pin_values_never_take_the_worker_down(value: Any) -> None:
    runtime = _runtime()
    try:
        runs = runtime.write_pin(100, "event_in", value)
    except Exception as exc:  # only the documented refusal
        from dongyu.errors import RecordRejected

        assert isinstance(exc, RecordRejected), repr(exc)
        return
    assert len(runs) == 1
    # the colour function refuses what it cannot read, as an error event, and the engine goes on
    assert runtime.write_pin(2, "mqtt_in", {"action": "after"})[0].ok
