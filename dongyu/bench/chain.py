"""The chain, driven over HTTP like a browser would: sequential round trips and a burst.

Both listen to the UI server's ``GET /events`` (server-sent events): an event's
round trip ends when the ``changes`` message of its reply (``<op_id>:reply``)
arrives, i.e. once the UI server has applied the worker's reply to its table
and pushed it. The per-hop figures come from ``GET /trace``: the hops the
messages carried, stamped by each component.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from dongyu.adapters.http.client import HttpClient
from dongyu.bench.stats import order_violations, segments_ms, summary
from dongyu.worker.metrics import parse_prometheus

log = logging.getLogger("dongyu.bench.chain")

COLOUR_MODEL = 100
Progress = Callable[[str], None]


def ui_event(op_id: str, colour: str, model_id: int = COLOUR_MODEL) -> dict[str, Any]:
    """A browser's colour form Submit (spec 7.1)."""
    return {
        "source": "ui_renderer",
        "type": "label_add",
        "payload": {
            "action": "label_update",
            "meta": {"op_id": op_id},
            "target": {"model_id": model_id, "p": 0, "r": 0, "c": 0, "k": "input_value"},
            "value": {"t": "str", "v": colour},
        },
    }


def colour_of(n: int) -> str:
    return f"#{n % 0xFFFFFF:06x}"


class Replies:
    """Follows ``GET /events``: when each reply's changes arrived (perf_counter seconds)."""

    def __init__(self, http: HttpClient, ui_url: str) -> None:
        self.http = http
        self.url = f"{ui_url}/events"
        self.arrived: dict[str, float] = {}
        self.order: list[str] = []
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Replies:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async for name, data in self.http.sse(self.url):
            self._connected.set()  # the server's first line (": connected") came
            if name != "changes":
                continue
            now = time.perf_counter()
            op_id = json.loads(data).get("op_id")
            if not isinstance(op_id, str):
                continue
            self.arrived.setdefault(op_id, now)
            self.order.append(op_id)
            future = self._waiting.pop(op_id, None)
            if future is not None and not future.done():
                future.set_result(now)

    def expect(self, op_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if op_id in self.arrived:
            future.set_result(self.arrived[op_id])
        else:
            self._waiting[op_id] = future
        return future


async def _sse_ready(http: HttpClient, ui_url: str, replies: Replies) -> None:
    """Wait until the stream really delivers (one event through the chain)."""
    op_id = f"bench-ready-{uuid.uuid4().hex[:8]}"
    reply = replies.expect(f"{op_id}:reply")
    status, answer = await http.post_json(f"{ui_url}/ui_event", ui_event(op_id, "#123456"))
    if status != 200:
        raise RuntimeError(f"POST /ui_event answered {status}: {answer}")
    await asyncio.wait_for(reply, 30)


async def traces(http: HttpClient, ui_url: str, since: int) -> dict[str, Any]:
    """Every record of ``GET /trace`` after ``since`` (paged)."""
    out: list[dict[str, Any]] = []
    last = since
    info: dict[str, Any] = {}
    while True:
        status, info = await http.get_json(f"{ui_url}/trace?since={last}&limit=1000")
        if status != 200:
            raise RuntimeError(f"GET /trace answered {status}: {info}")
        page = info["traces"]
        out.extend(page)
        if not page:
            break
        last = page[-1]["seq"]
    info["traces"] = out
    return info


async def round_trips(
    ui_url: str, rounds: int, *, warmup: int = 5, gap_s: float = 0.05, say: Progress = print
) -> dict[str, Any]:
    """``rounds`` sequential UI events; client-side latency and per-hop figures."""
    async with HttpClient(connections=4) as http, Replies(http, ui_url) as replies:
        await _sse_ready(http, ui_url, replies)
        run = uuid.uuid4().hex[:8]
        total_ms: list[float] = []
        post_ms: list[float] = []
        op_ids: list[str] = []
        for i in range(-warmup, rounds):
            op_id = f"bench-rt-{run}-{i + warmup}"
            reply = replies.expect(f"{op_id}:reply")
            t0 = time.perf_counter()
            status, answer = await http.post_json(
                f"{ui_url}/ui_event", ui_event(op_id, colour_of(10_000 + i + warmup))
            )
            t1 = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"POST /ui_event answered {status}: {answer}")
            t2 = await asyncio.wait_for(reply, 30)
            if i >= 0:
                total_ms.append((t2 - t0) * 1000)
                post_ms.append((t1 - t0) * 1000)
                op_ids.append(op_id)
                if (i + 1) % 20 == 0:
                    ordered = sorted(total_ms)
                    say(
                        f"  round trip {i + 1}/{rounds}: median so far "
                        f"{ordered[len(ordered) // 2]:.1f} ms"
                    )
            await asyncio.sleep(gap_s)
        hops: dict[str, list[float]] = {}
        per_event: list[dict[str, Any]] = []
        for op_id, total in zip(op_ids, total_ms, strict=True):
            status, found = await http.get_json(f"{ui_url}/trace/{op_id}")
            if status != 200:
                continue
            segs = segments_ms(found["hops"])
            per_event.append({"op_id": op_id, "client_ms": round(total, 3), "hops_ms": segs})
            for name, value in segs.items():
                hops.setdefault(name, []).append(value)
    return {
        "rounds": rounds,
        "round_trip_ms": summary(total_ms),
        "post_ms": summary(post_ms),
        "hops_ms": {name: summary(values) for name, values in hops.items()},
        "samples_ms": [round(v, 3) for v in total_ms],
        "events": per_event,
    }


def _metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return parse_prometheus(answer.read().decode())


async def burst(
    ui_url: str,
    worker_metrics_url: str,
    mbr_metrics_url: str,
    events: int,
    *,
    concurrency: int = 64,
    timeout_s: float = 300.0,
    sample_rss: Callable[[], None] | None = None,
    say: Progress = print,
) -> dict[str, Any]:
    """``events`` UI events sent as fast as the client can (``concurrency`` requests in
    flight); checks each was applied by the worker exactly once and in order."""
    async with HttpClient(connections=concurrency) as http, Replies(http, ui_url) as replies:
        await _sse_ready(http, ui_url, replies)
        worker_before = await asyncio.to_thread(_metrics, worker_metrics_url)
        mbr_before = await asyncio.to_thread(_metrics, mbr_metrics_url)
        before = await traces(http, ui_url, 0)
        since = before["last_seq"]
        run = uuid.uuid4().hex[:8]
        op_ids = [f"bench-burst-{run}-{i}" for i in range(events)]
        answers: dict[str, tuple[int, Any]] = {}
        slots = asyncio.Semaphore(concurrency)
        posted: list[float] = []

        async def send(i: int, op_id: str) -> None:
            async with slots:
                try:
                    answers[op_id] = await http.post_json(
                        f"{ui_url}/ui_event", ui_event(op_id, colour_of(20_000 + i))
                    )
                except Exception as exc:
                    answers[op_id] = (0, repr(exc))
                posted.append(time.perf_counter())

        futures = [replies.expect(f"{op_id}:reply") for op_id in op_ids]
        t0 = time.perf_counter()
        senders = [asyncio.create_task(send(i, op)) for i, op in enumerate(op_ids)]
        deadline = t0 + timeout_s
        last_report = t0
        while time.perf_counter() < deadline:
            done = sum(f.done() for f in futures)
            if sample_rss is not None:
                sample_rss()
            now = time.perf_counter()
            if now - last_report >= 2:
                say(f"  burst: {len(posted)}/{events} accepted, {done}/{events} applied")
                last_report = now
            if done == events:
                break
            await asyncio.sleep(0.02)
        await asyncio.gather(*senders)
        applied_at = [f.result() for f in futures if f.done()]
        drained_s = (max(applied_at) - t0) if applied_at else float("nan")
        accepted_s = (max(posted) - t0) if posted else float("nan")
        after = await traces(http, ui_url, since)
    worker_after = await asyncio.to_thread(_metrics, worker_metrics_url)
    mbr_after = await asyncio.to_thread(_metrics, mbr_metrics_url)

    def delta(after: dict[str, float], before: dict[str, float], name: str) -> int:
        return int(after.get(name, 0) - before.get(name, 0))

    statuses: dict[str, int] = {}
    for status, _ in answers.values():
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    # the order the UI server accepted them (the order on the bus), from the POST answers
    accepted = sorted(
        (a[1]["seq"], op)
        for op, a in answers.items()
        if a[0] == 200 and isinstance(a[1], dict) and "seq" in a[1]
    )
    bus_order = [f"{op}:reply" for _, op in accepted]
    ours = set(bus_order)
    applied = [t for t in after["traces"] if t["op_id"] in ours]
    applied_order = [t["op_id"] for t in applied]
    worker_ts = {}
    for t in applied:
        for hop in t["hops"]:
            if hop["hop"] == "worker.received":
                worker_ts[t["op_id"]] = hop["ts_us"]
                break
    worker_order = [op for op in sorted(worker_ts, key=lambda op: worker_ts[op])]
    seen_sse = [op for op in replies.order if op in ours]
    result = {
        "events": events,
        "concurrency": concurrency,
        "post_status": statuses,
        "accepted": len(accepted),
        "applied_by_ui_server": len(set(applied_order)),
        "pushed_to_page": len(set(seen_sse)),
        "pushed_twice": len(seen_sse) - len(set(seen_sse)),
        "applied_twice": len(applied_order) - len(set(applied_order)),
        "worker_messages_in": delta(worker_after, worker_before, "dongyu_worker_messages_in_total"),
        "worker_replies": delta(worker_after, worker_before, "dongyu_worker_messages_out_total"),
        "worker_duplicates": delta(worker_after, worker_before, "dongyu_worker_duplicates_total"),
        "worker_function_errors": delta(
            worker_after, worker_before, "dongyu_worker_function_errors_total"
        ),
        "worker_rejected": delta(worker_after, worker_before, "dongyu_worker_rejected_total"),
        "mbr_duplicates": delta(mbr_after, mbr_before, "dongyu_mbr_duplicates_total"),
        "mbr_matrix_events_sent": delta(mbr_after, mbr_before, "dongyu_mbr_to_matrix_total"),
        "ui_duplicate_deltas": after.get("duplicate_deltas", 0) - before.get("duplicate_deltas", 0),
        "order_violations_ui_server": order_violations(bus_order, applied_order),
        "order_violations_worker": order_violations(bus_order, worker_order),
        "accepted_s": round(accepted_s, 3),
        "drain_s": round(drained_s, 3),
        "events_per_s": round(events / drained_s, 1) if applied_at else 0.0,
        "applied_curve_s": [round(t - t0, 4) for t in sorted(applied_at)],
    }
    hop_values: dict[str, list[float]] = {}
    for t in applied:
        for name, value in segments_ms(t["hops"]).items():
            hop_values.setdefault(name, []).append(value)
    result["hops_ms"] = {name: summary(v) for name, v in hop_values.items()}
    return result
