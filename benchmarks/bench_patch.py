"""Benchmark: applying a 100,000-record add_label patch vs json.loads of its bytes,
and serialising the table's snapshot vs json.dumps of the snapshot dict.

Prints figures and ratios; it is not a test. Goals (issue 2): apply <= 2x json.loads
(the original JavaScript runtime on V8 applies such a patch in ~1.5-2x the time
CPython's json.loads takes to parse it), snapshot serialisation <= 2x json.dumps.

    .venv/bin/python benchmarks/bench_patch.py [--records N] [--repeat R] [--json]

Each figure is the median of R runs (and the best is shown too). json.loads and the
apply it is compared with run back to back in the same memory state, and
everything is freed between runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from dongyu.core.snapshot import dumps_canonical, snapshot_bytes, to_snapshot
from dongyu.core.table import ModelTable
from dongyu.patch.engine import PatchEngine


def make_patch(n: int) -> bytes:
    records = [
        {
            "op": "add_label",
            "model_id": 1 + i % 4,
            "p": i % 50,
            "r": (i // 50) % 200,
            "c": i // 10_000,
            "k": f"label_{i % 13}",
            "t": ("str", "int", "bool", "json")[i % 4],
            "v": (f"value {i}", i, i % 2 == 0, {"i": i, "tags": ["a", "b"]})[i % 4],
        }
        for i in range(n)
    ]
    create = [
        {"op": "create_model", "model_id": m, "name": f"m{m}", "type": "data"} for m in range(1, 5)
    ]
    return json.dumps({"version": "mt.v0", "op_id": "bench", "records": create + records}).encode()


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    data = make_patch(args.records)
    # Each run, in the same memory state: time json.loads of the bytes, then time
    # applying the parsed patch to a new table; then free everything.
    loads_times: list[float] = []
    apply_times: list[float] = []
    for _ in range(args.repeat):
        gc.collect()
        start = time.perf_counter()
        patch = json.loads(data)
        loads_times.append(time.perf_counter() - start)
        table = ModelTable()
        engine = PatchEngine(table)
        start = time.perf_counter()
        result = engine.apply(patch, allow_create_model=True)
        apply_times.append(time.perf_counter() - start)
        assert result.ok and result.applied == args.records + 4, result.summary()
        del patch, engine, result, table
    table = ModelTable()
    PatchEngine(table).apply(json.loads(data), allow_create_model=True)

    snap = to_snapshot(table)
    snapshot_times = timed(lambda: snapshot_bytes(table), args.repeat)
    dumps_times = timed(lambda: json.dumps(snap), args.repeat)
    canonical_times = timed(lambda: dumps_canonical(snap), args.repeat)
    assert json.loads(snapshot_bytes(table)) == json.loads(dumps_canonical(snap))

    def med(xs: list[float]) -> float:
        return statistics.median(xs) * 1e3

    figures = {
        "records": args.records,
        "patch_bytes": len(data),
        "labels_in_table": table.label_count(),
        "json_loads_ms": med(loads_times),
        "apply_ms": med(apply_times),
        "apply_over_loads": med(apply_times) / med(loads_times),
        "snapshot_bytes_ms": med(snapshot_times),
        "json_dumps_ms": med(dumps_times),
        "json_dumps_canonical_ms": med(canonical_times),
        "snapshot_over_dumps": med(snapshot_times) / med(dumps_times),
        "snapshot_over_canonical_dumps": med(snapshot_times) / med(canonical_times),
    }
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(
        f"patch: {args.records} add_label records, {len(data) / 1e6:.1f} MB; median of {args.repeat} runs"
    )
    print(
        f"json.loads(patch bytes)          {med(loads_times):8.1f} ms  (best {min(loads_times) * 1e3:.1f})"
    )
    print(
        f"apply (PatchEngine.apply)         {med(apply_times):8.1f} ms  (best {min(apply_times) * 1e3:.1f})"
    )
    print(f"  ratio apply / json.loads        {figures['apply_over_loads']:8.2f}   goal <= 2.00")
    print(f"snapshot_bytes(table)             {med(snapshot_times):8.1f} ms")
    print(f"json.dumps(snapshot dict)         {med(dumps_times):8.1f} ms")
    print(
        f"json.dumps(snapshot, canonical)   {med(canonical_times):8.1f} ms  (sorted keys, compact)"
    )
    print(f"  ratio snapshot / json.dumps     {figures['snapshot_over_dumps']:8.2f}   goal <= 2.00")
    print(f"  ratio snapshot / canonical dump {figures['snapshot_over_canonical_dumps']:8.2f}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
