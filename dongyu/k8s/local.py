"""The whole local Kubernetes set-up in two calls, for tests and notebooks.

::

    from dongyu.k8s.local import start, stop
    from dongyu.settings import InfraSettings

    session = start(InfraSettings(state_dir=Path("/tmp/x"), mqtt_port=11883))
    # cluster Ready, mosquitto also on 172.17.0.1, image built, worker pod Ready
    session.kube.pods("default", "app=remote-worker"); session.logs()
    stop(session)          # worker deleted, infra down (if started here), cluster down

Order matters: the cluster's Docker bridge (docker0, 172.17.0.1) exists once
dockerd runs, and mosquitto can listen there only then.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from dongyu.adapters.k8s import KubeClient
from dongyu.infra import down as infra_down
from dongyu.infra import up as infra_up
from dongyu.k8s import cluster as k8s_cluster
from dongyu.k8s import deploy
from dongyu.k8s import image as k8s_image
from dongyu.settings import InfraInfo, InfraSettings, read_infra_info

log = logging.getLogger("dongyu.k8s.local")

DOCKER_GATEWAY = "172.17.0.1"  # docker0: where pods of the local cluster reach the host

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LocalSession:
    """A running local cluster with the worker deployed against an infra state folder."""

    cluster: k8s_cluster.ClusterSettings
    kubeconfig: Path
    kube: KubeClient
    info: InfraInfo
    infra: InfraSettings | None
    cluster_result: k8s_cluster.UpResult
    image: k8s_image.ImageResult | None
    apply_to_ready_s: float
    started_cluster: bool = True
    """Whether :func:`start` brought the cluster up (else :func:`stop` leaves it running)."""

    def logs(self, tail: int | None = None) -> str:
        return "\n".join(deploy.follow_logs(self.kube, follow=False, tail=tail))


def start(
    infra: InfraSettings | None = None,
    *,
    state_dir: Path | None = None,
    settings: k8s_cluster.ClusterSettings | None = None,
    build: bool = True,
    base_image: str | None = None,
    progress: Progress | None = None,
    stop_at_exit: bool = False,
) -> LocalSession:
    """Cluster up, infra up (mosquitto also on docker0) when ``infra`` is given, build, deploy.

    With ``state_dir`` instead of ``infra`` the infrastructure must already run,
    with mosquitto listening on 172.17.0.1 (``dongyu infra up --mqtt-extra-listen 172.17.0.1``).
    """
    cfg = settings or k8s_cluster.ClusterSettings.from_env()
    was_running = k8s_cluster.status(cfg).healthy
    up = k8s_cluster.up(cfg, progress=progress)
    if infra is not None:
        extra = tuple(dict.fromkeys((*infra.mqtt_extra_listen, DOCKER_GATEWAY)))
        infra = replace(infra, mqtt_extra_listen=extra)
        info = infra_up(infra, progress=progress).info
    elif state_dir is not None:
        info = read_infra_info(state_dir)
    else:
        raise ValueError("start() needs infra settings or an infra state folder")
    built = k8s_image.build(base_image, cluster=cfg, progress=progress) if build else None
    kube = KubeClient(cfg.kubeconfig)
    seconds = deploy.deploy(kube, info, progress=progress)
    session = LocalSession(
        cfg, cfg.kubeconfig, kube, info, infra, up, built, seconds, started_cluster=not was_running
    )
    if stop_at_exit:
        # a notebook whose cell fails never reaches its last cell: stop at interpreter exit
        atexit.register(_stop_once, session)
    return session


_stopped: set[int] = set()


def _stop_once(session: LocalSession) -> None:
    if id(session) not in _stopped:
        stop(session)


def stop(
    session: LocalSession,
    *,
    cluster_down: bool = True,
    infra_down_too: bool = True,
    progress: Progress | None = None,
) -> None:
    """Delete the worker, stop the infra :func:`start` started, and the cluster if
    :func:`start` started it (a cluster that already ran, e.g. for other tests, stays)."""
    _stopped.add(id(session))
    try:
        deploy.delete(session.kube, progress=progress)
    finally:
        session.kube.close()
        if infra_down_too and session.infra is not None:
            infra_down(session.infra, progress=progress)
        if cluster_down and session.started_cluster:
            k8s_cluster.down(session.cluster, progress=progress)
