"""Passwords and access tokens never reach a log file (components' and servers')."""

from __future__ import annotations

from pathlib import Path

from dongyu.infra.state import StatePaths, read_json
from dongyu.settings import read_infra_info
from dongyu.stack.local import LocalStack
from tests.chain.conftest import http, ui_event


def _secrets(stack: LocalStack) -> set[str]:
    info = read_infra_info(stack.state_dir)
    found: set[str] = set()
    for account in (info.matrix.mbr, info.matrix.drop):
        if account is not None:
            found |= {s for s in (account.password, account.access_token) if s}
    for mqtt_account in (info.mqtt.mbr, info.mqtt.worker, info.mqtt.ui, info.mqtt.probe):
        if mqtt_account is not None and mqtt_account.password:
            found.add(mqtt_account.password)
    embedded = read_json(StatePaths(stack.state_dir).embedded_file) or {}
    found |= {
        v for v in embedded.get("synapse", {}).get("secrets", {}).values() if isinstance(v, str)
    }
    return {s for s in found if len(s) >= 8}


def test_no_secret_in_any_log(stack: LocalStack) -> None:
    # make every component work a little first
    assert (
        http(
            "POST", f"{stack.ui_url}/ui_event", ui_event(100, "input_value", "#010203", "secrets-1")
        )[0]
        == 200
    )
    secrets = _secrets(stack)
    assert len(secrets) >= 6, "the test must know the secrets it looks for"
    logs = [p for p in Path(stack.state_dir).rglob("*.log") if p.is_file()]
    assert any(p.name == "worker.log" for p in logs) and any(p.name == "mbr.log" for p in logs)
    leaks = [
        (p.name, s[:4] + "...") for p in logs for s in secrets if s in p.read_text(errors="replace")
    ]
    assert leaks == [], leaks


def test_secret_files_are_private(stack: LocalStack) -> None:
    paths = StatePaths(stack.state_dir)
    for path in (paths.infra_file, paths.embedded_file):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
