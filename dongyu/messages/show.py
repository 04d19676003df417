"""How a bad value is quoted in an error message: short, and never failing."""

from __future__ import annotations


def show(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters.

    ``repr`` itself raises ``ValueError`` for an integer of more than 4,300
    digits (CPython's limit), which must not turn a refusal into a crash.
    """
    if type(value) is int and value.bit_length() > 4_000:
        return f"<integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
