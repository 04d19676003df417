"""Prometheus text exposition of counters (pure)."""

from __future__ import annotations

from collections.abc import Iterable


def prometheus_text(
    rows: Iterable[tuple[str, str, str, float | int, dict[str, str] | None]],
) -> str:
    """``rows`` of ``(name, type, help, value, labels)``; one HELP/TYPE per name."""
    lines: list[str] = []
    seen: set[str] = set()
    for name, kind, helptext, value, labels in rows:
        if name not in seen:
            lines.append(f"# HELP {name} {helptext}")
            lines.append(f"# TYPE {name} {kind}")
            seen.add(name)
        label_text = ""
        if labels:
            inner = ",".join(
                f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                for k, v in sorted(labels.items())
            )
            label_text = "{" + inner + "}"
        lines.append(f"{name}{label_text} {value}")
    return "\n".join(lines) + "\n"


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text -> ``{"name{labels}": value}`` (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
