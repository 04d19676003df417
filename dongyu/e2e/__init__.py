"""What the walkthrough notebooks call: drive the page, follow one event, report.

- :mod:`dongyu.e2e.trace` (pure): per-hop latency rows from a message's ``hops``,
  and the log lines of one ``op_id``;
- :mod:`dongyu.e2e.browser`: a real browser submits a colour and waits for the repaint;
- :mod:`dongyu.e2e.report`: the timeline plot and the verdict text.
"""
