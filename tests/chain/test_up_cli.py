"""`dongyu up` as a user runs it: one line per component, the URL, Ctrl-C stops everything."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dongyu.infra.process import free_port


def test_up_serves_the_page_and_ctrl_c_stops_everything() -> None:
    state = Path(tempfile.mkdtemp(prefix="dongyu-up-test-", dir="/tmp"))
    os.chmod(state, 0o711)
    ports = sorted({free_port() for _ in range(10)})[:5]
    env = dict(os.environ, DY_MATRIX_PORT=str(ports[0]), DY_MQTT_PORT=str(ports[1]))
    for name in ("MATRIX_HOMESERVER_URL", "MQTT_BROKER_HOST", "DONGYU_STATE_DIR"):
        env.pop(name, None)
    argv = [
        sys.executable,
        "-m",
        "dongyu",
        "up",
        "--state-dir",
        str(state),
        "--ui-port",
        str(ports[2]),
        "--mbr-port",
        str(ports[3]),
        "--worker-port",
        str(ports[4]),
    ]
    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("ready: open"):
                break
        text = "\n".join(lines)
        assert f"ready: open http://127.0.0.1:{ports[2]}" in text, text
        for component in ("ui-server", "mbr", "worker"):
            assert f"  {component}: ready" in text, text
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/", timeout=10) as page:
            assert page.status == 200 and 'for="color-100">Color<' in page.read().decode()
        pids = [
            int(line.split("PID ")[1].split(")")[0]) for line in lines if ": started (PID" in line
        ]
        assert len(pids) >= 5, text  # synapse, mosquitto, ui-server, mbr, worker

        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert "stopping the chain" in rest
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"PID {pid} still runs"
        status = subprocess.run(
            [sys.executable, "-m", "dongyu", "infra", "status", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert status.returncode == 1, status.stdout  # nothing answers any more
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(state, ignore_errors=True)


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return True
