"""Program models shipped with dongyu, as mt.v0 patch files (spec 8).

- ``remote_worker``: model 2, the seed's worker (``process_mqtt_message``).
- ``color_form``: model 100, the colour form and its worker function
  (``on_color_submit``, bound to pin ``event_in``).
- ``ui_server``: the UI mailbox (model -1) and ``forward_ui_events``, which
  sends a UI event to the management bus (spec 7.1, 7.2).

:func:`load` takes one of these names or the path of a patch file.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from dongyu.errors import UnknownProgram


def names() -> list[str]:
    """The names of the shipped program models."""
    folder = resources.files(__name__)
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load(name_or_path: str | Path) -> dict[str, Any]:
    """The patch of a shipped program model, or of a patch file.

    Raises :class:`UnknownProgram` for a name that is neither, and for a file
    that is not JSON.
    """
    text: str
    source = str(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in names():
        text = resources.files(__name__).joinpath(f"{name_or_path}.json").read_text("utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UnknownProgram(
                f"{source!r} is neither a shipped program model ({', '.join(names())}) nor a file"
            )
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UnknownProgram(f"cannot read {source}: {exc}") from exc
    try:
        patch = json.loads(text)
    except ValueError as exc:
        raise UnknownProgram(f"{source} is not JSON: {exc}") from exc
    if not isinstance(patch, dict):
        raise UnknownProgram(f"{source} does not hold a patch object")
    return patch


_STRUCTURE_TYPES = frozenset({"function", "func.python", "PIN_IN", "PIN_OUT"})


def structure(patch: dict[str, Any]) -> dict[str, Any]:
    """Only the code and the wiring of a program model: its ``create_model`` records and
    its function and pin-declaration labels.

    A component that restarts from its saved table applies this instead of the whole
    program model, so new code takes effect while the saved data (colours, statuses,
    last events) is kept.
    """
    records = [
        r
        for r in patch.get("records", [])
        if isinstance(r, dict)
        and (
            r.get("op") == "create_model"
            or (r.get("op") == "add_label" and r.get("t") in _STRUCTURE_TYPES)
        )
    ]
    return {**patch, "op_id": f"{patch.get('op_id')}:structure", "records": records}
