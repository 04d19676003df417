"""The chain against the raw buses in one run: a thin wrapper of ``dongyu bench``.

    .venv/bin/python benchmarks/bench_chain.py [--quick] [--out out/bench] [...]

See ``dongyu bench --help`` and docs/performance.md.
"""

from __future__ import annotations

import sys

from dongyu.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
