"""``dongyu patch apply|check``: the command-line face of the patch engine."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from dongyu.core.snapshot import snapshot_bytes
from dongyu.errors import InvalidPatch
from dongyu.patch.envelope import Envelope, loads_patch
from dongyu.patch.result import PatchResult
from dongyu.program.runtime import Runtime

EXIT_OK, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2

_APPLY_HELP = """\
Apply mt.v0 patch files, in order, to an empty ModelTable (which holds only
the root model 0) and print the table's deterministic snapshot JSON on
stdout. One result line per patch goes to stderr:

  FILE: op_id=... applied=N rejected=M [reason=...]
    record I (OP): REASON          (one line per rejected record)

Functions triggered by the patches run (with no bus attached: messages they
send are dropped with a warning).

Exit status: 0 every record applied; 1 a record was rejected or a patch was
refused; 2 a file could not be read or is not JSON.
"""

_CHECK_HELP = """\
Validate mt.v0 patch files without writing anything: each patch is applied,
in order, to a scratch table (so a record naming a model that no earlier
patch creates is reported) and only the result lines are printed, on stdout.
Same options and exit status as 'dongyu patch apply'.
"""


def register(commands: Any) -> None:
    patch = commands.add_parser(
        "patch",
        help="apply or check mt.v0 patch files",
        description="Work with mt.v0 patch files (spec section 3).",
    )
    sub = patch.add_subparsers(dest="patch_command", metavar="ACTION", required=True)
    for name, helptext, run in (
        ("apply", _APPLY_HELP, _run_apply),
        ("check", _CHECK_HELP, _run_check),
    ):
        cmd = sub.add_parser(
            name,
            help=helptext.splitlines()[0],
            description=helptext,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_argument("files", nargs="+", metavar="FILE", help="patch files ('-' reads stdin)")
        cmd.add_argument(
            "--allow-create-model",
            action="store_true",
            help="let create_model records and records naming missing models create them",
        )
        cmd.add_argument(
            "--untrusted",
            action="store_true",
            help="apply as a patch from a bus would be: function labels are refused",
        )
        cmd.set_defaults(run=run)


def _read(path: str) -> Envelope:
    """Read and parse one patch file; InvalidPatch for an envelope that is not a patch."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return loads_patch(data)


def _result_lines(name: str, result: PatchResult) -> list[str]:
    lines = [f"{name}: {result.summary()}"]
    lines += [f"  record {e.index} ({e.op}): {e.reason}" for e in result.errors]
    return lines


def _apply_all(args: argparse.Namespace, out: Any) -> tuple[int, Runtime]:
    if args.verbose <= 0:  # the result lines already say what the engine would warn about
        logging.getLogger("dongyu.patch").setLevel(logging.ERROR)
    runtime = Runtime(allow_create_model=args.allow_create_model)
    status = EXIT_OK
    for name in args.files:
        try:
            envelope = _read(name)
        except OSError as exc:
            print(f"{name}: unreadable: {exc.strerror or exc}", file=out)
            return EXIT_BAD_INPUT, runtime
        except InvalidPatch as exc:
            if exc.detail.startswith("not JSON"):
                print(f"{name}: unreadable: {exc}", file=out)
                return EXIT_BAD_INPUT, runtime
            print(f"{name}: refused: {exc}", file=out)
            status = EXIT_REJECTED
            continue
        result = runtime.apply_patch(envelope, trusted=not args.untrusted)
        for line in _result_lines(name, result):
            print(line, file=out)
        if not result.ok:
            status = EXIT_REJECTED
    return status, runtime


def _run_apply(args: argparse.Namespace) -> int:
    status, runtime = _apply_all(args, sys.stderr)
    if status != EXIT_BAD_INPUT:
        sys.stdout.buffer.write(snapshot_bytes(runtime.table) + b"\n")
        sys.stdout.flush()
    return status


def _run_check(args: argparse.Namespace) -> int:
    status, _ = _apply_all(args, sys.stdout)
    return status
