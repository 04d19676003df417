"""``dongyu bench``: the chain's performance against the raw buses, in one run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

_HELP = """\
Measure the chain against the raw buses, in one run, on the same servers.

Starts its own chain (Synapse, mosquitto, UI server, MBR bridge, worker) on
free ports in a temporary state folder, so it never touches 'dongyu up' or
.dongyu/, measures, and stops everything it started:

  1. raw Matrix hop: @drop sends an event, @mbr's long-polling sync receives
     it (matrix-nio, the chain's own client code); then as many back to back,
     one at a time: the raw one-at-a-time event rate;
  2. raw MQTT hop: a QoS 1 publish (waiting for the PUBACK) -> a subscriber;
  3. round trip: sequential UI events, POST /ui_event -> the worker's reply
     applied by the UI server and pushed on /events; p50/p95/p99 overall and
     per hop from the hops the messages carry (GET /trace);
  4. burst: UI events sent as fast as the client can; checks each is applied
     by the worker exactly once and in order; time to drain, events/s; RSS;
  5. browser: headless Chromium, Submit -> repaint.

Writes results.json and PNG plots to --out and prints a summary with the
goals of issue 7 (round-trip p50 <= 1.25 x (2 Matrix + 2 MQTT hops),
p99 <= 2 x p50, burst exactly once and in order at >= 3 x the raw Matrix
rate, worker RSS <= 80 MB). A full run takes about 2-3 minutes, --quick
about one. DY_BUS_COALESCE=0 turns off batching on the bus (for comparison).
"""


def register(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure the chain against the raw buses (JSON + plots)",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("out/bench"),
        help="folder for results.json and the plots (default out/bench)",
    )
    bench.add_argument("--quick", action="store_true", help="a short run (fewer samples)")
    bench.add_argument("--matrix-samples", type=int, help="raw Matrix hops (default 50)")
    bench.add_argument("--mqtt-samples", type=int, help="raw MQTT hops (default 500)")
    bench.add_argument("--rounds", type=int, help="sequential round trips (default 200)")
    bench.add_argument("--burst", type=int, help="UI events in the burst (default 1000)")
    bench.add_argument(
        "--burst-concurrency", type=int, help="requests in flight in the burst (default 64)"
    )
    bench.add_argument("--browser-runs", type=int, help="browser clicks (default 30)")
    bench.add_argument("--no-browser", action="store_true", help="skip the browser part")
    bench.add_argument("--no-plots", action="store_true", help="write results.json only")
    bench.add_argument(
        "--keep-state", action="store_true", help="keep the temporary state folder and its logs"
    )
    bench.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from dongyu.bench import report
    from dongyu.bench.run import BenchOptions, run_bench

    options = BenchOptions.quick() if args.quick else BenchOptions()
    overrides = {
        "matrix_samples": args.matrix_samples,
        "mqtt_samples": args.mqtt_samples,
        "rounds": args.rounds,
        "burst": args.burst,
        "burst_concurrency": args.burst_concurrency,
        "browser_runs": args.browser_runs,
    }
    options = replace(options, **{k: v for k, v in overrides.items() if v is not None})
    options = replace(options, browser=not args.no_browser, keep_state=args.keep_state)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results = run_bench(options, say=say)
    path = report.write_json(results, args.out)
    say(f"wrote {path}")
    if not args.no_plots:
        for plot in report.plots(results, args.out):
            say(f"wrote {plot}")
    print(report.text_summary(results))
    return 0
