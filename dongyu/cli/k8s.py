"""``dongyu k8s build | deploy | status | logs | delete | cluster``: the worker on Kubernetes.

The Kubernetes modules are imported when a command runs, not when the command
line is assembled: the worker image (which runs ``dongyu worker``) has no
``kubernetes`` library.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_UNHEALTHY = 0, 1

_HELP = """\
Run the remote worker on Kubernetes: image dongyuapp-remote-worker:v1, the
manifests in k8s/ (ConfigMap remote-worker-config, Secret remote-worker-mqtt,
Deployment remote-worker, Service remote-worker-svc).

The cluster: KUBECONFIG (or --kubeconfig), else the local single-node cluster's
(scripts/k8s-cluster up), else ~/.kube/config (Docker Desktop, kind, k3s).

  dongyu k8s cluster up       a real single-node cluster on this machine (cached build)
  dongyu k8s build            the worker image (offline, from wheels)
  dongyu k8s deploy           apply with infra.json's MQTT login, wait until Ready
  dongyu k8s status           the Deployment and its pods
  dongyu k8s logs [-f]        the worker pod's logs
  dongyu k8s delete           remove it all (the cluster keeps running)

Plain kubectl works too: kubectl apply -k k8s/overlays/local (create the Secret
first: see k8s/base/secret.example.yaml).
"""


def _kubeconfig(args: argparse.Namespace) -> Path | None:
    from dongyu.k8s.cluster import ClusterSettings

    if args.kubeconfig:
        return Path(args.kubeconfig)
    if os.environ.get("KUBECONFIG"):
        return None  # the library reads it
    local = ClusterSettings.from_env().kubeconfig
    return local if local.is_file() else None


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _client(args: argparse.Namespace) -> Any:
    from dongyu.adapters.k8s import KubeClient

    return KubeClient(_kubeconfig(args))


def _run_cluster(args: argparse.Namespace) -> int:
    from dongyu.k8s import cluster

    if args.action == "up":
        result = cluster.up(progress=_progress)
        print(f"cluster ready in {result.seconds:.1f} s{' (built)' if result.built else ''}")
        print(f"  export KUBECONFIG={result.kubeconfig}")
        print(f"  export DOCKER_HOST={result.docker_host}")
        return EXIT_OK
    if args.action == "down":
        stopped = cluster.down(progress=_progress)
        print(f"stopped: {', '.join(stopped) or 'nothing'}")
        return EXIT_OK
    status = cluster.status()
    for c in status.components:
        state = f"running (PID {c.pid})" if c.running else "stopped"
        print(f"{c.name:24} {state:22} {c.log_file}")
    print(f"node localhost: {'Ready' if status.node_ready else 'not ready'}")
    return EXIT_OK if status.healthy else EXIT_UNHEALTHY


def _run_build(args: argparse.Namespace) -> int:
    from dongyu.k8s import image

    result = image.build(args.base_image, progress=_progress, tag=args.tag)
    print(
        f"{result.image}: {result.size_bytes / 1e6:.0f} MB, built in {result.seconds:.1f} s "
        f"(base {result.base_image})"
    )
    return EXIT_OK


def _run_deploy(args: argparse.Namespace) -> int:
    from dongyu.k8s import deploy
    from dongyu.settings import load_environment, read_infra_info, state_dir_from

    env = load_environment()
    info = None if args.no_infra else read_infra_info(state_dir_from(env, args.state_dir))
    kube = _client(args)
    overlay = Path(args.overlay) if args.overlay else None
    wd = deploy.with_infra(deploy.render(overlay or deploy.default_overlay()), info)
    if args.dry_run:
        deploy.apply(kube, wd, dry_run=True, progress=_progress)
        return EXIT_OK
    seconds = deploy.deploy(
        kube,
        info,
        overlay=overlay,
        wait=not args.no_wait,
        timeout_s=args.timeout,
        progress=_progress,
    )
    print(f"remote-worker {'applied' if args.no_wait else 'Ready'} in {seconds:.1f} s")
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    from dongyu.k8s import deploy

    kube = _client(args)
    state = kube.rollout(deploy.DEPLOYMENT, deploy.NAMESPACE)
    if state is None:
        print("Deployment/remote-worker: not deployed")
        return EXIT_UNHEALTHY
    print(
        f"Deployment/remote-worker: {state.ready}/{state.desired} ready, "
        f"{state.updated} updated, {state.available} available"
    )
    for p in kube.pods(deploy.NAMESPACE, deploy.SELECTOR):
        what = "Ready" if p.ready else (p.waiting_reason or p.phase)
        print(f"  pod {p.name}: {what}, restarts {p.restarts}, IP {p.ip or '-'}")
    return EXIT_OK if state.complete and state.ready >= state.desired else EXIT_UNHEALTHY


def _run_logs(args: argparse.Namespace) -> int:
    from dongyu.k8s import deploy

    kube = _client(args)
    try:
        for line in deploy.follow_logs(kube, follow=args.follow, tail=args.tail):
            print(line, flush=True)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _run_delete(args: argparse.Namespace) -> int:
    from dongyu.k8s import deploy

    deploy.delete(_client(args), progress=_progress)
    return EXIT_OK


def register(commands: Any) -> None:
    k8s = commands.add_parser(
        "k8s",
        help="the remote worker on Kubernetes (build, deploy, status, logs, delete, cluster)",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = k8s.add_subparsers(dest="k8s_command", metavar="ACTION", required=True)

    def add(name: str, helptext: str, run: Any) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = sub.add_parser(name, help=helptext, description=helptext)
        cmd.add_argument("--kubeconfig", metavar="FILE", help="the cluster (default: see above)")
        cmd.set_defaults(run=run)
        return cmd

    c = add("cluster", "a real single-node cluster on this machine (root; cached build)", None)
    c.add_argument("action", choices=("up", "down", "status"))
    c.set_defaults(run=_run_cluster)

    b = add("build", "build the worker image dongyuapp-remote-worker:v1 (offline)", _run_build)
    b.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="the base (e.g. python:3.11-slim); default: a local Debian base made with debootstrap",
    )
    b.add_argument("--tag", default="dongyuapp-remote-worker:v1", help="the image's name")

    d = add(
        "deploy", "apply the manifests with infra.json's MQTT login; wait until Ready", _run_deploy
    )
    d.add_argument("--state-dir", type=Path, help="the infra state folder (default .dongyu)")
    d.add_argument(
        "--overlay", metavar="DIR", help="the kustomization (default k8s/overlays/local)"
    )
    d.add_argument("--no-wait", action="store_true", help="do not wait for the rollout")
    d.add_argument("--timeout", type=float, default=180.0, help="rollout timeout (s)")
    d.add_argument("--dry-run", action="store_true", help="server-side dry run only")
    d.add_argument(
        "--no-infra",
        action="store_true",
        help="do not read infra.json (the Secret must exist; the ConfigMap's port is used)",
    )

    add("status", "the Deployment and its pods", _run_status)

    lg = add("logs", "the worker pod's logs", _run_logs)
    lg.add_argument("-f", "--follow", action="store_true", help="stream new lines")
    lg.add_argument("--tail", type=int, default=None, help="only the last N lines")

    add("delete", "delete the worker's objects and Secret", _run_delete)
