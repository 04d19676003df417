"""Typed messages of the buses and the UI (spec 5-7): frozen dataclasses with
``from_dict`` (which refuses bad input with a precise reason) and ``to_dict``.
Pure: no I/O."""

from dongyu.messages.bus import BusMessage
from dongyu.messages.hops import Hop, stamp
from dongyu.messages.ui_event import UiEvent

__all__ = ["BusMessage", "Hop", "UiEvent", "stamp"]
