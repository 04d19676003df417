"""``up()``, ``down()`` and ``status()``: the local infrastructure as a Python API.

``up`` makes the two buses ready and writes ``<state dir>/infra.json``:

- the management bus: an embedded Synapse (or the external homeserver named
  by ``MATRIX_HOMESERVER_URL``), users ``@drop`` and ``@mbr``, their DM room;
- the control bus: an embedded mosquitto, or amqtt when mosquitto is not
  installed (or the external broker named by ``MQTT_BROKER_HOST``), with one
  account per component and an ACL.

It is idempotent: what runs is left running, known users and room are kept.
``down`` stops only the processes that ``up`` started (by PID, checked against
the command line) and keeps all data. ``status`` reports each server's health,
URL and PID. The command line (``dongyu infra``) is a thin layer on these.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dongyu.adapters.mqtt import MqttEndpoint, MqttError, try_connect
from dongyu.errors import InfraError
from dongyu.infra import amqtt_fallback, mosquitto, synapse
from dongyu.infra.acl import COMPONENTS
from dongyu.infra.matrix_http import MatrixHttp, Session
from dongyu.infra.process import (
    HOST,
    is_running,
    port_is_free,
    require_free_port,
    spawn,
    stop,
    tcp_answers,
    wait_until,
)
from dongyu.infra.state import (
    ProcessRecord,
    StatePaths,
    random_secret,
    read_json,
    read_record,
    remove_record,
    write_json_private,
    write_record,
)
from dongyu.settings import (
    DEFAULT_MATRIX_PORT,
    DEFAULT_MQTT_PORT,
    ExternalMatrix,
    ExternalMqtt,
    InfraInfo,
    InfraSettings,
    MatrixAccount,
    MatrixInfo,
    MqttAccount,
    MqttInfo,
    infra_settings,
    load_environment,
    read_infra_info,
)

log = logging.getLogger("dongyu.infra.api")

Progress = Callable[[str], None]
SERVERS = (synapse.SERVER, mosquitto.SERVER, amqtt_fallback.SERVER)


@dataclass(frozen=True)
class ServerStatus:
    """One server of the infrastructure, as ``status`` (and ``up``) sees it."""

    name: str
    bus: Literal["matrix", "mqtt"]
    mode: Literal["embedded", "external"]
    url: str
    pid: int | None
    running: bool
    healthy: bool
    log_file: str | None
    detail: str = ""


@dataclass(frozen=True)
class Step:
    """One step of ``up``: what it did and how long it took."""

    name: str
    seconds: float
    detail: str


@dataclass(frozen=True)
class UpResult:
    state_dir: Path
    info: InfraInfo
    servers: tuple[ServerStatus, ...]
    steps: tuple[Step, ...]
    started: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DownResult:
    state_dir: Path
    stopped: tuple[str, ...]
    not_running: tuple[str, ...]


@dataclass(frozen=True)
class StatusResult:
    state_dir: Path
    set_up: bool
    servers: tuple[ServerStatus, ...]
    info: InfraInfo | None


def _settings(settings: InfraSettings | None) -> InfraSettings:
    return settings if settings is not None else infra_settings(load_environment())


def _emit(progress: Progress | None) -> Progress:
    if progress is not None:
        return progress
    return lambda line: log.info("%s", line)


@contextmanager
def _locked(paths: StatePaths) -> Iterator[None]:
    """One ``up``/``down`` at a time per state folder."""
    paths.ensure()
    with open(paths.run_dir / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another 'dongyu infra' holds %s: waiting", paths.run_dir / "lock")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _Steps:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.done: list[Step] = []
        self.started: list[str] = []
        self.notes: list[str] = []
        self._t = time.monotonic()

    def begin(self) -> None:
        self._t = time.monotonic()

    def end(self, name: str, detail: str) -> None:
        seconds = time.monotonic() - self._t
        self.done.append(Step(name, seconds, detail))
        self.progress(f"{name}: {detail} ({seconds:.2f} s)")
        self._t = time.monotonic()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.progress(f"note: {text}")


# --------------------------------------------------------------------------- up


def up(settings: InfraSettings | None = None, *, progress: Progress | None = None) -> UpResult:
    """Start what is not running, register what is missing, write infra.json (idempotent)."""
    cfg = _settings(settings)
    paths = StatePaths(cfg.state_dir)
    steps = _Steps(_emit(progress))
    t0 = time.monotonic()
    with _locked(paths):
        embedded = read_json(paths.embedded_file) or {}
        steps.begin()
        if cfg.matrix_external is not None:
            matrix_info = _external_matrix(cfg.matrix_external, steps)
        else:
            matrix_info = _embedded_matrix(cfg, paths, embedded, steps)
        if cfg.mqtt_external is not None:
            mqtt_info = _external_mqtt(cfg, cfg.mqtt_external, steps)
        else:
            mqtt_info = _embedded_mqtt(cfg, paths, embedded, steps)
        info = InfraInfo(matrix=matrix_info, mqtt=mqtt_info, notes=tuple(steps.notes))
        write_json_private(paths.infra_file, info.to_json())
        steps.end("state", f"wrote {paths.infra_file}")
    servers = _statuses(paths, info)
    return UpResult(
        state_dir=paths.root,
        info=info,
        servers=servers,
        steps=tuple(steps.done),
        started=tuple(steps.started),
        seconds=time.monotonic() - t0,
        notes=tuple(steps.notes),
    )


def _previous_info(paths: StatePaths) -> InfraInfo | None:
    if not paths.infra_file.exists():
        return None
    try:
        return read_infra_info(paths.root)
    except Exception as exc:  # a damaged file must not block a new up
        log.warning("ignoring %s: %s", paths.infra_file, exc)
        return None


def _ensure_running(
    paths: StatePaths,
    *,
    server: str,
    url: str,
    port: int,
    what: str,
    option: str,
    start: Callable[[], tuple[list[str], Path, Path, str]],
    ready: Callable[[], bool],
    timeout_s: float,
    steps: _Steps,
) -> ProcessRecord:
    """Start ``server`` unless the one ``up`` started earlier still runs; wait until ready."""
    record = read_record(paths, server)
    if record is not None and is_running(record):
        if record.url != url:
            raise InfraError(
                f"{what} already runs (PID {record.pid}) at {record.url}, not {url}: "
                "run 'dongyu infra down' first to change its port"
            )
        steps.end(server, f"already running (PID {record.pid}) at {url}")
        return record
    if record is not None:
        remove_record(paths, server)
    require_free_port(port, what, option)
    argv, log_file, cwd, marker = start()
    steps.end(f"{server} config", f"written under {cwd}")
    pid = spawn(argv, log_file, cwd=cwd)
    record = ProcessRecord(
        server=server,
        pid=pid,
        argv=tuple(argv),
        marker=marker,
        started_at=time.time(),
        log_file=str(log_file),
        url=url,
    )
    write_record(paths, record)
    steps.started.append(server)
    wait_until(ready, what=what, record=record, timeout_s=timeout_s)
    steps.end(server, f"started (PID {pid}), answering at {url}")
    return record


def _embedded_matrix(
    cfg: InfraSettings, paths: StatePaths, embedded: dict[str, Any], steps: _Steps
) -> MatrixInfo:
    if importlib.util.find_spec("synapse") is None:
        raise InfraError(
            "matrix-synapse is not installed in this Python: run ./scripts/setup (or "
            "pip install matrix-synapse), or name an existing homeserver with MATRIX_HOMESERVER_URL"
        )
    syn: dict[str, Any] = embedded.setdefault("synapse", {})
    port = int(cfg.matrix_port or syn.get("port") or DEFAULT_MATRIX_PORT)
    server_name = str(syn.get("server_name") or cfg.server_name)
    if server_name != cfg.server_name:
        steps.note(
            f"the homeserver keeps its server name {server_name!r} (a name is fixed once users "
            "exist; delete the state folder to change it)"
        )
    if "secrets" not in syn:
        syn["secrets"] = synapse.SynapseSecrets.generate().__dict__
    keys = synapse.SynapseSecrets(**syn["secrets"])
    syn.update(port=port, server_name=server_name)
    write_json_private(paths.embedded_file, embedded)
    url = synapse.base_url(port)
    http = MatrixHttp(url)

    def start() -> tuple[list[str], Path, Path, str]:
        files = synapse.write_files(
            paths.synapse_dir, port=port, server_name=server_name, keys=keys
        )
        return synapse.command(files), files.log, files.dir, str(files.config)

    _ensure_running(
        paths,
        server=synapse.SERVER,
        url=url,
        port=port,
        what="the Matrix homeserver (Synapse)",
        option="--matrix-port or DY_MATRIX_PORT",
        start=start,
        ready=http.answers,
        timeout_s=cfg.timeout_s,
        steps=steps,
    )
    # Credentials and the room id are saved in embedded.json as soon as they exist,
    # so a failure later in this 'up' never loses a registered user's password.
    users: dict[str, Any] = syn.setdefault("users", {})
    sessions: dict[str, tuple[Session, str]] = {}
    for localpart in ("drop", "mbr"):
        prior = users.get(localpart)
        session, password, action = synapse.ensure_user(
            http,
            localpart=localpart,
            server_name=server_name,
            shared_secret=keys.registration_shared_secret,
            known=MatrixAccount(**prior) if prior else None,
        )
        sessions[localpart] = (session, password)
        users[localpart] = asdict(_account((session, password), peer=None))
        write_json_private(paths.embedded_file, embedded)
        steps.end(f"user {session.user_id}", action)
    drop, mbr = sessions["drop"][0], sessions["mbr"][0]
    room_id, action = synapse.ensure_dm_room(
        http, drop=drop, mbr=mbr, known_room_id=syn.get("room_id")
    )
    syn["room_id"] = room_id
    write_json_private(paths.embedded_file, embedded)
    steps.end("room", f"{room_id} {action} (drop and mbr joined)")
    return MatrixInfo(
        mode="embedded",
        homeserver_url=url,
        server_name=server_name,
        tls_verify=True,
        matrix_room_id=room_id,
        mbr=_account(sessions["mbr"], peer=drop.user_id),
        drop=_account(sessions["drop"], peer=mbr.user_id),
    )


def _account(pair: tuple[Session, str], *, peer: str | None) -> MatrixAccount:
    session, password = pair
    return MatrixAccount(
        user_id=session.user_id,
        password=password or None,
        access_token=session.access_token,
        device_id=session.device_id,
        matrix_dm_peer_user_id=peer,
    )


def _external_session(
    http: MatrixHttp, who: str, user: str, password: str | None, token: str | None
) -> tuple[Session, str]:
    if token:
        uid = http.whoami(token)
        if uid is not None:
            return Session(uid, token, None), password or ""
        if not password:
            raise InfraError(f"the access token of {user} ({who}) is not valid on {http.base_url}")
    if not password:
        raise InfraError(f"no password or access token for {user} ({who})")
    return http.login(user, password), password


def _external_matrix(ext: ExternalMatrix, steps: _Steps) -> MatrixInfo:
    http = MatrixHttp(ext.homeserver_url, tls_verify=ext.tls_verify)
    try:
        http.versions()
    except InfraError as exc:
        raise InfraError(
            f"the homeserver named by MATRIX_HOMESERVER_URL ({ext.homeserver_url}) does not "
            f"answer: {exc}"
            + (
                " (a self-signed certificate? set DY_MATRIX_TLS_VERIFY=0)"
                if ext.tls_verify and ext.homeserver_url.startswith("https:")
                else ""
            )
        ) from exc
    steps.end("homeserver", f"external {ext.homeserver_url} answers (nothing started)")
    mbr = _external_session(
        http, "MATRIX_MBR_USER", ext.mbr_user, ext.mbr_password, ext.mbr_access_token
    )
    steps.end(f"user {mbr[0].user_id}", "logged in")
    drop: tuple[Session, str] | None = None
    if ext.drop_user:
        drop = _external_session(
            http, "DY_MATRIX_DROP_USER", ext.drop_user, ext.drop_password, ext.drop_access_token
        )
        steps.end(f"user {drop[0].user_id}", "logged in")
    room_id = ext.room_id
    if room_id is not None:
        if room_id not in http.joined_rooms(mbr[0].access_token):
            http.join(mbr[0].access_token, room_id)
            steps.end("room", f"{room_id}: mbr joined")
        else:
            steps.end("room", f"{room_id} (DY_MATRIX_ROOM_ID), mbr joined")
    elif drop is not None:
        room_id, action = synapse.ensure_dm_room(http, drop=drop[0], mbr=mbr[0], known_room_id=None)
        steps.end("room", f"{room_id} {action}")
    else:
        steps.note("no DY_MATRIX_ROOM_ID and no drop user: matrix_room_id is left unset")
    server_name = mbr[0].user_id.split(":", 1)[1] if ":" in mbr[0].user_id else ""
    drop_id = drop[0].user_id if drop else None
    return MatrixInfo(
        mode="external",
        homeserver_url=ext.homeserver_url,
        server_name=server_name,
        tls_verify=ext.tls_verify,
        matrix_room_id=room_id,
        mbr=_account(mbr, peer=drop_id),
        drop=_account(drop, peer=mbr[0].user_id) if drop else None,
    )


def _mqtt_ready(port: int, probe: MqttAccount) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            outcome = try_connect(
                MqttEndpoint(HOST, port, probe.username, probe.password), timeout_s=2.0
            )
        except MqttError:
            return False
        if not outcome.accepted:
            raise InfraError(
                f"the broker on port {port} refused the probe account: {outcome.reason}"
            )
        return True

    return ready


def _embedded_mqtt(
    cfg: InfraSettings, paths: StatePaths, embedded: dict[str, Any], steps: _Steps
) -> MqttInfo:
    mq: dict[str, Any] = embedded.setdefault("mqtt", {})
    port = int(cfg.mqtt_port or mq.get("port") or DEFAULT_MQTT_PORT)
    accounts: dict[str, str] = dict(mq.get("accounts") or {})
    for name in COMPONENTS:
        accounts.setdefault(name, random_secret(32))
    mq.update(port=port, accounts=accounts)
    write_json_private(paths.embedded_file, embedded)

    executable = mosquitto.find_mosquitto()
    broker = cfg.broker
    if broker == "auto":
        broker = "mosquitto" if executable else "amqtt"
        if broker == "amqtt":
            steps.note(
                "mosquitto is not installed: using the pure-Python amqtt broker instead "
                "(bound to 127.0.0.1; no persistence; slower). Install mosquitto with ./scripts/setup."
            )
    if broker == "mosquitto" and executable is None:
        raise InfraError(
            "DY_MQTT_BROKER=mosquitto but mosquitto is not installed (apt-get install mosquitto)"
        )
    if broker == "amqtt" and not amqtt_fallback.available():
        raise InfraError("the amqtt fallback broker is not installed (pip install amqtt)")
    other = amqtt_fallback.SERVER if broker == "mosquitto" else mosquitto.SERVER
    other_record = read_record(paths, other)
    if other_record is not None and is_running(other_record):
        raise InfraError(
            f"{other} from an earlier 'up' still runs (PID {other_record.pid}): "
            "run 'dongyu infra down' first to switch brokers"
        )
    url = f"mqtt://{HOST}:{port}"
    probe = MqttAccount("probe", accounts["probe"])
    extra = cfg.mqtt_extra_listen
    if extra:
        _check_extra_listen(paths, broker, port, extra)

    def start() -> tuple[list[str], Path, Path, str]:
        if broker == "mosquitto":
            assert executable is not None
            files, note = mosquitto.write_files(
                paths.mosquitto_dir,
                port=port,
                accounts=accounts,
                topic_base=cfg.topic_base,
                extra_listen=extra,
            )
            if note:
                steps.note(note)
            return mosquitto.command(executable, files), files.log, files.dir, str(files.conf)
        afiles = amqtt_fallback.write_files(
            paths.amqtt_dir, port=port, accounts=accounts, topic_base=cfg.topic_base
        )
        return amqtt_fallback.command(afiles), afiles.log, afiles.dir, str(afiles.config)

    _ensure_running(
        paths,
        server=broker,
        url=url,
        port=port,
        what=f"the MQTT broker ({broker})",
        option="--mqtt-port or DY_MQTT_PORT",
        start=start,
        ready=_mqtt_ready(port, probe),
        timeout_s=cfg.timeout_s,
        steps=steps,
    )
    return MqttInfo(
        mode="mosquitto" if broker == "mosquitto" else "amqtt",
        host=HOST,
        port=port,
        tls=False,
        topic_base=cfg.topic_base,
        **{name: MqttAccount(name, accounts[name]) for name in COMPONENTS},
    )


def _check_extra_listen(
    paths: StatePaths, broker: str, port: int, addresses: tuple[str, ...]
) -> None:
    """Extra listeners (DY_MQTT_EXTRA_LISTEN): mosquitto only, on addresses this machine has."""
    if broker != "mosquitto":
        raise InfraError(
            f"DY_MQTT_EXTRA_LISTEN={','.join(addresses)} needs mosquitto; "
            "the amqtt fallback listens on 127.0.0.1 only"
        )
    record = read_record(paths, mosquitto.SERVER)
    if record is not None and is_running(record):
        if not mosquitto.listens_on(mosquitto.MosquittoFiles(paths.mosquitto_dir), port, addresses):
            raise InfraError(
                f"mosquitto already runs (PID {record.pid}) without a listener on "
                f"{', '.join(addresses)}: run 'dongyu infra down' first, then 'up' again"
            )
        return
    for address in addresses:
        try:
            free = port_is_free(port, address)
        except OSError as exc:
            raise InfraError(
                f"cannot listen on {address}:{port} ({exc.strerror}): is it an address of "
                "this machine? (172.17.0.1 exists once Docker's bridge docker0 is up: "
                "start the local cluster first, 'scripts/k8s-cluster up')"
            ) from exc
        if not free:
            raise InfraError(f"{address}:{port} is already in use (see 'ss -ltnp sport = :{port}')")


def _external_mqtt(cfg: InfraSettings, ext: ExternalMqtt, steps: _Steps) -> MqttInfo:
    if not tcp_answers(ext.host, ext.port, timeout=5.0):
        raise InfraError(
            f"the MQTT broker named by MQTT_BROKER_HOST/MQTT_BROKER_PORT ({ext.host}:{ext.port}) "
            "does not accept connections"
        )
    steps.end(
        "broker", f"external mqtt://{ext.host}:{ext.port} accepts connections (nothing started)"
    )

    def account(user: str | None, password: str | None) -> MqttAccount | None:
        return MqttAccount(user, password) if user else None

    return MqttInfo(
        mode="external",
        host=ext.host,
        port=ext.port,
        tls=ext.tls,
        topic_base=cfg.topic_base,
        mbr=account(ext.mbr_username, ext.mbr_password),
        worker=account(ext.worker_username, ext.worker_password),
    )


# --------------------------------------------------------------------------- down


def down(settings: InfraSettings | None = None, *, progress: Progress | None = None) -> DownResult:
    """Stop the servers that ``up`` started (by PID); keep every file and all data."""
    cfg = _settings(settings)
    paths = StatePaths(cfg.state_dir)
    emit = _emit(progress)
    stopped: list[str] = []
    not_running: list[str] = []
    if not paths.root.exists():
        emit(f"nothing to stop: {paths.root} does not exist")
        return DownResult(paths.root, (), ())
    with _locked(paths):
        for server in SERVERS:
            record = read_record(paths, server)
            if record is None:
                continue
            t = time.monotonic()
            if stop(record):
                stopped.append(server)
                emit(f"{server}: stopped (PID {record.pid}) ({time.monotonic() - t:.2f} s)")
            else:
                not_running.append(server)
                emit(f"{server}: was not running (PID {record.pid} is gone)")
            remove_record(paths, server)
    if not stopped and not not_running:
        emit("nothing to stop: no server started by 'dongyu infra up' is recorded")
    return DownResult(paths.root, tuple(stopped), tuple(not_running))


# --------------------------------------------------------------------------- status


def status(settings: InfraSettings | None = None) -> StatusResult:
    """Each server's health, URL and PID (read-only: starts and stops nothing)."""
    cfg = _settings(settings)
    paths = StatePaths(cfg.state_dir)
    info = _previous_info(paths)
    return StatusResult(
        state_dir=paths.root,
        set_up=info is not None,
        servers=_statuses(paths, info),
        info=info,
    )


def _statuses(paths: StatePaths, info: InfraInfo | None) -> tuple[ServerStatus, ...]:
    out: list[ServerStatus] = []
    if info is not None and info.matrix.mode == "external":
        http = MatrixHttp(info.matrix.homeserver_url, tls_verify=info.matrix.tls_verify)
        ok = http.answers()
        out.append(
            ServerStatus(
                "homeserver", "matrix", "external", info.matrix.homeserver_url, None, ok, ok, None
            )
        )
    else:
        out.append(_embedded_status(paths, synapse.SERVER, "matrix", info))
    if info is not None and info.mqtt.mode == "external":
        ok = tcp_answers(info.mqtt.host, info.mqtt.port)
        url = f"mqtt://{info.mqtt.host}:{info.mqtt.port}"
        out.append(ServerStatus("broker", "mqtt", "external", url, None, ok, ok, None))
    else:
        broker = mosquitto.SERVER
        if (info is not None and info.mqtt.mode == "amqtt") or read_record(
            paths, amqtt_fallback.SERVER
        ) is not None:
            broker = amqtt_fallback.SERVER
        out.append(_embedded_status(paths, broker, "mqtt", info))
    return tuple(out)


def _embedded_status(
    paths: StatePaths, server: str, bus: Literal["matrix", "mqtt"], info: InfraInfo | None
) -> ServerStatus:
    record = read_record(paths, server)
    default_log = {
        synapse.SERVER: paths.synapse_dir / "homeserver.log",
        mosquitto.SERVER: paths.mosquitto_dir / "mosquitto.log",
        amqtt_fallback.SERVER: paths.amqtt_dir / "amqtt.log",
    }[server]
    if record is None or not is_running(record):
        url = record.url if record else ""
        if not url and info is not None:
            url = (
                info.matrix.homeserver_url
                if bus == "matrix"
                else f"mqtt://{info.mqtt.host}:{info.mqtt.port}"
            )
        detail = "stopped" if info is not None else "not set up: run 'dongyu infra up'"
        return ServerStatus(
            server, bus, "embedded", url, None, False, False, str(default_log), detail
        )
    if bus == "matrix":
        healthy = MatrixHttp(record.url, timeout_s=3.0).answers()
    else:
        port = int(record.url.rsplit(":", 1)[1])
        healthy = False
        if info is not None and info.mqtt.probe is not None:
            try:
                healthy = try_connect(
                    MqttEndpoint(HOST, port, info.mqtt.probe.username, info.mqtt.probe.password),
                    timeout_s=2.0,
                ).accepted
            except MqttError:
                healthy = False
        else:
            healthy = tcp_answers(HOST, port)
    return ServerStatus(
        server,
        bus,
        "embedded",
        record.url,
        record.pid,
        True,
        healthy,
        record.log_file,
        "answering" if healthy else "running but not answering",
    )
