"""Fixtures of the Kubernetes tests: the real local cluster, the infra, the image, the worker.

Everything is session-scoped and started once: the cluster (``dongyu.k8s.cluster.up``,
built once per machine and cached in /var/cache/dongyu-k8s), the Matrix and MQTT
servers in a temporary state folder with mosquitto also listening on the docker0
gateway (so the pod reaches it), the worker image, the Deployment. At the end it
stops what it started: a cluster that already ran before the tests is left running.

``DY_K8S_TESTS=0`` skips the tests marked ``k8s`` (e.g. on a machine without root).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dongyu.infra.process import free_port
from dongyu.settings import InfraInfo, InfraSettings

K8S_TIMEOUT_S = 240.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.environ.get("DY_K8S_TESTS", "1") == "0":
        reason = "DY_K8S_TESTS=0"
    elif os.geteuid() != 0:
        reason = "the local Kubernetes cluster needs root"
    if reason is None:
        return
    for item in items:
        if "k8s" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    """Timings the tests measure, written to build/k8s/figures.json at the end."""
    found: dict[str, Any] = {}
    yield found
    if found:
        out = Path(__file__).resolve().parents[2] / "build" / "k8s" / "figures.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(found, indent=2) + "\n")


@pytest.fixture(scope="session")
def k8s_cluster(figures: dict[str, Any]) -> Iterator[Any]:
    from dongyu.k8s import cluster

    settings = cluster.ClusterSettings.from_env()
    was_running = cluster.status(settings).healthy
    result = cluster.up(settings, progress=print)
    figures["cluster_up_s"] = round(result.seconds, 1)
    figures["cluster_built"] = result.built
    yield settings
    if not was_running:
        cluster.down(settings, progress=print)


@pytest.fixture(scope="session")
def k8s_infra_settings(tmp_path_factory: pytest.TempPathFactory) -> InfraSettings:
    """A temporary state folder and free ports; mosquitto also on 172.17.0.1."""
    from dongyu.k8s.local import DOCKER_GATEWAY

    return InfraSettings(
        state_dir=tmp_path_factory.mktemp("k8s-infra"),
        matrix_port=free_port(),
        mqtt_port=free_port(),
        broker="mosquitto",
        mqtt_extra_listen=(DOCKER_GATEWAY,),
    )


@pytest.fixture(scope="session")
def k8s_infra(k8s_cluster: Any, k8s_infra_settings: InfraSettings) -> Iterator[InfraInfo]:
    """Synapse and mosquitto (see ``k8s_infra_settings``), started after the cluster."""
    from dongyu.infra import down, up

    settings = k8s_infra_settings
    result = up(settings, progress=print)
    yield result.info
    down(settings, progress=print)


@pytest.fixture(scope="session")
def worker_image(k8s_cluster: Any, figures: dict[str, Any]) -> Any:
    from dongyu.k8s import image

    result = image.build(cluster=k8s_cluster, progress=print)
    figures["image_build_s"] = round(result.seconds, 1)
    figures["image_docker_build_s"] = round(result.build_seconds, 1)
    figures["image_base_s"] = round(result.base_seconds, 1)
    figures["image_size_mb"] = round(result.size_bytes / 1e6, 1)
    return result


@pytest.fixture(scope="session")
def kube(k8s_cluster: Any) -> Iterator[Any]:
    from dongyu.adapters.k8s import KubeClient

    client = KubeClient(k8s_cluster.kubeconfig)
    yield client
    client.close()


@pytest.fixture(scope="session")
def deployed(
    kube: Any, k8s_infra: InfraInfo, worker_image: Any, figures: dict[str, Any]
) -> Iterator[float]:
    """The worker deployed with the infra's credentials and Ready; the apply-to-Ready seconds."""
    from dongyu.k8s import deploy

    deploy.delete(kube, progress=print)  # a clean start: no pod of an earlier run
    seconds = deploy.deploy(kube, k8s_infra, timeout_s=K8S_TIMEOUT_S, progress=print)
    figures["apply_to_ready_s"] = round(seconds, 1)
    yield seconds
    deploy.delete(kube, progress=print)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
