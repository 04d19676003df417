"""Compiling the Python source held in ``function`` labels (spec 4).

A label's value is the *body* of a function of one argument, ``ctx``;
``return`` is allowed. Compiling is pure (no I/O); running is the program
engine's job (:mod:`dongyu.program`).
"""

from __future__ import annotations

import textwrap
from types import CodeType

from dongyu.errors import RecordRejected

FUNCTION_WRAPPER_NAME = "__dongyu_function__"


def function_filename(name: str) -> str:
    """The pseudo file name shown in tracebacks of function ``name``.

    ``compile`` refuses a file name with a NUL character, so NUL is escaped.
    """
    safe = name.replace("\x00", "\\x00")
    return f"<function {safe}>"


def _has_code(source: str) -> bool:
    """Whether ``source`` holds more than blank lines and comments."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in source.splitlines())


def wrap_source(source: str) -> str:
    """The module text compiled for a function body (line N of the body is line N+1).

    A body of only blank lines and comments is an empty body (``pass``).
    """
    body = textwrap.indent(source if _has_code(source) else "pass", "    ")
    return f"def {FUNCTION_WRAPPER_NAME}(ctx):\n{body}\n"


def compile_function(name: str, source: str) -> CodeType:
    """Compile ``source`` as the body of ``def <name>(ctx)``.

    Raises :class:`RecordRejected` (code ``function_syntax_error``) with the
    line (counted in the label's own source) and the message.
    """
    try:
        return compile(wrap_source(source), function_filename(name), "exec")
    except SyntaxError as exc:
        line = (exc.lineno or 1) - 1
        raise RecordRejected(
            f"function '{name}' does not compile: {exc.msg} (line {max(line, 1)} of its source)",
            code="function_syntax_error",
        ) from exc
    except ValueError as exc:  # e.g. NUL bytes in the source, on some Python versions
        raise RecordRejected(
            f"function '{name}' does not compile: {exc}", code="function_syntax_error"
        ) from exc
