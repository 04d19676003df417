"""The whole chain on this machine: infra plus UI server, MBR and worker as local processes.

Used by ``dongyu up``, the notebooks and the tests. Each component runs as
``python -m dongyu <command>`` with its log in ``<state dir>/logs/<name>.log``;
:meth:`LocalStack.start` returns once each answers on its health endpoint,
:meth:`LocalStack.stop` sends SIGTERM (SIGKILL after a timeout) to the
processes it started, by PID, and stops the infrastructure if it started it.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from dongyu.errors import DongyuError
from dongyu.infra import api as infra
from dongyu.settings import InfraSettings

log = logging.getLogger("dongyu.stack.local")

Progress = Callable[[str], None]
COMPONENTS = ("ui-server", "mbr", "worker")


class StackError(DongyuError):
    code = "stack_error"


@dataclass(frozen=True)
class StackPorts:
    ui: int = 9000
    mbr_health: int = 9101
    worker_health: int = 8080


@dataclass
class Component:
    name: str
    argv: list[str]
    health_url: str
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    ready_s: float | None = None


@dataclass
class LocalStack:
    """``with LocalStack(settings) as stack: ...`` runs the whole chain locally."""

    infra_settings: InfraSettings
    ports: StackPorts = field(default_factory=StackPorts)
    worker_models: tuple[int, ...] = (2, 100)
    worker_id: str = "local_worker_1"
    with_worker: bool = True
    progress: Progress | None = None
    timeout_s: float = 60.0
    components: dict[str, Component] = field(default_factory=dict)
    started_infra: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        return self.infra_settings.state_dir

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ui}"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def _say(self, text: str) -> None:
        log.info("%s", text)
        if self.progress is not None:
            self.progress(text)

    def start(self) -> None:
        # whatever happens to the caller (a failed notebook cell, an exception), the
        # processes started here are stopped when this Python process exits
        atexit.register(self.stop)
        result = infra.up(self.infra_settings, progress=self.progress)
        self.started_infra = result.started
        self.log_dir.mkdir(parents=True, exist_ok=True)
        state = ["--state-dir", str(self.state_dir)]
        wanted: list[Component] = [
            Component(
                "ui-server",
                [sys.executable, "-m", "dongyu", "ui-server", *state, "--port", str(self.ports.ui)],
                f"{self.ui_url}/healthz",
                self.log_dir / "ui-server.log",
            ),
            Component(
                "mbr",
                [
                    sys.executable,
                    "-m",
                    "dongyu",
                    "mbr",
                    *state,
                    "--port",
                    str(self.ports.mbr_health),
                ],
                f"http://127.0.0.1:{self.ports.mbr_health}/readyz",
                self.log_dir / "mbr.log",
            ),
        ]
        if self.with_worker:
            models = [arg for m in self.worker_models for arg in ("--model-id", str(m))]
            wanted.append(
                Component(
                    "worker",
                    [
                        sys.executable,
                        "-m",
                        "dongyu",
                        "worker",
                        *state,
                        "--port",
                        str(self.ports.worker_health),
                        *models,
                        "--state-file",
                        str(self.state_dir / "worker.sqlite"),
                    ],
                    f"http://127.0.0.1:{self.ports.worker_health}/readyz",
                    self.log_dir / "worker.log",
                )
            )
        try:
            for component in wanted:
                self._spawn(component)
            for component in wanted:
                self._wait_ready(component)
        except BaseException:
            self.stop(stop_infra=bool(self.started_infra))
            raise

    def _spawn(self, component: Component) -> None:
        env = dict(os.environ)
        env["WORKER_ID"] = self.worker_id
        env["PYTHONUNBUFFERED"] = "1"
        handle = component.log_file.open("ab")
        try:
            component.process = subprocess.Popen(
                component.argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop them in order
            )
        finally:
            handle.close()
        component.ready_s = None
        self.components[component.name] = component
        self._say(
            f"  {component.name}: started (PID {component.process.pid}), log {component.log_file}"
        )

    def _wait_ready(self, component: Component) -> None:
        assert component.process is not None
        t0 = time.monotonic()
        deadline = t0 + self.timeout_s
        while time.monotonic() < deadline:
            code = component.process.poll()
            if code is not None:
                raise StackError(
                    f"{component.name} exited with code {code} before it was ready; "
                    f"read {component.log_file}:\n{_tail(component.log_file)}"
                )
            if _answers(component.health_url):
                component.ready_s = time.monotonic() - t0
                self._say(f"  {component.name}: ready ({component.ready_s:.1f} s)")
                return
            time.sleep(0.1)
        raise StackError(
            f"{component.name} was not ready after {self.timeout_s:.0f} s; read {component.log_file}:\n"
            f"{_tail(component.log_file)}"
        )

    def stop_component(
        self, name: str, *, kill: bool = False, timeout_s: float = 10.0
    ) -> int | None:
        """Stop one component (SIGTERM, or SIGKILL with ``kill``); its exit code."""
        component = self.components.get(name)
        if component is None or component.process is None:
            return None
        process = component.process
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", name, timeout_s)
                process.kill()
                process.wait(5)
        component.process = None
        return process.returncode

    def start_component(self, name: str) -> None:
        """Start a stopped component again and wait until it is ready."""
        component = self.components[name]
        if component.process is not None and component.process.poll() is None:
            raise StackError(f"{name} is running already")
        self._spawn(component)
        self._wait_ready(component)

    def restart_component(self, name: str) -> None:
        self.stop_component(name)
        self.start_component(name)

    def stop(self, *, stop_infra: bool | None = None) -> None:
        """Stop every component (and the servers this stack started). Idempotent."""
        atexit.unregister(self.stop)
        for name in reversed(list(self.components)):
            code = self.stop_component(name)
            if code is not None:
                self._say(f"  {name}: stopped (exit code {code})")
        if stop_infra if stop_infra is not None else bool(self.started_infra):
            infra.down(self.infra_settings, progress=self.progress)
        self.started_infra = ()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
