"""The ``dongyu`` command line: one sub-command module per area."""
