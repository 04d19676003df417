"""Process handling with real (trivial) processes: timeouts name the log, PIDs are checked."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from dongyu.errors import InfraError, InfraTimeout, PortInUse
from dongyu.infra.process import (
    is_running,
    port_is_free,
    require_free_port,
    spawn,
    stop,
    wait_until,
)
from dongyu.infra.state import ProcessRecord


def _record(pid: int, log_file: Path, marker: str) -> ProcessRecord:
    return ProcessRecord("test", pid, (), marker, time.time(), str(log_file), "http://127.0.0.1:1")


def test_a_timeout_names_the_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    pid = spawn([sys.executable, "-c", "import time; time.sleep(30)"], log_file, cwd=tmp_path)
    record = _record(pid, log_file, "time.sleep(30)")
    try:
        with pytest.raises(InfraTimeout) as timeout:
            wait_until(lambda: False, what="the test server", record=record, timeout_s=0.3)
        assert str(log_file) in str(timeout.value)
    finally:
        assert stop(record)
    assert not is_running(record)


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    code = "import sys; print('boom: bad config', file=sys.stderr); sys.exit(3)"
    pid = spawn([sys.executable, "-c", code], log_file, cwd=tmp_path)
    record = _record(pid, log_file, "boom")
    with pytest.raises(InfraError) as exited:
        wait_until(lambda: False, what="the test server", record=record, timeout_s=10)
    assert "exited while starting" in str(exited.value)
    assert str(log_file) in str(exited.value) and "boom: bad config" in str(exited.value)


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    pid = spawn([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "l", cwd=tmp_path)
    mine = _record(pid, tmp_path / "l", "time.sleep(30)")
    other = ProcessRecord("test", pid, (), "some-other-config", 0.0, "", "")
    try:
        assert is_running(mine)
        assert not is_running(other)
        assert not stop(other), "down must not stop a process that is not the one it started"
        assert is_running(mine)
    finally:
        stop(mine)


def test_port_checks() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}.*--the-option"):
            require_free_port(port, "the thing", "--the-option")
    assert port_is_free(port)
