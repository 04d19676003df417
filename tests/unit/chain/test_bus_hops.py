"""BusMessage (the ``dy.bus.v0`` content, spec 5) and per-hop timestamps."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dongyu.errors import ValidationError
from dongyu.messages.bus import MESSAGE_TYPES, BusMessage
from dongyu.messages.hops import MAX_HOPS, Hop, now_us, parse_hops, stamp
from dongyu.messages.ui_event import UiEvent
from dongyu.patch.envelope import MAX_OP_ID_LENGTH
from tests.unit.chain.common import floats_in, hop_names, ui_message

FULL: dict[str, Any] = {
    "version": "v0",
    "type": "snapshot_delta",
    "op_id": "op-9",
    "action": "label_update",
    "data": {"b": [1, None, True], "a": "x"},
    "payload": {"version": "mt.v0", "op_id": "op-9", "records": []},
    "source_model_id": -10,
    "timestamp": 1_700_000_000_000,
    "trace": {"room_id": "!r:localhost", "event_id": "$e", "sender": "@mbr:localhost"},
    "hops": [{"hop": "a.b", "ts_us": 0}, {"hop": "c.d", "ts_us": 2**53 - 1}],
}


def test_round_trip_every_field() -> None:
    message = BusMessage.from_dict(FULL)
    assert message.type == "snapshot_delta" and message.op_id == "op-9"
    assert message.source_model_id == -10 and message.timestamp == 1_700_000_000_000
    assert message.hops == (Hop("a.b", 0), Hop("c.d", 2**53 - 1))
    assert message.to_dict() == FULL
    assert BusMessage.from_dict(message.to_dict()) == message


def test_minimal_message_and_absent_fields() -> None:
    message = BusMessage.from_dict({"version": "v0", "type": "mbr_ready", "op_id": "r1"})
    assert message == BusMessage("mbr_ready", "r1")
    assert message.to_dict() == {"version": "v0", "type": "mbr_ready", "op_id": "r1"}
    # unknown fields are not carried
    extra = BusMessage.from_dict({"version": "v0", "type": "error", "op_id": "e", "zzz": 1})
    assert "zzz" not in extra.to_dict()


def test_from_dict_copies_its_input() -> None:
    raw = ui_message()
    message = BusMessage.from_dict(raw)
    raw["data"]["target"]["model_id"] = 7
    assert isinstance(message.data, dict) and message.data["target"]["model_id"] == 100


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_every_type_is_known(kind: str) -> None:
    assert BusMessage.from_dict({"version": "v0", "type": kind, "op_id": "x"}).type == kind


def _with(**changes: Any) -> dict[str, Any]:
    raw = dict(FULL)
    for key, value in changes.items():
        if value is KeyError:
            del raw[key]
        else:
            raw[key] = value
    return raw


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [FULL], "a bus message must be an object, got list"),
    ("no version", _with(version=KeyError), "'version' must be 'v0', got None"),
    ("wrong version", _with(version="v1"), "'version' must be 'v0', got 'v1'"),
    ("patch version", _with(version="mt.v0"), "got 'mt.v0'"),
    ("unknown type", _with(type="label_add"), "unknown message type 'label_add'"),
    ("no type", _with(type=KeyError), "unknown message type None"),
    ("no op_id", _with(op_id=KeyError), "'op_id' must be a non-empty string"),
    ("empty op_id", _with(op_id=""), "'op_id' must be a non-empty string"),
    ("int op_id", _with(op_id=12), "'op_id' must be a non-empty string"),
    ("long op_id", _with(op_id="x" * (MAX_OP_ID_LENGTH + 1)), f"at most {MAX_OP_ID_LENGTH}"),
    ("int action", _with(action=3), "'action' must be a string"),
    ("float timestamp", _with(timestamp=1.7e12), "'timestamp' must be an integer, got float"),
    ("str timestamp", _with(timestamp="1700000000000"), "'timestamp' must be an integer, got str"),
    ("bool timestamp", _with(timestamp=True), "'timestamp' must be an integer, got bool"),
    ("float model", _with(source_model_id=100.0), "'source_model_id' must be an integer, got float"),
    ("trace list", _with(trace=["x"]), "'trace' must be an object"),
    ("NaN data", _with(data={"v": math.nan}), "not JSON: non-finite float nan"),
    ("set data", _with(data={1, 2}), "not JSON: set is not a JSON value"),
    ("inf payload", _with(payload=[math.inf]), "not JSON: non-finite float inf"),
    ("tuple trace", _with(trace={"a": (1,)}), "not JSON: tuple is not a JSON value"),
    ("hops object", _with(hops={"hop": "x"}), "'hops' must be a list, got dict"),
    ("float hop", _with(hops=[{"hop": "x", "ts_us": 1.5}]), "hop 'x' needs an integer 'ts_us'"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_refusals(raw: Any, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        BusMessage.from_dict(raw)
    assert words in err.value.detail


@pytest.mark.parametrize("field", ["version", "type"])
def test_a_huge_integer_is_refused_not_crashed_on(field: str) -> None:
    """repr() of an int beyond 4,300 digits raises ValueError; the refusal must not."""
    raw = _with(**{field: 1 << 15_000})
    with pytest.raises(ValidationError) as err:
        BusMessage.from_dict(raw)
    assert "integer of 15001 bits" in err.value.detail
    ui = {"source": "s", "type": "t", "payload": {"action": -(1 << 15_000)}}
    with pytest.raises(ValidationError) as err2:
        UiEvent.from_dict(ui)
    assert err2.value.code == "unknown_action" and "15001 bits" in err2.value.detail


def test_a_long_bad_value_is_cut_in_the_reason() -> None:
    with pytest.raises(ValidationError) as err:
        BusMessage.from_dict(_with(type="x" * 100_000))
    assert len(err.value.detail) < 300


# ---- property: round trip and only ValidationError --------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.text(max_size=6)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=15,
)
hops_lists = st.lists(
    st.builds(Hop, st.text(min_size=1, max_size=10), st.integers(0, 2**53 - 1)), max_size=5
).map(tuple)


messages = st.builds(
    BusMessage,
    st.sampled_from(MESSAGE_TYPES),
    st.text(min_size=1, max_size=20),
    st.one_of(st.none(), st.text(max_size=10)),
    json_values.map(lambda v: BusMessage.from_dict({"version": "v0", "type": "error", "op_id": "x", "data": v}).data),
    json_values.map(lambda v: BusMessage.from_dict({"version": "v0", "type": "error", "op_id": "x", "payload": v}).payload),
    st.one_of(st.none(), st.integers(-(2**40), 2**40)),
    st.one_of(st.none(), st.integers(0, 2**50)),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=5), json_scalars, max_size=3).map(
        lambda d: {k: d[k] for k in sorted(d)})),
    hops_lists,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip_property(message: BusMessage) -> None:
    raw = message.to_dict()
    assert raw["version"] == "v0"
    assert BusMessage.from_dict(raw) == message
    assert floats_in(raw) == []


anything = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.sampled_from(["v0", "ui_event", "hops", "hop", "ts_us"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["version", "type", "op_id", "data", "hops", "hop", "ts_us", "trace"]),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(anything, st.sampled_from(MESSAGE_TYPES))
def test_only_validation_error_property(raw: Any, kind: str) -> None:
    if isinstance(raw, dict) and raw.get("version") == "v0":
        raw.setdefault("type", kind)
    try:
        message = BusMessage.from_dict(raw)
    except ValidationError as exc:
        assert exc.detail
    else:
        assert BusMessage.from_dict(message.to_dict()) == message


# ---- hops --------------------------------------------------------------------


def test_stamp_appends_to_absent_or_existing_hops() -> None:
    first = stamp(None, "ui_server.received", 10)
    assert first == [{"hop": "ui_server.received", "ts_us": 10}]
    second = stamp(first, "mbr.received", 20)
    assert second == [*first, {"hop": "mbr.received", "ts_us": 20}]
    assert len(first) == 1  # a copy, the input is untouched
    assert hop_names(stamp([], "x", 1)) == ["x"]


def test_stamp_uses_integer_microseconds_now() -> None:
    before = now_us()
    (hop,) = stamp(None, "now")
    after = now_us()
    assert type(hop["ts_us"]) is int
    assert before <= hop["ts_us"] <= after < 2**53
    # microseconds, not ms or ns: after 2020, before 2100
    assert 1_577_836_800_000_000 < hop["ts_us"] < 4_102_444_800_000_000


def test_stamp_keeps_the_list_bounded() -> None:
    hops: list[dict[str, Any]] = []
    for i in range(MAX_HOPS * 2):
        hops = stamp(hops, f"h{i}", i)
        assert len(hops) <= MAX_HOPS
    assert len(hops) == MAX_HOPS
    assert hops[-1] == {"hop": f"h{MAX_HOPS * 2 - 1}", "ts_us": MAX_HOPS * 2 - 1}
    assert hops[0]["hop"] == f"h{MAX_HOPS}"  # the oldest went first
    assert len(parse_hops(hops)) == MAX_HOPS


def test_too_many_hops_are_refused() -> None:
    hops = [{"hop": "x", "ts_us": 1}] * (MAX_HOPS + 1)
    with pytest.raises(ValidationError, match=f"more than {MAX_HOPS}"):
        parse_hops(hops)
    with pytest.raises(ValidationError):
        stamp(hops, "y", 2)


@pytest.mark.parametrize(
    ("hop", "words"),
    [
        ("x", "a hop must be an object, got str"),
        ({"ts_us": 1}, "non-empty string 'hop'"),
        ({"hop": "", "ts_us": 1}, "non-empty string 'hop'"),
        ({"hop": 3, "ts_us": 1}, "non-empty string 'hop'"),
        ({"hop": "x"}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": 1.0}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": 1.5}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": "1"}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": True}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": -1}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": 2**53}, "integer 'ts_us'"),
        ({"hop": "x", "ts_us": 1 << 15_000}, "integer 'ts_us'"),
    ],
)
def test_malformed_hops_are_refused(hop: Any, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_hops([{"hop": "ok", "ts_us": 5}, hop])
    assert words in err.value.detail
    with pytest.raises(ValidationError):
        stamp([hop], "next", 6)


@pytest.mark.parametrize("ts", [1.5, -1, 2**53, True])
def test_stamp_refuses_a_bad_timestamp_of_its_own(ts: Any) -> None:
    with pytest.raises(ValidationError):
        stamp(None, "x", ts)


def test_stamp_refuses_an_empty_name() -> None:
    with pytest.raises(ValidationError):
        stamp(None, "", 1)


def test_parse_hops_absent_and_largest() -> None:
    assert parse_hops(None) == ()
    assert parse_hops([{"hop": "x", "ts_us": 2**53 - 1}]) == (Hop("x", 2**53 - 1),)
    with pytest.raises(ValidationError, match="'hops' must be a list"):
        parse_hops("x")


@given(st.lists(st.integers(0, 2**53 - 1), max_size=3 * MAX_HOPS))
def test_stamp_property(stamps: list[int]) -> None:
    hops: Any = None
    for i, ts in enumerate(stamps):
        hops = stamp(hops, f"h{i}", ts)
    if not stamps:
        return
    assert len(hops) == min(len(stamps), MAX_HOPS)
    assert [h["ts_us"] for h in hops] == stamps[-MAX_HOPS:]
    assert all(type(h["ts_us"]) is int and 0 <= h["ts_us"] < 2**53 for h in hops)
