"""``dongyu bench``: the chain's performance against the raw buses, in one run.

:func:`dongyu.bench.run.run_bench` starts the whole chain on free ports in a
temporary state folder (:class:`dongyu.stack.local.LocalStack`) and measures,
on those same servers: one raw Matrix hop and one raw MQTT hop, the round trip
of sequential UI events with per-hop figures from the messages' ``hops``, a
burst of UI events, and a real browser's click -> repaint. The results are a
JSON file and plots (:mod:`dongyu.bench.report`).
"""
