"""``dongyu ui-server | mbr | worker``: run one component of the chain in the foreground.

Each reads its connection facts from the state folder's ``infra.json``
(written by ``dongyu infra up``), the environment and ``.env`` (the
environment wins), logs at INFO level to stderr, and stops cleanly on Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dongyu.adapters.mqtt.client import MqttEndpoint
from dongyu.errors import SettingsError
from dongyu.settings import (
    InfraInfo,
    MatrixAccount,
    load_environment,
    read_infra_info,
    state_dir_from,
    worker_settings,
)

if TYPE_CHECKING:
    from dongyu.services.mbr import MatrixEndpoint

# Each command imports only its own service (below, inside the command): the worker
# then loads neither matrix-nio nor the UI server, which keeps its memory small.

log = logging.getLogger("dongyu.cli.services")


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait(self) -> None: ...


def run_service(make: Callable[[], Service], name: str) -> int:
    """Start the service, run until it fails or Ctrl-C/SIGTERM, stop it cleanly."""

    async def main() -> int:
        service = make()
        interrupted = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupted.set)
        await service.start()
        try:
            waiter = asyncio.ensure_future(service.wait())
            stopper = asyncio.ensure_future(interrupted.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        finally:
            log.info("%s stopping%s", name, " (signal)" if interrupted.is_set() else "")
            await service.stop()
        return 0 if interrupted.is_set() else 1

    return asyncio.run(main())


def _state(args: argparse.Namespace) -> tuple[dict[str, str], Path]:
    env = load_environment()
    return env, state_dir_from(env, args.state_dir)


def _matrix_endpoint(info: InfraInfo, account: MatrixAccount | None, who: str) -> MatrixEndpoint:
    from dongyu.services.mbr import MatrixEndpoint

    if account is None:
        raise SettingsError(f"infra.json has no Matrix account for the {who}")
    room = info.matrix.matrix_room_id
    peer = account.matrix_dm_peer_user_id
    if not room or not peer:
        raise SettingsError(
            "infra.json lacks matrix_room_id or matrix_dm_peer_user_id: run 'dongyu infra up'"
        )
    return MatrixEndpoint(
        homeserver_url=info.matrix.homeserver_url,
        user_id=account.user_id,
        access_token=account.access_token,
        password=account.password,
        device_id=account.device_id,
        room_id=room,
        peer_user_id=peer,
        tls_verify=info.matrix.tls_verify,
    )


def _ui_server(args: argparse.Namespace) -> int:
    from dongyu.services.ui_server import UiServerConfig, UiServerService

    _, state_dir = _state(args)
    info = read_infra_info(state_dir)
    config = UiServerConfig(
        matrix=_matrix_endpoint(info, info.matrix.drop, "UI server (@drop)"),
        state_dir=state_dir,
        http_host=args.host,
        http_port=args.port,
    )
    return run_service(lambda: UiServerService(config), "UI server")


def _mbr(args: argparse.Namespace) -> int:
    from dongyu.services.mbr import MbrConfig, MbrService

    _, state_dir = _state(args)
    info = read_infra_info(state_dir)
    account = info.mqtt.mbr
    if account is None:
        raise SettingsError("infra.json has no MQTT account for the bridge")
    config = MbrConfig(
        matrix=_matrix_endpoint(info, info.matrix.mbr, "bridge (@mbr)"),
        mqtt=MqttEndpoint(
            info.mqtt.host, info.mqtt.port, account.username, account.password, info.mqtt.tls
        ),
        topic_base=info.mqtt.topic_base,
        state_dir=state_dir,
        health_host=args.host,
        health_port=args.port,
    )
    return run_service(lambda: MbrService(config), "MBR bridge")


def _worker(args: argparse.Namespace) -> int:
    from dongyu.services.worker import WorkerConfig, WorkerService

    env, state_dir = _state(args)
    try:
        info: InfraInfo | None = read_infra_info(state_dir)
    except SettingsError:
        info = None  # in a pod: everything comes from the environment
    settings = worker_settings(env, info)
    model_ids = (
        tuple(args.model_id) if args.model_id else settings.model_ids or (settings.model_id,)
    )
    config = WorkerConfig(
        mqtt=MqttEndpoint(
            settings.mqtt_host, settings.mqtt_port, settings.mqtt_user, settings.mqtt_pass
        ),
        model_ids=model_ids,
        worker_id=settings.worker_id,
        topic_base=settings.topic_base,
        programs=tuple(args.program) if args.program else ("remote_worker", "color_form"),
        http_host=args.host or env.get("DY_HTTP_HOST", "127.0.0.1"),
        http_port=args.port,
        state_file=args.state_file
        or (Path(env["DY_WORKER_STATE"]) if env.get("DY_WORKER_STATE") else None),
        mqtt_client_id=env.get("DY_MQTT_CLIENT_ID") or None,
    )
    return run_service(lambda: WorkerService(config), "worker")


def _add(
    commands: Any, name: str, helptext: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    cmd: argparse.ArgumentParser = commands.add_parser(
        name,
        help=helptext.splitlines()[0],
        description=helptext,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="the state folder (default .dongyu or DONGYU_STATE_DIR)",
    )
    cmd.set_defaults(run=run, log_level=logging.INFO)
    return cmd


def register(commands: Any) -> None:
    ui = _add(
        commands,
        "ui-server",
        """Run the UI server: the page on http://HOST:PORT/, POST /ui_event, live updates.

Matrix user @drop (from infra.json). POST /ui_event answers once the event is
durably in the homeserver (200 with its event id), 400/413 with a reason for
bad input. GET /snapshot returns the table; GET /events streams changes.""",
        _ui_server,
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=9000, help="port (default 9000)")

    mbr = _add(
        commands,
        "mbr",
        """Run the MBR bridge: Matrix ui_event -> MQTT, MQTT patch_out -> Matrix snapshot_delta.

Matrix user @mbr and MQTT account 'mbr' (from infra.json). Announces mbr_ready
at start and every 30 s. /healthz, /readyz and /metrics on HOST:PORT.""",
        _mbr,
    )
    mbr.add_argument(
        "--host", default="127.0.0.1", help="health endpoint address (default 127.0.0.1)"
    )
    mbr.add_argument("--port", type=int, default=9101, help="health endpoint port (default 9101)")

    worker = _add(
        commands,
        "worker",
        """Run the remote worker: MQTT <base>/<model>/# -> program functions -> patch_out.

Settings from the seed's variables: MQTT_HOST, MQTT_PORT, MQTT_USER, MQTT_PASS,
WORKER_MODEL_ID (default 2; several: "2,100"), WORKER_ID; DY_MQTT_TOPIC_BASE; missing ones come
from infra.json when there is one. /healthz, /readyz and /metrics on HOST:PORT
(DY_HTTP_HOST sets the address; 0.0.0.0 in a pod).""",
        _worker,
    )
    worker.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="SQLite file for the worker's table, handled op_ids and unsent replies (env DY_WORKER_STATE)",
    )
    worker.add_argument("--host", default=None, help="health/metrics address (default 127.0.0.1)")
    worker.add_argument("--port", type=int, default=8080, help="health/metrics port (default 8080)")
    worker.add_argument(
        "--model-id",
        type=int,
        action="append",
        help="a model to serve (repeatable; default WORKER_MODEL_ID)",
    )
    worker.add_argument(
        "--program",
        action="append",
        help="a program model to load, by name or file (repeatable; default remote_worker and color_form)",
    )
