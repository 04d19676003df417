"""Following one event: its hops as a latency table, its lines in every component's log. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HOP_LABELS = {
    "browser.click": "browser: Submit clicked",
    "ui_server.received": "UI server: POST /ui_event received",
    "mbr.received": "MBR: Matrix event received",
    "mbr.to_mqtt": "MBR: published to MQTT",
    "worker.received": "worker: MQTT message received",
    "worker.reply": "worker: reply published",
    "mbr.to_matrix": "MBR: reply taken from MQTT, sent on to Matrix",
    "ui_server.applied": "UI server: reply applied",
    "browser.repainted": "browser: box repainted",
}
"""What each hop means, in the chain's order."""

BUS_OF_LEG = {
    ("ui_server.received", "mbr.received"): "Matrix",
    ("mbr.to_mqtt", "worker.received"): "MQTT",
    ("worker.reply", "mbr.to_matrix"): "MQTT",
    ("mbr.to_matrix", "ui_server.applied"): "Matrix",
}


@dataclass(frozen=True)
class HopRow:
    hop: str
    what: str
    at_ms: float
    """Milliseconds since the first hop."""
    leg_ms: float
    """Milliseconds since the previous hop."""
    via: str
    """The bus the leg crossed, or ``in process``."""


def hop_rows(hops: Iterable[Mapping[str, Any]]) -> list[HopRow]:
    """Rows of the latency table, in time order."""
    ordered = sorted(((str(h["hop"]), int(h["ts_us"])) for h in hops), key=lambda h: h[1])
    if not ordered:
        return []
    start = ordered[0][1]
    rows: list[HopRow] = []
    prev_hop, prev_ts = ordered[0]
    for index, (hop, ts) in enumerate(ordered):
        via = BUS_OF_LEG.get((prev_hop, hop), "in process" if index else "")
        rows.append(
            HopRow(
                hop=hop,
                what=HOP_LABELS.get(hop, hop),
                at_ms=(ts - start) / 1000,
                leg_ms=(ts - prev_ts) / 1000,
                via=via,
            )
        )
        prev_hop, prev_ts = hop, ts
    return rows


def markdown_table(rows: list[HopRow]) -> str:
    lines = ["| hop | what | at (ms) | leg (ms) | via |", "|---|---|---:|---:|---|"]
    lines += [f"| `{r.hop}` | {r.what} | {r.at_ms:.1f} | {r.leg_ms:.1f} | {r.via} |" for r in rows]
    return "\n".join(lines)


def lines_of(op_id: str, logs: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(component, line)`` for every log line that names ``op_id`` (or its reply)."""
    found: list[tuple[str, str]] = []
    for component, text in logs.items():
        found += [(component, line) for line in text.splitlines() if op_id in line]
    return sorted(found, key=lambda item: item[1][:23])  # the lines start with a timestamp
