"""``dongyu infra up|down|status``: the command-line face of :mod:`dongyu.infra`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dongyu.infra import ServerStatus, down, status, up
from dongyu.settings import InfraSettings, infra_settings, load_environment

EXIT_OK, EXIT_UNHEALTHY = 0, 1

_INFRA_HELP = """\
Run the two buses the chain needs, on this machine, bound to 127.0.0.1 only:

  Matrix (management bus)  an embedded Synapse homeserver, users @drop and @mbr,
                           and their DM room
  MQTT (control bus)       an embedded mosquitto broker (amqtt when mosquitto is
                           not installed), one account per component and an ACL

Everything lives in a state folder (default ./.dongyu, or DONGYU_STATE_DIR, or
--state-dir): configuration, data, logs, and infra.json, the file the UI
server, the bridge and the worker read to connect.

External mode: when the environment (or a .env file) names an existing
homeserver (MATRIX_HOMESERVER_URL, MATRIX_MBR_USER, MATRIX_MBR_PASSWORD or
MATRIX_MBR_ACCESS_TOKEN, DY_MATRIX_ROOM_ID; DY_MATRIX_TLS_VERIFY=0 for a
self-signed certificate) or broker (MQTT_BROKER_HOST, MQTT_BROKER_PORT), that
one is used and nothing is started for it.
"""

_UP_HELP = """\
Start what is not running and make both buses ready, one progress line per
step (on stderr), then print a summary. Idempotent: running servers are left
alone, known users and the known room are kept (no duplicates).

Waits until each server answers; after --timeout seconds it stops waiting
with an error naming the log file to read. A port already taken by another
program is an error that names the port and how to choose another.

Exit status: 0 ready; 2 an error (the message says what to do).
"""

_DOWN_HELP = """\
Stop the servers that 'dongyu infra up' started (by their recorded PID, and
only if that PID is still the server it started). Keeps every file and all
data: the next 'up' finds the same users, room and accounts.
"""

_STATUS_HELP = """\
Show each server's mode (embedded or external), health, URL, PID and log
file. Starts and stops nothing.

Exit status: 0 every server answers; 1 something is stopped, unhealthy or not
set up.
"""


def register(commands: Any) -> None:
    infra = commands.add_parser(
        "infra",
        help="run the local Matrix homeserver and MQTT broker (up, down, status)",
        description=_INFRA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = infra.add_subparsers(dest="infra_command", metavar="ACTION", required=True)
    for name, helptext, run in (
        ("up", _UP_HELP, _run_up),
        ("down", _DOWN_HELP, _run_down),
        ("status", _STATUS_HELP, _run_status),
    ):
        cmd = sub.add_parser(
            name,
            help=helptext.splitlines()[0],
            description=helptext,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_argument(
            "--state-dir",
            type=Path,
            metavar="DIR",
            help="the state folder (default: $DONGYU_STATE_DIR or ./.dongyu)",
        )
        cmd.add_argument(
            "--env-file",
            type=Path,
            default=Path(".env"),
            metavar="FILE",
            help="read settings from this file too (default: ./.env, if it exists)",
        )
        if name == "up":
            cmd.add_argument(
                "--matrix-port",
                type=int,
                metavar="PORT",
                help="Synapse's port (default: the state folder's, $DY_MATRIX_PORT or 8008)",
            )
            cmd.add_argument(
                "--mqtt-port",
                type=int,
                metavar="PORT",
                help="the broker's port (default: the state folder's, $DY_MQTT_PORT or 1883)",
            )
            cmd.add_argument(
                "--broker",
                choices=("auto", "mosquitto", "amqtt"),
                help="which MQTT broker to run (default: $DY_MQTT_BROKER or auto: "
                "mosquitto if installed, else amqtt)",
            )
            cmd.add_argument(
                "--mqtt-extra-listen",
                metavar="ADDRESSES",
                help="mosquitto also listens on these addresses (comma-separated; default: "
                "$DY_MQTT_EXTRA_LISTEN or none), e.g. 172.17.0.1 so pods of the local "
                "Kubernetes cluster reach it",
            )
            cmd.add_argument(
                "--timeout",
                type=float,
                metavar="SECONDS",
                help="how long to wait for each server to answer (default: 60)",
            )
        if name in ("up", "status"):
            cmd.add_argument("--json", action="store_true", help="print the result as JSON")
        cmd.set_defaults(run=run)


def _settings(args: argparse.Namespace) -> InfraSettings:
    env = load_environment(env_file=args.env_file)
    return infra_settings(
        env,
        state_dir=args.state_dir,
        matrix_port=getattr(args, "matrix_port", None),
        mqtt_port=getattr(args, "mqtt_port", None),
        broker=getattr(args, "broker", None),
        timeout_s=getattr(args, "timeout", None),
        mqtt_extra_listen=tuple(args.mqtt_extra_listen.split(","))
        if getattr(args, "mqtt_extra_listen", None)
        else None,
    )


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _server_line(s: ServerStatus) -> str:
    health = "answering" if s.healthy else ("running, not answering" if s.running else "stopped")
    pid = f"PID {s.pid}" if s.pid else "no PID" if s.mode == "embedded" else "external"
    where = f" log {s.log_file}" if s.log_file else ""
    return f"{s.bus:6} {s.name:10} {health:22} {s.url or '-':28} {pid}{where}"


def _run_up(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"dongyu infra up: state folder {settings.state_dir}", file=sys.stderr)
    result = up(settings, progress=_progress)
    if args.json:
        data = {
            "state_dir": str(result.state_dir),
            "seconds": round(result.seconds, 3),
            "started": list(result.started),
            "servers": [asdict(s) for s in result.servers],
            "steps": [asdict(s) for s in result.steps],
            "notes": list(result.notes),
            "infra_file": str(result.state_dir / "infra.json"),
        }
        print(json.dumps(_jsonable(data), indent=2))
        return EXIT_OK
    m = result.info.matrix
    print(f"ready in {result.seconds:.2f} s ({', '.join(result.started) or 'nothing'} started)")
    for server in result.servers:
        print("  " + _server_line(server))
    print(f"  room   {m.matrix_room_id}  ({m.drop.user_id if m.drop else '-'} <-> {m.mbr.user_id})")
    print(f"  topics {result.info.mqtt.topic_base}/<model_id>/<pin>")
    print(f"  connection facts for the components: {result.state_dir / 'infra.json'}")
    for note in result.notes:
        print(f"  note: {note}")
    return EXIT_OK


def _run_down(args: argparse.Namespace) -> int:
    settings = _settings(args)
    result = down(settings, progress=_progress)
    print(f"stopped: {', '.join(result.stopped) or 'nothing'}; data kept in {result.state_dir}")
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    result = status(settings)
    healthy = result.set_up and all(s.healthy for s in result.servers)
    if args.json:
        data = {
            "state_dir": str(result.state_dir),
            "set_up": result.set_up,
            "healthy": healthy,
            "servers": [asdict(s) for s in result.servers],
            "matrix_room_id": result.info.matrix.matrix_room_id if result.info else None,
        }
        print(json.dumps(_jsonable(data), indent=2))
    else:
        print(f"state folder {result.state_dir}" + ("" if result.set_up else " (not set up)"))
        for server in result.servers:
            print("  " + _server_line(server))
        if result.info is not None:
            print(f"  room   {result.info.matrix.matrix_room_id}")
    return EXIT_OK if healthy else EXIT_UNHEALTHY
