"""The pure ModelTable core (spec section 2): no I/O, no asyncio, no bus."""

from dongyu.core.events import Event, EventLog
from dongyu.core.labels import Label
from dongyu.core.table import Model, ModelTable

__all__ = ["Event", "EventLog", "Label", "Model", "ModelTable"]
