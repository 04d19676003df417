"""The state folder of ``dongyu infra``: its layout, secret files and process records.

Layout (``.dongyu/`` by default)::

    infra.json            0600  what components read to connect (dongyu.settings.InfraInfo)
    embedded.json         0600  embedded servers' own secrets and ports (never read by components)
    synapse/              homeserver.yaml (0600), log.config, signing.key (0600),
                          homeserver.db (SQLite), media_store/, homeserver.log
    mosquitto/            mosquitto.conf, passwd (hashed, 0600), acl, data/, mosquitto.log
    amqtt/                the fallback broker: amqtt.json (0600), passwd, amqtt.log
    run/                  one <server>.json per running server: PID, command, start time
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dongyu.errors import InfraError
from dongyu.settings import INFRA_FILE

log = logging.getLogger("dongyu.infra.state")

EMBEDDED_FILE = "embedded.json"
_ALPHABET = string.ascii_letters + string.digits


def random_secret(length: int = 32) -> str:
    """A random string of letters and digits (safe in YAML, URLs and config files)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class StatePaths:
    """Where everything lives inside one state folder."""

    root: Path

    @property
    def infra_file(self) -> Path:
        return self.root / INFRA_FILE

    @property
    def embedded_file(self) -> Path:
        return self.root / EMBEDDED_FILE

    @property
    def synapse_dir(self) -> Path:
        return self.root / "synapse"

    @property
    def mosquitto_dir(self) -> Path:
        return self.root / "mosquitto"

    @property
    def amqtt_dir(self) -> Path:
        return self.root / "amqtt"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def run_file(self, server: str) -> Path:
        return self.run_dir / f"{server}.json"

    def ensure(self) -> None:
        """Create the folder (mode 0711: others may traverse to the broker's files, not list)."""
        try:
            if not self.root.exists():
                self.root.mkdir(parents=True, mode=0o711)
                self.root.chmod(0o711)
            for sub in (self.synapse_dir, self.run_dir):
                sub.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise InfraError(f"cannot create the state folder {self.root}: {exc}") from exc


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (mode 0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, text: str) -> None:
    """Write a file without secrets (mode 0644), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when it does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InfraError(f"cannot read {path}: {exc} (delete it to start afresh)") from exc
    if not isinstance(data, dict):
        raise InfraError(f"{path} is not a JSON object (delete it to start afresh)")
    return data


def write_json_private(path: Path, data: Mapping[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class ProcessRecord:
    """A server process that ``up`` started: enough to find it again and to stop only it."""

    server: str
    pid: int
    argv: tuple[str, ...]
    marker: str
    started_at: float
    log_file: str
    url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "pid": self.pid,
            "argv": list(self.argv),
            "marker": self.marker,
            "started_at": self.started_at,
            "log_file": self.log_file,
            "url": self.url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(
            server=str(data["server"]),
            pid=int(data["pid"]),
            argv=tuple(str(a) for a in data["argv"]),
            marker=str(data["marker"]),
            started_at=float(data["started_at"]),
            log_file=str(data["log_file"]),
            url=str(data["url"]),
        )


def read_record(paths: StatePaths, server: str) -> ProcessRecord | None:
    data = read_json(paths.run_file(server))
    if data is None:
        return None
    try:
        return ProcessRecord.from_json(data)
    except (KeyError, TypeError, ValueError):
        log.warning("ignoring an unreadable process record %s", paths.run_file(server))
        return None


def write_record(paths: StatePaths, record: ProcessRecord) -> None:
    write_json_private(paths.run_file(record.server), record.to_json())


def remove_record(paths: StatePaths, server: str) -> None:
    paths.run_file(server).unlink(missing_ok=True)
