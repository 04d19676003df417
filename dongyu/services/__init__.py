"""The asyncio services: UI server, MBR bridge and remote worker.

Each is an async context manager with explicit start/stop; its background
work runs in named tasks it owns and cancels on exit (no orphaned tasks).
Each wires its pure core (:mod:`dongyu.ui`, :mod:`dongyu.bridge`,
:mod:`dongyu.worker`) to the bus adapters (:mod:`dongyu.adapters`).
"""
