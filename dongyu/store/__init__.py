"""Persistence implementations of :class:`dongyu.core.persistence.Store`."""

from dongyu.store.sqlite import SqliteStore

__all__ = ["SqliteStore"]
