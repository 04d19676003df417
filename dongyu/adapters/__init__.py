"""Adapters to the outside world: each wraps one client library, and only it imports that library.

``dongyu.adapters.matrix`` (matrix-nio, the management bus) and
``dongyu.adapters.mqtt`` (paho-mqtt, the control bus); the import-linter
contracts in pyproject.toml keep those libraries out of every other module.
"""
