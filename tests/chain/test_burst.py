"""A burst of UI events through the real chain: each one reaches the worker exactly once,
and the replies come back in the order the UI server accepted the events (which, with
many requests in flight, is when batching on the buses kicks in)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dongyu.stack.local import LocalStack
from tests.chain.conftest import http, metrics, ui_event

EVENTS = 200


def _applied_since(stack: LocalStack, since: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        status, page = http("GET", f"{stack.ui_url}/trace?since={since}&limit=1000")
        assert status == 200, page
        if not page["traces"]:
            return out
        out.extend(page["traces"])
        since = page["traces"][-1]["seq"]


def test_a_burst_arrives_exactly_once_and_in_order(stack: LocalStack) -> None:
    worker_metrics = f"http://127.0.0.1:{stack.ports.worker_health}/metrics"
    mbr_metrics = f"http://127.0.0.1:{stack.ports.mbr_health}/metrics"
    status, before = http("GET", f"{stack.ui_url}/trace?since=0&limit=1")
    assert status == 200
    since = before["last_seq"]
    worker_before, mbr_before = metrics(worker_metrics), metrics(mbr_metrics)

    run = uuid.uuid4().hex[:6]
    op_ids = [f"burst-{run}-{n}" for n in range(EVENTS)]

    def post(n: int) -> tuple[str, int, Any]:
        colour = f"#{(n * 7919) % 0xFFFFFF:06x}"
        code, answer = http(
            "POST", f"{stack.ui_url}/ui_event", ui_event(100, "input_value", colour, op_ids[n])
        )
        return op_ids[n], code, answer

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(post, range(EVENTS)))
    assert [code for _, code, _ in answers] == [200] * EVENTS, answers
    accepted = [op for _, op in sorted((a["seq"], op) for op, _, a in answers)]
    expected = [f"{op}:reply" for op in accepted]

    deadline = time.monotonic() + 90
    applied: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        applied = [t for t in _applied_since(stack, since) if t["op_id"] in set(expected)]
        if len(applied) >= EVENTS:
            break
        time.sleep(0.2)
    got = [t["op_id"] for t in applied]
    assert got == expected, "each reply applied once, in the order the events were accepted"
    assert all(t["ok"] for t in applied)

    # the worker handled them in that order too (its own stamp in each reply)
    received = [
        next(h["ts_us"] for h in t["hops"] if h["hop"] == "worker.received") for t in applied
    ]
    assert received == sorted(received)

    worker_after, mbr_after = metrics(worker_metrics), metrics(mbr_metrics)

    def delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert delta(worker_after, worker_before, "dongyu_worker_messages_in_total") == EVENTS
    assert delta(worker_after, worker_before, "dongyu_worker_messages_out_total") == EVENTS
    assert delta(worker_after, worker_before, "dongyu_worker_duplicates_total") == 0
    assert delta(worker_after, worker_before, "dongyu_worker_function_errors_total") == 0
    assert delta(mbr_after, mbr_before, "dongyu_mbr_duplicates_total") == 0
    # replies were coalesced: fewer Matrix events than replies
    assert delta(mbr_after, mbr_before, "dongyu_mbr_to_matrix_total") < EVENTS
