"""``dongyu``: the one command line of the project.

Each area registers its sub-commands from its own module (``dongyu.cli.<area>``);
this module only assembles them, sets up logging and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dongyu import __version__
from dongyu.cli import bench as bench_cli
from dongyu.cli import infra as infra_cli
from dongyu.cli import k8s as k8s_cli
from dongyu.cli import patch as patch_cli
from dongyu.cli import services as services_cli
from dongyu.cli import up as up_cli
from dongyu.errors import DongyuError

log = logging.getLogger("dongyu.cli")

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
dongyu: a message-driven ModelTable runtime.

A browser UI changes a value; the event travels UI server -> Matrix -> MBR
bridge -> MQTT -> a remote worker, which runs a program model and replies the
same way back. Each command below has its own --help.
"""

_AREAS = (patch_cli, infra_cli, services_cli, up_cli, k8s_cli, bench_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dongyu", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"dongyu {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in _AREAS:
        area.register(commands)
    return parser


def setup_logging(verbosity: int, base_level: int = logging.WARNING) -> None:
    """``base_level`` is the command's own default (services log at INFO); -v, -vv go lower."""
    level = max(logging.DEBUG, base_level - 10 * verbosity)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # matrix-nio logs every room event at INFO: keep it to warnings unless -vv
    logging.getLogger("nio").setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, getattr(args, "log_level", logging.WARNING))
    try:
        code: int = args.run(args)
    except DongyuError as exc:
        print(f"dongyu: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dongyu: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
