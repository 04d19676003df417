"""dongyu: a message-driven ModelTable runtime.

The pure core lives in :mod:`dongyu.core` (ModelTable), :mod:`dongyu.patch`
(mt.v0 patch engine) and :mod:`dongyu.program` (program engine); none of them
does I/O. Adapters, services and the command line sit on top.
"""

__version__ = "0.1.0"
