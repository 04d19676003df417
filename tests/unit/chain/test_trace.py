"""The UI server's record of applied replies (dongyu.ui.trace) and the bench's statistics."""

from __future__ import annotations

import pytest

from dongyu.bench.stats import order_violations, percentile, segments_ms, summary
from dongyu.messages.bus import BusMessage
from dongyu.messages.hops import Hop
from dongyu.ui.trace import TraceLog
from tests.unit.chain.common import ui_core


def test_lookup_by_event_or_reply_op_id() -> None:
    log = TraceLog()
    log.add("e1:reply", (Hop("worker.reply", 5),))
    found = log.get("e1")
    assert found is not None and found.op_id == "e1:reply" and found.seq == 1
    assert log.get("e1:reply") is found
    assert log.get("e2") is None


def test_since_lists_in_the_order_applied_and_is_bounded() -> None:
    log = TraceLog(capacity=3)
    for n in range(5):
        log.add(f"e{n}:reply", ())
    assert len(log) == 3 and log.last_seq == 5
    assert [t.op_id for t in log.since(0)] == ["e2:reply", "e3:reply", "e4:reply"]
    assert [t.seq for t in log.since(3)] == [4, 5]
    assert [t.seq for t in log.since(2, limit=1)] == [3]
    assert log.since(5) == [] and log.since(0, limit=0) == []


def test_a_repeated_op_id_moves_to_the_end() -> None:
    log = TraceLog()
    log.add("a", ())
    log.add("b", ())
    log.add("a", ())
    assert [(t.op_id, t.seq) for t in log.since(0)] == [("b", 2), ("a", 3)]
    with pytest.raises(ValueError):
        TraceLog(capacity=0)


def test_ui_core_records_applied_replies_in_order_and_counts_duplicates() -> None:
    core = ui_core()
    hops = [{"hop": "ui_server.received", "ts_us": 10}]
    for n in (1, 2, 1):
        patch = {"version": "mt.v0", "op_id": f"e{n}:reply", "records": [], "hops": hops}
        core.apply_delta(BusMessage("snapshot_delta", f"e{n}:reply", payload=patch))
    assert [t.op_id for t in core.traces_since(0)] == ["e1:reply", "e2:reply"]
    assert core.duplicate_deltas == 1
    trace = core.trace("e2")
    assert trace is not None and [h["hop"] for h in trace][-1] == "ui_server.applied"


def test_accept_numbers_events_in_order() -> None:
    from tests.unit.chain.common import NOW_MS, body

    core = ui_core()
    seqs = [core.accept(body(op_id=f"s{n}"), now_ms=NOW_MS).seq for n in range(3)]
    assert seqs == [1, 2, 3]


def test_segments_between_known_hops() -> None:
    hops = [
        {"hop": "ui_server.received", "ts_us": 0},
        {"hop": "mbr.received", "ts_us": 30_000},
        {"hop": "mbr.to_mqtt", "ts_us": 30_100},
        {"hop": "worker.received", "ts_us": 30_400},
        {"hop": "worker.reply", "ts_us": 30_600},
        {"hop": "mbr.to_matrix", "ts_us": 31_000},
        {"hop": "ui_server.applied", "ts_us": 61_000},
    ]
    segs = segments_ms(hops)
    assert segs["ui_server.received->mbr.received"] == 30.0
    assert segs["worker.received->worker.reply"] == 0.2
    assert segs["total"] == 61.0
    assert segments_ms(hops[:2]) == {"ui_server.received->mbr.received": 30.0}


def test_percentiles_and_summary() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.5
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 100.0
    s = summary(values)
    assert s["n"] == 100 and s["p50"] == 50.5 and s["max"] == 100.0
    assert summary([]) == {"n": 0}


def test_order_violations() -> None:
    expected = ["a", "b", "c", "d"]
    assert order_violations(expected, ["a", "b", "c", "d"]) == 0
    assert order_violations(expected, ["b", "a", "c", "d"]) == 1
    assert order_violations(expected, ["d", "a", "b", "c"]) == 1
    assert order_violations(expected, ["d", "c", "b", "a"]) == 3
    assert order_violations(expected, ["a", "x", "c"]) == 0
