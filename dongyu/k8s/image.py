"""The worker image ``dongyuapp-remote-worker:v1`` from ``Dockerfile.remote-worker``.

Steps (each idempotent, one progress line each):

1. wheels of dongyu and its runtime dependencies into ``build/k8s/wheels`` of the
   repository (``pip wheel``), so the image builds without network;
2. the base image: ``BASE_IMAGE`` when given (e.g. ``python:3.11-slim`` where
   images can be pulled); otherwise, when no registry is reachable, a local
   ``dongyu-local/python:3.11-bookworm`` made with ``debootstrap --variant=minbase``
   and ``docker import`` (the root file system is cached as a tar file in the
   cluster's cache folder, so it is made once per machine);
3. ``docker build`` with the classic builder (``DOCKER_BUILDKIT=0``).

Docker is the engine of the local cluster (``DOCKER_HOST`` of
:mod:`dongyu.k8s.cluster`) when it runs and ``DOCKER_HOST`` is not set, so the
kubelet sees the image at once (``imagePullPolicy: Never``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dongyu.errors import K8sError
from dongyu.k8s.cluster import ClusterSettings, debian_mirror, docker_bin, run_logged

log = logging.getLogger("dongyu.k8s.image")

IMAGE = "dongyuapp-remote-worker:v1"
DOCKERFILE = "Dockerfile.remote-worker"
LOCAL_BASE_IMAGE = "dongyu-local/python:3.11-bookworm"
WHEELS_DIR = Path("build/k8s/wheels")
_ROOTFS_TRIM = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/log",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageResult:
    image: str
    base_image: str
    size_bytes: int
    seconds: float
    wheels_seconds: float
    build_seconds: float
    base_seconds: float


def _say(progress: Progress | None) -> Progress:
    return progress or (lambda line: print(line, file=sys.stderr, flush=True))


def repo_root() -> Path:
    """The repository (the folder holding ``Dockerfile.remote-worker``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / DOCKERFILE).is_file():
            return parent
    cwd = Path.cwd()
    if (cwd / DOCKERFILE).is_file():
        return cwd
    raise K8sError(f"cannot find {DOCKERFILE}: run from the repository")


def docker_environment(cluster: ClusterSettings | None = None) -> dict[str, str]:
    """``DOCKER_HOST`` from the environment, else the local cluster's engine when it runs."""
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "0"
    if not env.get("DOCKER_HOST"):
        cfg = cluster or ClusterSettings.from_env()
        if cfg.docker_sock.exists():
            env["DOCKER_HOST"] = cfg.docker_host
    return env


def _image_exists(name: str, env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [docker_bin(), "image", "inspect", name], env=env, capture_output=True, check=False
    )
    return proc.returncode == 0


def image_size(name: str, env: dict[str, str]) -> int:
    proc = subprocess.run(
        [docker_bin(), "image", "inspect", "--format", "{{json .Size}}", name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise K8sError(f"no image {name}: {proc.stderr.strip()}")
    return int(json.loads(proc.stdout))


def build_wheels(root: Path, log_file: Path) -> Path:
    """Wheels of dongyu and its runtime dependencies into ``<root>/build/k8s/wheels``."""
    out = root / WHEELS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("dongyu-*.whl"):
        old.unlink()
    run_logged(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(out), str(root)],
        log_file=log_file,
        what="pip wheel (dongyu and its dependencies)",
        cwd=root,
    )
    return out


def _mirror() -> str | None:
    try:
        return debian_mirror()
    except K8sError:
        return None  # debootstrap's default archive


def base_rootfs(cluster: ClusterSettings, say: Progress) -> Path:
    """The Debian bookworm root file system with python3 as a tar file (cached; debootstrap)."""
    base_dir = cluster.cache_dir / "base"
    base_dir.mkdir(parents=True, exist_ok=True)
    tar_path = base_dir / "bookworm-python3-minbase.tar"
    log_file = base_dir / "base.log"
    if not tar_path.is_file():
        if shutil.which("debootstrap") is None:
            raise K8sError("debootstrap is not installed (scripts/k8s-cluster up installs it)")
        rootfs = base_dir / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        say(f"k8s: making the base root file system with debootstrap (~1 min; log {log_file})")
        run_logged(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv",
                "bookworm",
                str(rootfs),
                *([mirror] if (mirror := _mirror()) else []),
            ],
            log_file=log_file,
            what="debootstrap",
        )
        for rel in _ROOTFS_TRIM:
            target = rootfs / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        tmp = tar_path.with_suffix(".tmp")
        run_logged(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tmp), "."],
            log_file=log_file,
            what="tar of the base root file system",
        )
        tmp.rename(tar_path)
        shutil.rmtree(rootfs, ignore_errors=True)
    return tar_path


def ensure_local_base(
    cluster: ClusterSettings, env: dict[str, str], progress: Progress | None = None
) -> str:
    """The local Python base image, made with debootstrap when missing; its name."""
    say = _say(progress)
    if _image_exists(LOCAL_BASE_IMAGE, env):
        return LOCAL_BASE_IMAGE
    tar_path = base_rootfs(cluster, say)
    log_file = tar_path.with_name("base.log")
    say(f"k8s: importing {LOCAL_BASE_IMAGE} (docker import)")
    run_logged(
        [
            docker_bin(),
            "import",
            "-c",
            "ENV LANG=C.UTF-8",
            "-c",
            'CMD ["python3"]',
            str(tar_path),
            LOCAL_BASE_IMAGE,
        ],
        log_file=log_file,
        what="docker import",
        env=env,
    )
    return LOCAL_BASE_IMAGE


def build(
    base_image: str | None = None,
    *,
    cluster: ClusterSettings | None = None,
    progress: Progress | None = None,
    tag: str = IMAGE,
) -> ImageResult:
    """Build the worker image; ``base_image`` None means the local debootstrap base."""
    say = _say(progress)
    cfg = cluster or ClusterSettings.from_env()
    env = docker_environment(cfg)
    root = repo_root()
    log_dir = root / "build" / "k8s"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "image-build.log"
    log_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    say("k8s: building the wheels (pip wheel) ...")
    build_wheels(root, log_file)
    t1 = time.monotonic()
    wheels = len(list((root / WHEELS_DIR).glob("*.whl")))
    say(f"k8s: {wheels} wheels in {WHEELS_DIR} ({t1 - t0:.1f} s)")
    base = base_image or ensure_local_base(cfg, env, say)
    t2 = time.monotonic()
    say(f"k8s: docker build {tag} from {base} (log {log_file}) ...")
    run_logged(
        [
            docker_bin(),
            "build",
            "-f",
            DOCKERFILE,
            "-t",
            tag,
            "--build-arg",
            f"BASE_IMAGE={base}",
            ".",
        ],
        log_file=log_file,
        what=f"docker build {tag}",
        cwd=root,
        env=env,
    )
    t3 = time.monotonic()
    size = image_size(tag, env)
    say(f"k8s: image {tag} built in {t3 - t2:.1f} s, {size / 1e6:.0f} MB")
    return ImageResult(tag, base, size, t3 - t0, t1 - t0, t3 - t2, t2 - t1)
