"""Fuzzing POST /ui_event of the real UI server (hypothesis): every answer is 200 or a 4xx
with a reason, never a 5xx; the server stays healthy; refused bodies change nothing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dongyu.core.snapshot import from_snapshot
from dongyu.stack.local import LocalStack
from tests.chain.conftest import http, ui_event

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False),
        st.text(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
VALID = ui_event(100, "input_value", "#abcdef", "fuzz")


def _mutations() -> st.SearchStrategy[Any]:
    """Valid bodies with one field replaced by something else."""
    paths = [
        ("source",),
        ("type",),
        ("payload",),
        ("payload", "action"),
        ("payload", "meta"),
        ("payload", "meta", "op_id"),
        ("payload", "target"),
        ("payload", "target", "model_id"),
        ("payload", "target", "p"),
        ("payload", "target", "k"),
        ("payload", "value"),
        ("payload", "value", "t"),
        ("payload", "value", "v"),
    ]

    def mutate(path: tuple[str, ...], value: Any) -> Any:
        body = json.loads(json.dumps(VALID))
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return body

    return st.builds(mutate, st.sampled_from(paths), json_values)


@FUZZ
@given(st.one_of(json_values, _mutations(), st.binary(max_size=64)))
def test_post_ui_event_never_fails_the_server(stack: LocalStack, body: Any) -> None:
    url = f"{stack.ui_url}/ui_event"
    before = http("GET", f"{stack.ui_url}/snapshot")[1]
    if isinstance(body, bytes):
        status, answer = http("POST", url, raw=body)
    else:
        status, answer = http("POST", url, raw=json.dumps(body).encode())
    assert status in (200, 400, 413), (status, answer)
    if status == 200:
        assert answer["status"] == "sent" and answer["event_id"].startswith("$")
    else:
        assert answer["error"] and answer["reason"], answer
        after = http("GET", f"{stack.ui_url}/snapshot")[1]
        # the worker's replies to earlier valid events may still arrive: compare the mailbox only
        assert after["snapshot"]["models"].get("-1") == before["snapshot"]["models"].get("-1")
    assert http("GET", f"{stack.ui_url}/healthz")[0] == 200
    from_snapshot(http("GET", f"{stack.ui_url}/snapshot")[1]["snapshot"])  # still a valid table
