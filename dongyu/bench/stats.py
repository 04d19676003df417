"""Summary statistics of latency samples (pure)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99, min, max (rounded to 0.001)."""
    if not values:
        return {"n": 0}
    out = {
        "n": len(values),
        "mean": statistics.fmean(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
    }
    return {k: (v if k == "n" else round(v, 3)) for k, v in out.items()}


HOP_ORDER = (
    "ui_server.received",
    "mbr.received",
    "mbr.to_mqtt",
    "worker.received",
    "worker.reply",
    "mbr.to_matrix",
    "ui_server.applied",
)
SEGMENTS = {
    "ui_server.received->mbr.received": "Matrix hop UI server -> MBR (send + sync)",
    "mbr.received->mbr.to_mqtt": "MBR translating",
    "mbr.to_mqtt->worker.received": "MQTT hop MBR -> worker",
    "worker.received->worker.reply": "worker running the function",
    "worker.reply->mbr.to_matrix": "MQTT hop worker -> MBR",
    "mbr.to_matrix->ui_server.applied": "Matrix hop MBR -> UI server (send + sync + apply)",
}


def segments_ms(hops: Sequence[dict[str, object]]) -> dict[str, float]:
    """Milliseconds between consecutive known hops of one trace, keyed ``a->b``."""
    stamps: dict[str, int] = {}
    for hop in hops:
        name, ts = hop.get("hop"), hop.get("ts_us")
        if isinstance(name, str) and isinstance(ts, int) and name not in stamps:
            stamps[name] = ts
    out: dict[str, float] = {}
    for a, b in itertools.pairwise(HOP_ORDER):
        if a in stamps and b in stamps:
            out[f"{a}->{b}"] = (stamps[b] - stamps[a]) / 1000
    if HOP_ORDER[0] in stamps and HOP_ORDER[-1] in stamps:
        out["total"] = (stamps[HOP_ORDER[-1]] - stamps[HOP_ORDER[0]]) / 1000
    return out


def order_violations(expected: Sequence[str], observed: Sequence[str]) -> int:
    """How many of ``observed`` (each once) come out of ``expected``'s order: the number of
    elements not on a longest increasing run, i.e. ``len - LIS`` of their positions."""
    position = {op: i for i, op in enumerate(expected)}
    ranks = [position[op] for op in observed if op in position]
    tails: list[int] = []
    for rank in ranks:
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if tails[mid] < rank:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(tails):
            tails.append(rank)
        else:
            tails[lo] = rank
    return len(ranks) - len(tails)
