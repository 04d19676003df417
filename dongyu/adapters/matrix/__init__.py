"""The Matrix adapter (management bus): the only package that imports matrix-nio."""

from dongyu.adapters.matrix.client import (
    BUS_EVENT_TYPE,
    BusEvent,
    MatrixBusClient,
    MatrixClientError,
    check_content,
)

__all__ = ["BUS_EVENT_TYPE", "BusEvent", "MatrixBusClient", "MatrixClientError", "check_content"]
