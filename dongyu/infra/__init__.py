"""The local infrastructure: a Matrix homeserver and an MQTT broker (``dongyu infra``).

Python API: :func:`up`, :func:`down`, :func:`status` (see :mod:`dongyu.infra.api`).
"""

from dongyu.infra.api import (
    DownResult,
    ServerStatus,
    StatusResult,
    Step,
    UpResult,
    down,
    status,
    up,
)

__all__ = ["DownResult", "ServerStatus", "StatusResult", "Step", "UpResult", "down", "status", "up"]
