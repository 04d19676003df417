"""mt.v0 patches (spec 3): envelope parsing, validation and the engine that applies them."""

from dongyu.patch.dedup import OpIdWindow
from dongyu.patch.engine import PatchEngine
from dongyu.patch.envelope import Envelope, loads_patch, parse_envelope
from dongyu.patch.result import PatchResult, RecordError

__all__ = [
    "Envelope",
    "OpIdWindow",
    "PatchEngine",
    "PatchResult",
    "RecordError",
    "loads_patch",
    "parse_envelope",
]
