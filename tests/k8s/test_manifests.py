"""The manifests: rendering (as kubectl kustomize does), the infra's values, server-side dry run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dongyu.infra import mosquitto
from dongyu.k8s import deploy
from dongyu.settings import (
    InfraInfo,
    MatrixAccount,
    MatrixInfo,
    MqttAccount,
    MqttInfo,
    infra_settings,
    worker_settings,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "k8s" / "base"
LOCAL = ROOT / "k8s" / "overlays" / "local"


def _info(port: int = 11883) -> InfraInfo:
    return InfraInfo(
        matrix=MatrixInfo(
            "embedded",
            "http://127.0.0.1:8008",
            "localhost",
            True,
            "!r:localhost",
            MatrixAccount("@mbr:localhost", "p", "t", "D", "@drop:localhost"),
            None,
        ),
        mqtt=MqttInfo(
            "mosquitto",
            "127.0.0.1",
            port,
            False,
            "UIPUT/ws/dam/pic/de/sw",
            MqttAccount("mbr", "m"),
            MqttAccount("worker", "s3cret"),
        ),
    )


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def test_base_has_the_seed_resources() -> None:
    docs = _by_kind(deploy.render(BASE))
    assert set(docs) == {"ConfigMap", "Deployment", "Service"}  # the Secret is never in git
    cm, dep, svc = docs["ConfigMap"], docs["Deployment"], docs["Service"]
    assert cm["metadata"]["name"] == "remote-worker-config"
    assert set(cm["data"]) == {
        "MQTT_HOST",
        "MQTT_PORT",
        "WORKER_MODEL_ID",
        "DY_MQTT_TOPIC_BASE",
        "DY_MQTT_CLIENT_ID",
    }
    assert "MQTT_PASS" not in cm["data"] and "MQTT_USER" not in cm["data"]
    assert dep["metadata"]["name"] == "remote-worker"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "remote-worker"}
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "dongyuapp-remote-worker:v1" and c["imagePullPolicy"] == "Never"
    assert c["resources"] == {
        "requests": {"memory": "128Mi", "cpu": "100m"},
        "limits": {"memory": "256Mi", "cpu": "500m"},
    }
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 0
    assert {"secretRef": {"name": "remote-worker-mqtt"}} in c["envFrom"]
    assert svc["metadata"]["name"] == "remote-worker-svc"
    assert svc["spec"]["ports"][0]["port"] == 8080


def test_local_overlay_maps_the_host_and_serves_both_models() -> None:
    docs = _by_kind(deploy.render(LOCAL))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["hostAliases"] == [{"ip": "172.17.0.1", "hostnames": ["host.docker.internal"]}]
    assert docs["ConfigMap"]["data"]["MQTT_HOST"] == "host.docker.internal"
    assert docs["ConfigMap"]["data"]["WORKER_MODEL_ID"] == "2,100"
    assert pod["containers"][0]["image"] == "dongyuapp-remote-worker:v1"  # the base is kept


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl")
@pytest.mark.parametrize("folder", [BASE, LOCAL], ids=["base", "local"])
def test_render_matches_kubectl_kustomize(folder: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip(f"this kubectl cannot render it: {out.stderr.strip()[:200]}")
    theirs = sorted(
        (d for d in yaml.safe_load_all(out.stdout) if d),
        key=lambda d: (d["kind"], d["metadata"]["name"]),
    )
    ours = sorted(deploy.render(folder), key=lambda d: (d["kind"], d["metadata"]["name"]))
    assert ours == theirs


def test_with_infra_sets_port_secret_and_rolls_on_change() -> None:
    docs = deploy.render(LOCAL)
    a = deploy.with_infra(docs, _info(11883))
    assert a.secret == {"MQTT_USER": "worker", "MQTT_PASS": "s3cret"}
    cm = _by_kind(list(a.docs))["ConfigMap"]
    assert cm["data"]["MQTT_PORT"] == "11883"
    assert "s3cret" not in str(a.docs)  # the password only goes to the Secret
    b = deploy.with_infra(docs, _info(11884))

    def stamp(wd: deploy.WorkerDeployment) -> str:
        dep = _by_kind(list(wd.docs))["Deployment"]
        return str(dep["spec"]["template"]["metadata"]["annotations"][deploy.CONFIG_HASH])

    assert stamp(a) != stamp(b)
    assert stamp(a) == stamp(deploy.with_infra(docs, _info(11883)))


def test_mosquitto_extra_listener_only_when_asked(tmp_path: Path) -> None:
    files = mosquitto.MosquittoFiles(tmp_path)
    plain = mosquitto.config_text(files, 1883, "mosquitto")
    assert [line for line in plain.splitlines() if line.startswith("listener")] == [
        "listener 1883 127.0.0.1"
    ]
    extra = mosquitto.config_text(files, 1883, "mosquitto", ("172.17.0.1",))
    assert [line for line in extra.splitlines() if line.startswith("listener")] == [
        "listener 1883 127.0.0.1",
        "listener 1883 172.17.0.1",
    ]
    assert infra_settings({}).mqtt_extra_listen == ()
    env = {"DY_MQTT_EXTRA_LISTEN": "172.17.0.1, 127.0.0.1"}
    assert infra_settings(env).mqtt_extra_listen == ("172.17.0.1",)


def test_worker_model_id_may_list_several() -> None:
    env = {"MQTT_HOST": "h", "WORKER_MODEL_ID": "2,100"}
    s = worker_settings(env)
    assert s.model_id == 2 and s.model_ids == (2, 100)
    assert worker_settings({"MQTT_HOST": "h"}).model_ids == (2,)


@pytest.mark.k8s
@pytest.mark.parametrize("folder", [BASE, LOCAL], ids=["base", "local"])
def test_server_side_dry_run(kube: Any, folder: Path) -> None:
    wd = deploy.with_infra(deploy.render(folder), _info())
    applied = deploy.apply(kube, wd, dry_run=True)
    assert sorted(applied) == [
        "ConfigMap/remote-worker-config",
        "Deployment/remote-worker",
        "Service/remote-worker-svc",
    ]


@pytest.mark.k8s
def test_server_side_dry_run_refuses_a_broken_manifest(kube: Any) -> None:
    from dongyu.errors import K8sError

    docs = deploy.render(LOCAL)
    dep = _by_kind(docs)["Deployment"]
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "lots"
    with pytest.raises(K8sError, match="Deployment/remote-worker"):
        deploy.apply(kube, deploy.WorkerDeployment(tuple(docs), None), dry_run=True)
