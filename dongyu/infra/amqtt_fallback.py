"""The fallback MQTT broker: amqtt (pure Python), for machines without mosquitto.

``dongyu infra up`` starts it as its own process (``python -m
dongyu.infra.amqtt_runner CONFIG``) so it outlives the command, like
mosquitto. Same contract as mosquitto: bound to 127.0.0.1 only (amqtt's own
default is 0.0.0.0, never used), no anonymous access, the same accounts and
ACL (:mod:`dongyu.infra.acl`). It keeps no messages across restarts (no
persistence), and it is slower (about 0.5 ms a message against 0.1 ms).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dongyu.infra.acl import amqtt_acl
from dongyu.infra.state import write_json_private

log = logging.getLogger("dongyu.infra.amqtt_fallback")

SERVER = "amqtt"


@dataclass(frozen=True)
class AmqttFiles:
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "amqtt.json"

    @property
    def passwd(self) -> Path:
        return self.dir / "passwd"

    @property
    def log(self) -> Path:
        return self.dir / "amqtt.log"


def runner_config(
    files: AmqttFiles, *, port: int, accounts: Mapping[str, str], topic_base: str
) -> dict[str, Any]:
    """What the runner process reads (pure). Holds the passwords: written mode 0600."""
    publish_acl, subscribe_acl = amqtt_acl(topic_base)
    return {
        "bind": f"127.0.0.1:{port}",
        "password_file": str(files.passwd),
        "accounts": dict(accounts),
        "publish_acl": publish_acl,
        "subscribe_acl": subscribe_acl,
    }


def broker_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """amqtt's broker configuration for a runner config (pure)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": config["bind"]}},
        "plugins": {
            "amqtt.plugins.authentication.FileAuthPlugin": {
                "password_file": config["password_file"]
            },
            "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                "publish_acl": config["publish_acl"],
                "acl": config["subscribe_acl"],
            },
        },
    }


def write_files(
    folder: Path, *, port: int, accounts: Mapping[str, str], topic_base: str
) -> AmqttFiles:
    files = AmqttFiles(folder)
    folder.mkdir(mode=0o700, exist_ok=True)
    write_json_private(
        files.config, runner_config(files, port=port, accounts=accounts, topic_base=topic_base)
    )
    return files


def command(files: AmqttFiles) -> list[str]:
    return [sys.executable, "-m", "dongyu.infra.amqtt_runner", str(files.config)]


def available() -> bool:
    """Is amqtt importable by this Python?"""
    import importlib.util

    return importlib.util.find_spec("amqtt") is not None
