"""The embedded Matrix homeserver: Synapse, configured in the state folder.

One HTTP listener on 127.0.0.1 (client API only: no federation listener, and
``federation_domain_whitelist: []`` so it never talks to other servers), no
TLS, SQLite, no outside key servers, registration closed (users come from the
shared-secret admin API), no URL previews, no presence, no stats, and rate
limits raised for a local testbed (clients must still handle HTTP 429).

The configuration is written by this module (no ``--generate-config`` run):
JSON is YAML, so ``homeserver.yaml`` is JSON text, regenerated on every ``up``
from the secrets kept in ``embedded.json``.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dongyu.errors import InfraError
from dongyu.infra.matrix_http import MatrixHttp, MatrixHttpError, Session
from dongyu.infra.state import random_secret, write_private, write_public
from dongyu.settings import MatrixAccount

log = logging.getLogger("dongyu.infra.synapse")

SERVER = "synapse"
ROOM_NAME = "dongyu management bus"

# A local testbed sends bursts (spec 10: 40 events 80 ms apart were throttled
# by the defaults). Generous, but finite: clients must still handle 429.
_FAST = {"per_second": 1000, "burst_count": 10000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _FAST,
    "rc_registration": _FAST,
    "rc_login": {"address": _FAST, "account": _FAST, "failed_attempts": _FAST},
    "rc_joins": {"local": _FAST, "remote": _FAST},
    "rc_joins_per_room": _FAST,
    "rc_invites": {"per_room": _FAST, "per_user": _FAST, "per_issuer": _FAST},
    "rc_room_creation": _FAST,
    "rc_admin_redaction": _FAST,
    "rc_key_requests": _FAST,
    "rc_3pid_validation": _FAST,
    "rc_media_create": _FAST,
    "rc_presence": {"per_user": _FAST},
    "rc_delayed_event_mgmt": _FAST,
    "rc_user_directory": _FAST,
    "rc_profile": _FAST,
    "rc_reports": _FAST,
}


@dataclass(frozen=True)
class SynapseSecrets:
    registration_shared_secret: str
    macaroon_secret_key: str
    form_secret: str

    @classmethod
    def generate(cls) -> SynapseSecrets:
        return cls(random_secret(48), random_secret(48), random_secret(48))


@dataclass(frozen=True)
class SynapseFiles:
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "homeserver.yaml"

    @property
    def log_config(self) -> Path:
        return self.dir / "log.config"

    @property
    def signing_key(self) -> Path:
        return self.dir / "signing.key"

    @property
    def database(self) -> Path:
        return self.dir / "homeserver.db"

    @property
    def log(self) -> Path:
        return self.dir / "homeserver.log"


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def homeserver_config(
    files: SynapseFiles, *, port: int, server_name: str, keys: SynapseSecrets
) -> dict[str, Any]:
    """Synapse's configuration as data (pure: same arguments, same result)."""
    return {
        "server_name": server_name,
        "public_baseurl": base_url(port) + "/",
        "pid_file": str(files.dir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(files.database)}},
        "log_config": str(files.log_config),
        "media_store_path": str(files.dir / "media_store"),
        "signing_key_path": str(files.signing_key),
        "registration_shared_secret": keys.registration_shared_secret,
        "macaroon_secret_key": keys.macaroon_secret_key,
        "form_secret": keys.form_secret,
        "report_stats": False,
        "enable_registration": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "allow_public_rooms_over_federation": False,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "user_directory": {"enabled": False},
        "include_profile_data_on_invite": False,
        **RATE_LIMITS,
    }


def log_config(files: SynapseFiles) -> dict[str, Any]:
    """Python logging configuration for Synapse: one file, INFO (SQL at WARNING)."""
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(files.log),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def signing_key_text() -> str:
    """An ed25519 signing key in Synapse's file format: ``ed25519 <version> <seed, base64>``."""
    version = "a_" + "".join(secrets.choice(string.ascii_letters) for _ in range(4))
    seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"ed25519 {version} {seed}\n"


_HEADER = "# Generated by 'dongyu infra up' on every start: do not edit. (JSON is YAML.)\n"


def write_files(folder: Path, *, port: int, server_name: str, keys: SynapseSecrets) -> SynapseFiles:
    files = SynapseFiles(folder)
    folder.mkdir(mode=0o700, exist_ok=True)
    cfg = homeserver_config(files, port=port, server_name=server_name, keys=keys)
    write_private(files.config, _HEADER + json.dumps(cfg, indent=2) + "\n")
    write_public(files.log_config, _HEADER + json.dumps(log_config(files), indent=2) + "\n")
    if not files.signing_key.exists():
        write_private(files.signing_key, signing_key_text())
    return files


def command(files: SynapseFiles) -> list[str]:
    return [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(files.config)]


# --------------------------------------------------------------------------- users and room


def user_id(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def ensure_user(
    http: MatrixHttp,
    *,
    localpart: str,
    server_name: str,
    shared_secret: str,
    known: MatrixAccount | None,
) -> tuple[Session, str, str]:
    """The user ``@localpart``, registered once: its session, password and what was done.

    A known, still valid token is kept (no new device); a known password logs
    in again on the same device; otherwise the user is registered with a new
    random password.
    """
    uid = user_id(localpart, server_name)
    if known is not None and known.user_id == uid:
        if known.access_token and http.whoami(known.access_token) == uid:
            return Session(uid, known.access_token, known.device_id), known.password or "", "kept"
        if known.password:
            session = http.login(uid, known.password, device_id=known.device_id)
            return session, known.password, "logged in"
    password = random_secret(32)
    try:
        session = http.register_with_shared_secret(shared_secret, localpart, password)
    except MatrixHttpError as exc:
        if exc.errcode == "M_USER_IN_USE":
            raise InfraError(
                f"{uid} already exists on the embedded homeserver but its password is not in the "
                "state folder's infra.json; delete the state folder to start afresh"
            ) from exc
        raise
    return session, password, "registered"


def ensure_dm_room(
    http: MatrixHttp, *, drop: Session, mbr: Session, known_room_id: str | None
) -> tuple[str, str]:
    """The DM room of drop and mbr, both joined: its id and what was done."""
    if known_room_id is not None:
        try:
            members = http.joined_members(drop.access_token, known_room_id)
        except MatrixHttpError as exc:
            log.warning(
                "the known room %s is not usable (%s): creating a new one", known_room_id, exc
            )
            members = set()
        if drop.user_id in members:
            if mbr.user_id in members:
                return known_room_id, "kept"
            _join(http, drop, mbr, known_room_id)
            return known_room_id, "mbr joined"
    room_id = http.create_dm(drop.access_token, mbr.user_id, name=ROOM_NAME)
    http.join(mbr.access_token, room_id)
    http.set_direct(drop.access_token, drop.user_id, mbr.user_id, room_id)
    http.set_direct(mbr.access_token, mbr.user_id, drop.user_id, room_id)
    return room_id, "created"


def _join(http: MatrixHttp, drop: Session, mbr: Session, room_id: str) -> None:
    try:
        http.join(mbr.access_token, room_id)
    except MatrixHttpError:
        http.invite(drop.access_token, room_id, mbr.user_id)
        http.join(mbr.access_token, room_id)
