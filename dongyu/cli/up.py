"""``dongyu up`` (the whole chain, locally) and ``dongyu logs`` (its log files)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from dongyu.settings import infra_settings, load_environment, state_dir_from
from dongyu.stack.local import COMPONENTS, LocalStack, StackPorts

_UP_HELP = """\
Start the whole chain on this machine and keep it running until Ctrl-C:

  1. the buses ('dongyu infra up': Synapse and mosquitto, or the external ones
     named in the environment / .env);
  2. the UI server, the MBR bridge and the worker, as local processes.

One line per component when it is ready, then the URL to open. Logs go to
<state dir>/logs/<component>.log ('dongyu logs' shows them). Ctrl-C (or
SIGTERM) stops the components, then the servers this command started.
"""

_LOGS_HELP = """\
Show the log files of the components started by 'dongyu up' (and of the
servers started by 'dongyu infra up'). -f follows them as they grow.
"""


def register(commands: Any) -> None:
    up = commands.add_parser(
        "up",
        help="run the whole chain locally until Ctrl-C",
        description=_UP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--state-dir", type=Path, default=None, help="the state folder (default .dongyu)"
    )
    up.add_argument("--ui-port", type=int, default=9000, help="UI server port (default 9000)")
    up.add_argument("--mbr-port", type=int, default=9101, help="MBR health port (default 9101)")
    up.add_argument(
        "--worker-port", type=int, default=8080, help="worker health port (default 8080)"
    )
    up.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run a local worker (e.g. it runs in Kubernetes)",
    )
    up.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each component"
    )
    up.set_defaults(run=_run_up)

    logs = commands.add_parser(
        "logs",
        help="show the components' log files",
        description=_LOGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logs.add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help=f"some of: {', '.join(COMPONENTS)} (default all)",
    )
    logs.add_argument(
        "--state-dir", type=Path, default=None, help="the state folder (default .dongyu)"
    )
    logs.add_argument(
        "-n", "--lines", type=int, default=40, help="lines from the end of each file (default 40)"
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.set_defaults(run=_run_logs)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_up(args: argparse.Namespace) -> int:
    env = load_environment()
    settings = infra_settings(env, state_dir=args.state_dir)
    stack = LocalStack(
        settings,
        ports=StackPorts(ui=args.ui_port, mbr_health=args.mbr_port, worker_health=args.worker_port),
        with_worker=not args.no_worker,
        progress=_say,
        timeout_s=args.timeout,
    )
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _say("dongyu up: starting the chain")
    try:
        stack.start()
        _say(f"\nready: open {stack.ui_url}  (logs: dongyu logs; stop: Ctrl-C)")
        while not stopping:
            for name, component in stack.components.items():
                if component.process is not None and component.process.poll() is not None:
                    _say(
                        f"{name} exited (code {component.process.returncode}): see {component.log_file}"
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        _say("stopping the chain")
        stack.stop()
    return 0


def _log_files(state_dir: Path, names: list[str]) -> list[Path]:
    files = [state_dir / "logs" / f"{name}.log" for name in (names or COMPONENTS)]
    if not names:
        files += sorted(state_dir.glob("*/*.log"))
    return [f for f in files if f.is_file()]


def _run_logs(args: argparse.Namespace) -> int:
    env = load_environment()
    state_dir = state_dir_from(env, args.state_dir)
    unknown = [n for n in args.components if n not in COMPONENTS]
    if unknown:
        print(
            f"dongyu logs: unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}",
            file=sys.stderr,
        )
        return 2
    files = _log_files(state_dir, args.components)
    if not files:
        print(
            f"dongyu logs: no log files under {state_dir} (has 'dongyu up' run?)", file=sys.stderr
        )
        return 1
    positions: dict[Path, int] = {}
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        print(f"==> {path} <==")
        for line in lines[-args.lines :]:
            print(line)
        positions[path] = path.stat().st_size
    try:
        while args.follow:
            time.sleep(0.5)
            for path in files:
                size = path.stat().st_size
                if size > positions[path]:
                    with path.open("rb") as handle:
                        handle.seek(positions[path])
                        chunk = handle.read().decode("utf-8", "replace")
                    for line in chunk.splitlines():
                        print(f"[{path.stem}] {line}", flush=True)
                    positions[path] = size
    except KeyboardInterrupt:
        pass
    return 0
