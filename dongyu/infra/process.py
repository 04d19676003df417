"""Starting, finding and stopping the embedded servers' processes, and port checks."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dongyu.errors import InfraError, InfraTimeout, PortInUse
from dongyu.infra.state import ProcessRecord

log = logging.getLogger("dongyu.infra.process")

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    """Can a server bind ``host:port`` right now?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def require_free_port(port: int, what: str, option: str) -> None:
    """Raise :class:`PortInUse`, naming the option that changes it, when ``port`` is taken."""
    if not port_is_free(port):
        raise PortInUse(
            f"{what} needs {HOST}:{port}, which another program is already using "
            f"(see 'ss -ltnp sport = :{port}'); stop it or choose another port with {option}"
        )


def free_port(host: str = HOST) -> int:
    """A port that is free now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _reap(pid: int) -> bool:
    """Collect ``pid`` if it is our exited child; True when it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def is_running(record: ProcessRecord) -> bool:
    """Is the process of ``record`` alive, and still the one we started (not a reused PID)?"""
    if _reap(record.pid):
        log.debug("%s (PID %d) has exited", record.server, record.pid)
        return False
    proc = Path(f"/proc/{record.pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = (proc / "stat").read_text()
    except OSError as exc:
        log.debug("%s (PID %d) is gone: %s", record.server, record.pid, exc)
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if not cmdline and state not in ("Z", "X") and time.time() - record.started_at < 10:
        return True  # caught mid-exec: the kernel shows no command line for an instant
    if state in ("Z", "X") or record.marker not in cmdline:
        log.debug(
            "PID %d is not %s: state %s, command %r", record.pid, record.server, state, cmdline
        )
        return False
    return True


def spawn(
    argv: Sequence[str], log_file: Path, *, cwd: Path, env: dict[str, str] | None = None
) -> int:
    """Start a server in its own session, output appended to ``log_file``; its PID."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        raise InfraError(f"cannot start {argv[0]}: {exc}") from exc
    log.info("started %s (PID %d), log %s", argv[0], proc.pid, log_file)
    return proc.pid


def stop(record: ProcessRecord, timeout_s: float = 10.0) -> bool:
    """Stop the process of ``record`` (SIGTERM, then SIGKILL); False when it was not running."""
    if not is_running(record):
        return False
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(record):
            return True
        time.sleep(0.05)
    log.warning(
        "%s (PID %d) ignored SIGTERM for %.0f s: killing it", record.server, record.pid, timeout_s
    )
    try:
        os.kill(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    while is_running(record):
        time.sleep(0.05)
    return True


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    record: ProcessRecord,
    timeout_s: float,
    interval_s: float = 0.05,
) -> float:
    """Poll ``ready`` until it is true; the seconds it took.

    Raises :class:`InfraError` naming the log file when the process exits, and
    :class:`InfraTimeout` (also naming it) when ``timeout_s`` passes.
    """
    start = time.monotonic()
    while True:
        if ready():
            return time.monotonic() - start
        if not is_running(record):
            raise InfraError(
                f"{what} (PID {record.pid}) exited while starting; read {record.log_file}"
                f"{_tail(record.log_file)}"
            )
        if time.monotonic() - start > timeout_s:
            raise InfraTimeout(
                f"{what} (PID {record.pid}) did not answer at {record.url} within "
                f"{timeout_s:.0f} s; read {record.log_file} (it is left running: "
                f"'dongyu infra down' stops it)"
            )
        time.sleep(interval_s)


def _tail(log_file: str, lines: int = 5) -> str:
    try:
        text = Path(log_file).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    if not text:
        return ""
    return "; its last lines:\n  " + "\n  ".join(text[-lines:])
