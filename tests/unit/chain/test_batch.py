"""Several bus messages in one Matrix event (dongyu.messages.batch) and their receivers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dongyu.errors import ValidationError
from dongyu.messages.batch import (
    BATCH_TYPE,
    MAX_BATCH_MESSAGES,
    encoded_size,
    group,
    pack,
    unpack,
)
from dongyu.messages.bus import BusMessage
from tests.unit.chain.common import bridge, ui_message


def _msg(n: int) -> dict[str, Any]:
    return {"version": "v0", "type": "ui_event", "op_id": f"op-{n}", "data": {"n": n}}


def test_a_single_message_is_sent_as_it_is() -> None:
    assert pack([_msg(1)]) == _msg(1)
    assert unpack(_msg(1)) == [_msg(1)]


def test_pack_then_unpack_keeps_the_order() -> None:
    messages = [_msg(n) for n in range(5)]
    content = pack(messages)
    assert content["type"] == BATCH_TYPE and content["version"] == "v0"
    assert content["op_id"] == "batch:op-0+4"
    assert unpack(content) == messages
    # what a receiver gets is JSON all the way (the event content as Matrix stores it)
    assert unpack(json.loads(json.dumps(content))) == messages


def test_pack_needs_a_message() -> None:
    with pytest.raises(ValueError):
        pack([])


@pytest.mark.parametrize(
    "content",
    [
        {"version": "v0", "type": "batch"},
        {"version": "v0", "type": "batch", "messages": []},
        {"version": "v0", "type": "batch", "messages": "x"},
        {"version": "v1", "type": "batch", "messages": [{}]},
        {"version": "v0", "type": "batch", "messages": [{"type": "batch", "messages": [{}]}]},
        {"version": "v0", "type": "batch", "messages": [{}] * (MAX_BATCH_MESSAGES + 1)},
    ],
)
def test_a_bad_batch_is_refused_whole(content: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        unpack(content)


def test_group_respects_count_and_bytes_and_order() -> None:
    assert group([]) == []
    assert group([10, 10, 10], max_bytes=25) == [range(0, 2), range(2, 3)]
    assert group([10] * 5, max_count=2) == [range(0, 2), range(2, 4), range(4, 5)]
    # a message larger than the limit travels alone
    assert group([5, 100, 5], max_bytes=50) == [range(0, 1), range(1, 2), range(2, 3)]


@given(
    st.lists(st.integers(min_value=1, max_value=500), max_size=60),
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=1, max_value=10),
)
def test_group_covers_every_message_once_in_order(
    sizes: list[int], max_bytes: int, max_count: int
) -> None:
    groups = group(sizes, max_bytes=max_bytes, max_count=max_count)
    assert [i for g in groups for i in g] == list(range(len(sizes)))
    for g in groups:
        assert 1 <= len(g) <= max_count
        assert len(g) == 1 or sum(sizes[i] for i in g) <= max_bytes


def test_a_packed_batch_stays_under_the_size_limit() -> None:
    messages = [_msg(n) for n in range(500)]
    sizes = [encoded_size(m) for m in messages]
    for part in group(sizes):
        assert encoded_size(pack([messages[i] for i in part])) < 65_536 - 2_000


def test_the_bridge_unpacks_a_batch_in_order() -> None:
    core = bridge()
    contents = [ui_message(op_id=f"b-{n}") for n in range(3)]
    publishes = core.from_matrix_event(pack(contents))
    assert [p.payload["op_id"] for p in publishes] == ["b-0", "b-1", "b-2"]
    # a single message still works, and duplicates inside a later batch are dropped
    assert core.from_matrix_event(contents[0]) == []
    assert core.metrics.duplicates == 1
    assert core.from_matrix_event({"version": "v0", "type": "batch", "messages": []}) == []
    assert core.metrics.rejected == {"invalid_value": 1}


def test_a_batch_is_not_a_bus_message() -> None:
    # a receiver that does not unpack refuses it rather than misreading it
    with pytest.raises(ValidationError):
        BusMessage.from_dict(pack([_msg(1), _msg(2)]))
