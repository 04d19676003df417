"""Settings: typed, frozen values read from the environment and a ``.env`` file.

The environment is read here, at the edge, and nowhere else: every other module
receives the dataclasses below. Variable names are the seed's where it had one
(spec section 9): ``MATRIX_HOMESERVER_URL``, ``MATRIX_MBR_USER``,
``MATRIX_MBR_PASSWORD``, ``MATRIX_MBR_ACCESS_TOKEN``, ``DY_MATRIX_ROOM_ID``,
``MQTT_BROKER_HOST``, ``MQTT_BROKER_PORT`` and the worker's ``MQTT_HOST``,
``MQTT_PORT``, ``MQTT_USER``, ``MQTT_PASS``, ``WORKER_MODEL_ID``, ``WORKER_ID``.
The project's own variables start with ``DY_`` / ``DONGYU_``.

Two sources, in order of precedence: the process environment, then a ``.env``
file (``KEY=value`` lines, ``#`` comments, optional ``export`` and quotes).

The connection facts that ``dongyu infra up`` establishes (homeserver URL, user
ids, passwords and tokens, room id, broker address, MQTT accounts, topic base)
live in ``<state dir>/infra.json``; components read them with
:func:`read_infra_info` and the helpers below, and the environment still wins
over that file where a variable is set.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dongyu.errors import SettingsError

DEFAULT_STATE_DIR = ".dongyu"
DEFAULT_MATRIX_PORT = 8008
DEFAULT_MQTT_PORT = 1883
DEFAULT_SERVER_NAME = "localhost"
DEFAULT_TOPIC_BASE = "UIPUT/ws/dam/pic/de/sw"
DEFAULT_WORKER_MODEL_ID = 2
INFRA_FILE = "infra.json"
INFRA_FILE_VERSION = 1

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

MatrixMode = Literal["embedded", "external"]
MqttMode = Literal["mosquitto", "amqtt", "external"]
BrokerChoice = Literal["auto", "mosquitto", "amqtt"]


# --------------------------------------------------------------------------- the environment


def parse_env_file(text: str) -> dict[str, str]:
    """Parse ``.env`` text: ``KEY=value`` lines; ``#`` comments, ``export`` and quotes allowed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise SettingsError(f".env line {number} is not KEY=value: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load_environment(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> dict[str, str]:
    """The merged environment: ``env_file`` values overridden by ``environ`` (default os.environ)."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        try:
            merged.update(parse_env_file(env_file.read_text(encoding="utf-8")))
        except OSError as exc:
            raise SettingsError(f"cannot read {env_file}: {exc.strerror or exc}") from exc
    merged.update(os.environ if environ is None else environ)
    return merged


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = _get(env, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, not {value!r}") from exc


def _port(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    port = _int(env, name, default)
    if port is not None and not 0 < port < 65536:
        raise SettingsError(f"{name} must be a TCP port (1-65535), not {port}")
    return port


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _get(env, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def matrix_tls_verify(env: Mapping[str, str]) -> bool:
    """Verify the homeserver's TLS certificate? ``DY_MATRIX_TLS_VERIFY`` (default yes).

    The seed ran against a self-signed homeserver with Node's
    ``NODE_TLS_REJECT_UNAUTHORIZED=0``; that variable is honoured too.
    """
    default = env.get("NODE_TLS_REJECT_UNAUTHORIZED", "").strip() != "0"
    return _bool(env, "DY_MATRIX_TLS_VERIFY", default)


# --------------------------------------------------------------------------- what `infra up` needs


@dataclass(frozen=True)
class ExternalMatrix:
    """An existing homeserver named by the environment: nothing embedded is started."""

    homeserver_url: str
    mbr_user: str
    mbr_password: str | None
    mbr_access_token: str | None
    room_id: str | None
    drop_user: str | None
    drop_password: str | None
    drop_access_token: str | None
    tls_verify: bool


@dataclass(frozen=True)
class ExternalMqtt:
    """An existing broker named by the environment: nothing embedded is started."""

    host: str
    port: int
    tls: bool
    mbr_username: str | None
    mbr_password: str | None
    worker_username: str | None
    worker_password: str | None


@dataclass(frozen=True)
class InfraSettings:
    """Everything ``dongyu infra up|down|status`` needs to know before it starts."""

    state_dir: Path
    matrix_port: int | None = None
    mqtt_port: int | None = None
    server_name: str = DEFAULT_SERVER_NAME
    topic_base: str = DEFAULT_TOPIC_BASE
    broker: BrokerChoice = "auto"
    timeout_s: float = 60.0
    matrix_external: ExternalMatrix | None = None
    mqtt_external: ExternalMqtt | None = None
    # more addresses for the embedded mosquitto to listen on besides 127.0.0.1, e.g. the
    # docker0 gateway 172.17.0.1 so pods of the local cluster reach it (DY_MQTT_EXTRA_LISTEN)
    mqtt_extra_listen: tuple[str, ...] = ()


def state_dir_from(env: Mapping[str, str], override: Path | str | None = None) -> Path:
    """The state folder: ``override`` (``--state-dir``), ``DONGYU_STATE_DIR`` or ``./.dongyu``."""
    if override is not None:
        return Path(override).absolute()
    return Path(_get(env, "DONGYU_STATE_DIR") or DEFAULT_STATE_DIR).absolute()


def infra_settings(
    env: Mapping[str, str],
    *,
    state_dir: Path | str | None = None,
    matrix_port: int | None = None,
    mqtt_port: int | None = None,
    broker: BrokerChoice | None = None,
    timeout_s: float | None = None,
    mqtt_extra_listen: tuple[str, ...] | None = None,
) -> InfraSettings:
    """Build :class:`InfraSettings` from an environment (see :func:`load_environment`).

    Keyword arguments (the command-line options) win over the environment.
    """
    chosen_broker = broker or (_get(env, "DY_MQTT_BROKER") or "auto")
    if chosen_broker not in ("auto", "mosquitto", "amqtt"):
        raise SettingsError(
            f"DY_MQTT_BROKER must be auto, mosquitto or amqtt, not {chosen_broker!r}"
        )
    topic_base = _get(env, "DY_MQTT_TOPIC_BASE") or DEFAULT_TOPIC_BASE
    if topic_base.startswith("/") or topic_base.endswith("/") or any(c in topic_base for c in "#+"):
        raise SettingsError(f"DY_MQTT_TOPIC_BASE is not a usable topic prefix: {topic_base!r}")
    timeout = timeout_s if timeout_s is not None else float(_int(env, "DY_INFRA_TIMEOUT", 60) or 60)
    return InfraSettings(
        state_dir=state_dir_from(env, state_dir),
        matrix_port=matrix_port or _port(env, "DY_MATRIX_PORT", None),
        mqtt_port=mqtt_port or _port(env, "DY_MQTT_PORT", None),
        server_name=_get(env, "DY_MATRIX_SERVER_NAME") or DEFAULT_SERVER_NAME,
        topic_base=topic_base,
        broker=chosen_broker,  # type: ignore[arg-type]
        timeout_s=timeout,
        matrix_external=_external_matrix(env),
        mqtt_external=_external_mqtt(env),
        mqtt_extra_listen=_addresses(
            "DY_MQTT_EXTRA_LISTEN",
            ",".join(mqtt_extra_listen)
            if mqtt_extra_listen is not None
            else _get(env, "DY_MQTT_EXTRA_LISTEN") or "",
        ),
    )


def _addresses(name: str, value: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses (e.g. ``172.17.0.1``), checked."""
    found: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            address = str(ipaddress.ip_address(part))
        except ValueError as exc:
            raise SettingsError(f"{name}: {part!r} is not an IP address") from exc
        if address not in found and address != "127.0.0.1":
            found.append(address)
    return tuple(found)


def _external_matrix(env: Mapping[str, str]) -> ExternalMatrix | None:
    url = _get(env, "MATRIX_HOMESERVER_URL")
    if url is None:
        return None
    mbr_user = _get(env, "MATRIX_MBR_USER")
    if mbr_user is None:
        raise SettingsError(
            "MATRIX_HOMESERVER_URL is set (external homeserver): set MATRIX_MBR_USER"
        )
    mbr_password = _get(env, "MATRIX_MBR_PASSWORD")
    mbr_token = _get(env, "MATRIX_MBR_ACCESS_TOKEN")
    if mbr_password is None and mbr_token is None:
        raise SettingsError(
            "MATRIX_HOMESERVER_URL is set (external homeserver): set MATRIX_MBR_PASSWORD "
            "or MATRIX_MBR_ACCESS_TOKEN"
        )
    return ExternalMatrix(
        homeserver_url=url.rstrip("/"),
        mbr_user=mbr_user,
        mbr_password=mbr_password,
        mbr_access_token=mbr_token,
        room_id=_get(env, "DY_MATRIX_ROOM_ID"),
        drop_user=_get(env, "DY_MATRIX_DROP_USER"),
        drop_password=_get(env, "DY_MATRIX_DROP_PASSWORD"),
        drop_access_token=_get(env, "DY_MATRIX_DROP_ACCESS_TOKEN"),
        tls_verify=matrix_tls_verify(env),
    )


def _external_mqtt(env: Mapping[str, str]) -> ExternalMqtt | None:
    host = _get(env, "MQTT_BROKER_HOST")
    if host is None:
        return None
    return ExternalMqtt(
        host=host,
        port=_port(env, "MQTT_BROKER_PORT", DEFAULT_MQTT_PORT) or DEFAULT_MQTT_PORT,
        tls=_bool(env, "DY_MQTT_TLS", False),
        mbr_username=_get(env, "DY_MQTT_MBR_USER"),
        mbr_password=_get(env, "DY_MQTT_MBR_PASSWORD"),
        worker_username=_get(env, "MQTT_USER"),
        worker_password=_get(env, "MQTT_PASS"),
    )


# --------------------------------------------------------------------------- infra.json


@dataclass(frozen=True)
class MatrixAccount:
    """One Matrix user of the chain, as a component needs it to log in and listen."""

    user_id: str
    password: str | None
    access_token: str | None
    device_id: str | None
    matrix_dm_peer_user_id: str | None


@dataclass(frozen=True)
class MatrixInfo:
    """The management bus: homeserver, the DM room and the two users (spec section 5)."""

    mode: MatrixMode
    homeserver_url: str
    server_name: str
    tls_verify: bool
    matrix_room_id: str | None
    mbr: MatrixAccount
    drop: MatrixAccount | None


@dataclass(frozen=True)
class MqttAccount:
    """One MQTT login."""

    username: str
    password: str | None


@dataclass(frozen=True)
class MqttInfo:
    """The control bus: broker address, topic base and one account per component."""

    mode: MqttMode
    host: str
    port: int
    tls: bool
    topic_base: str
    mbr: MqttAccount | None
    worker: MqttAccount | None
    ui: MqttAccount | None = None
    probe: MqttAccount | None = None


@dataclass(frozen=True)
class InfraInfo:
    """The content of ``<state dir>/infra.json``: what every component reads to connect."""

    matrix: MatrixInfo
    mqtt: MqttInfo
    version: int = INFRA_FILE_VERSION
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InfraInfo:
        try:
            if data.get("version") != INFRA_FILE_VERSION:
                raise SettingsError(f"infra.json version {data.get('version')!r} is not supported")
            m, q = data["matrix"], data["mqtt"]
            matrix = MatrixInfo(
                mode=m["mode"],
                homeserver_url=m["homeserver_url"],
                server_name=m["server_name"],
                tls_verify=bool(m["tls_verify"]),
                matrix_room_id=m.get("matrix_room_id"),
                mbr=MatrixAccount(**m["mbr"]),
                drop=MatrixAccount(**m["drop"]) if m.get("drop") else None,
            )
            accounts = {
                name: MqttAccount(**q[name]) if q.get(name) else None
                for name in ("mbr", "worker", "ui", "probe")
            }
            mqtt = MqttInfo(
                mode=q["mode"],
                host=q["host"],
                port=int(q["port"]),
                tls=bool(q["tls"]),
                topic_base=q["topic_base"],
                **accounts,
            )
            return cls(matrix=matrix, mqtt=mqtt, notes=tuple(data.get("notes", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"infra.json does not have the expected shape: {exc!r}") from exc


def infra_file(state_dir: Path) -> Path:
    return state_dir / INFRA_FILE


def read_infra_info(state_dir: Path) -> InfraInfo:
    """Read ``<state dir>/infra.json``; a clear error when ``dongyu infra up`` has not run."""
    path = infra_file(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(f"{path} does not exist: run 'dongyu infra up' first") from exc
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path} is not a JSON object")
    return InfraInfo.from_json(data)


# --------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class WorkerSettings:
    """The remote worker's settings (spec section 9), environment first, then infra.json."""

    mqtt_host: str
    mqtt_port: int
    mqtt_user: str | None
    mqtt_pass: str | None
    model_id: int
    worker_id: str
    topic_base: str
    # every model served: WORKER_MODEL_ID may list several, comma-separated ("2,100")
    model_ids: tuple[int, ...] = ()


def _model_ids(env: Mapping[str, str]) -> tuple[int, ...]:
    value = _get(env, "WORKER_MODEL_ID")
    if value is None:
        return (DEFAULT_WORKER_MODEL_ID,)
    ids: list[int] = []
    for part in value.split(","):
        try:
            ids.append(int(part.strip()))
        except ValueError as exc:
            raise SettingsError(
                f"WORKER_MODEL_ID must be an integer or a comma-separated list, not {value!r}"
            ) from exc
    return tuple(dict.fromkeys(ids))


def worker_settings(env: Mapping[str, str], info: InfraInfo | None = None) -> WorkerSettings:
    """``MQTT_HOST``/``MQTT_PORT``/``MQTT_USER``/``MQTT_PASS``/``WORKER_MODEL_ID``/``WORKER_ID``.

    A variable that is not set falls back to ``info`` (the state folder's
    ``infra.json``) and then to the seed's defaults.
    """
    q = info.mqtt if info is not None else None
    account = q.worker if q is not None else None
    host = _get(env, "MQTT_HOST") or (q.host if q else None)
    if host is None:
        raise SettingsError("MQTT_HOST is not set and there is no infra.json to read it from")
    port = _port(env, "MQTT_PORT", q.port if q else DEFAULT_MQTT_PORT) or DEFAULT_MQTT_PORT
    model_ids = _model_ids(env)
    return WorkerSettings(
        mqtt_host=host,
        mqtt_port=port,
        mqtt_user=_get(env, "MQTT_USER") or (account.username if account else None),
        mqtt_pass=_get(env, "MQTT_PASS") or (account.password if account else None),
        model_id=model_ids[0],
        worker_id=_get(env, "WORKER_ID") or f"worker-{os.getpid()}",
        topic_base=_get(env, "DY_MQTT_TOPIC_BASE") or (q.topic_base if q else DEFAULT_TOPIC_BASE),
        model_ids=model_ids,
    )
