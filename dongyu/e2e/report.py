"""The run report's timeline plot and verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dongyu.e2e.trace import HopRow


def timeline_plot(
    rows: list[HopRow], path: Path, title: str = "one event through the chain"
) -> Any:
    """A horizontal timeline (matplotlib) of the hops; saved to ``path``; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.2))
    colours = {"Matrix": "#6c5ce7", "MQTT": "#00b894", "in process": "#b2bec3", "": "#b2bec3"}
    for i, row in enumerate(rows):
        start = row.at_ms - row.leg_ms
        ax.barh(i, max(row.leg_ms, 0.3), left=start, color=colours.get(row.via, "#b2bec3"))
        ax.text(row.at_ms + 1, i, f"{row.leg_ms:.1f} ms {row.via}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r.what for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the first hop")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def verdict(checks: dict[str, bool]) -> tuple[bool, str]:
    """Overall pass and a markdown summary of each check."""
    ok = all(checks.values())
    lines = [f"## {'PASS' if ok else 'FAIL'}: end-to-end chain", ""]
    lines += [f"- {'✅' if passed else '❌'} {name}" for name, passed in checks.items()]
    return ok, "\n".join(lines)
