"""The benchmark's outputs: ``results.json``, plots (matplotlib) and a text summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dongyu.bench.stats import SEGMENTS


def write_json(results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _fmt(value: object, unit: str = "ms") -> str:
    return f"{value:.1f} {unit}" if isinstance(value, int | float) else "n/a"


def text_summary(results: dict[str, Any]) -> str:
    lines: list[str] = []
    rm = results.get("raw_matrix", {})
    rq = results.get("raw_mqtt", {})
    if rm:
        h = rm["hop_ms"]
        lines.append(
            f"raw Matrix hop:  p50 {_fmt(h['p50'])}, p95 {_fmt(h['p95'])}, p99 {_fmt(h['p99'])} "
            f"(send alone p50 {_fmt(rm['send_ms']['p50'])}); one at a time "
            f"{rm['sequential']['events_per_s']} events/s"
        )
    if rq:
        h = rq["hop_ms"]
        lines.append(
            f"raw MQTT hop:    p50 {h['p50']:.3f} ms, p95 {h['p95']:.3f} ms, p99 {h['p99']:.3f} ms"
        )
    rt = results.get("round_trip", {})
    if rt:
        h = rt["round_trip_ms"]
        lines.append(
            f"round trip:      p50 {_fmt(h['p50'])}, p95 {_fmt(h['p95'])}, p99 {_fmt(h['p99'])} "
            f"over {rt['rounds']} (POST answered p50 {_fmt(rt['post_ms']['p50'])})"
        )
        for name, label in SEGMENTS.items():
            s = rt["hops_ms"].get(name)
            if s:
                lines.append(f"    {label:<50} p50 {s['p50']:8.2f} ms  p95 {s['p95']:8.2f} ms")
    b = results.get("burst", {})
    if b:
        lines.append(
            f"burst:           {b['applied_by_ui_server']}/{b['events']} applied, "
            f"{b['applied_twice']} twice, order violations {b['order_violations_ui_server']} "
            f"(UI) / {b['order_violations_worker']} (worker); drained in {b['drain_s']} s "
            f"= {b['events_per_s']} events/s; POST statuses {b['post_status']}; "
            f"MBR sent {b['mbr_matrix_events_sent']} Matrix events"
        )
    peak = results.get("rss_burst_peak_kb", {})
    if peak:
        lines.append(
            "RSS peak during the burst: "
            + ", ".join(f"{name} {kb / 1024:.1f} MB" for name, kb in peak.items())
        )
    br = results.get("browser", {})
    if "click_to_repaint_ms" in br:
        h = br["click_to_repaint_ms"]
        lines.append(
            f"browser:         click -> repaint p50 {_fmt(h['p50'])}, p95 {_fmt(h['p95'])} "
            f"over {br['runs']}"
        )
    elif br:
        lines.append(f"browser:         {br.get('error')}")
    lines.append("goals:")
    for name, goal in results.get("goals", {}).items():
        detail = ", ".join(f"{k} {v}" for k, v in goal.items() if k != "met")
        lines.append(f"  {'MET ' if goal.get('met') else 'MISS'} {name}: {detail}")
    return "\n".join(lines)


def plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """PNG plots: latency distributions, the round trip by hop, the burst's drain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    # 1. distributions (empirical CDFs)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = [
        ("raw Matrix hop", results.get("raw_matrix", {}).get("samples_ms")),
        ("raw MQTT hop", results.get("raw_mqtt", {}).get("samples_ms")),
        ("round trip (HTTP)", results.get("round_trip", {}).get("samples_ms")),
        ("browser click -> repaint", results.get("browser", {}).get("samples_ms")),
    ]
    for label, values in series:
        if values:
            ordered = sorted(values)
            ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.step(ordered, ys, where="post", label=f"{label} (n={len(ordered)})")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of samples")
    ax.set_title("Latency distributions (one run, same servers)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = out_dir / "latency_cdf.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    # 2. round trip by hop (p50 stacked) next to the raw floor
    hops = results.get("round_trip", {}).get("hops_ms", {})
    if hops:
        fig, ax = plt.subplots(figsize=(8, 3.8))
        left = 0.0
        for name, label in SEGMENTS.items():
            s = hops.get(name)
            if not s:
                continue
            ax.barh(["chain (p50 per hop)"], [s["p50"]], left=[left], label=label)
            left += s["p50"]
        m = results.get("raw_matrix", {}).get("hop_ms", {}).get("p50", 0.0)
        q = results.get("raw_mqtt", {}).get("hop_ms", {}).get("p50", 0.0)
        ax.barh(["raw floor"], [m], color="0.55", label="raw Matrix hop (p50)")
        ax.barh(["raw floor"], [q], left=[m], color="0.8", label="raw MQTT hop (p50)")
        ax.barh(["raw floor"], [m], left=[m + q], color="0.55")
        ax.barh(["raw floor"], [q], left=[2 * m + q], color="0.8")
        ax.set_xlabel("ms")
        ax.set_title("Where a round trip's time goes (median of each hop)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        fig.tight_layout()
        path = out_dir / "round_trip_hops.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # 3. burst: replies applied over time
    curve = results.get("burst", {}).get("applied_curve_s")
    if curve:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(curve, range(1, len(curve) + 1), label="replies applied by the UI server")
        rate = results.get("raw_matrix", {}).get("sequential", {}).get("events_per_s")
        if rate:
            end = curve[-1]
            ax.plot([0, end], [0, rate * end], "--", color="0.5", label="raw Matrix, one at a time")
        ax.set_xlabel("seconds since the first POST")
        ax.set_ylabel("events")
        ax.set_title(f"Burst of {len(curve)} UI events")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / "burst.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
