"""Running the whole chain: :class:`~dongyu.stack.local.LocalStack` (local processes)."""
