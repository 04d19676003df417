"""Deploy the remote worker: render the manifests, apply them, wait for the rollout, logs, delete.

The manifests are ``k8s/base`` and its overlays (``k8s/overlays/local``), the
same files ``kubectl apply -k`` takes. :func:`render` implements the small part
of kustomize they use (``resources``, ``patches``/``patchesStrategicMerge`` with
strategic-merge patches), so no kubectl is needed; the tests check it gives what
``kubectl kustomize`` gives.

:func:`deploy` also creates the Secret ``remote-worker-mqtt`` from the state
folder's ``infra.json`` (the ``worker`` MQTT account) and sets the ConfigMap's
``MQTT_PORT`` and topic base from it, then stamps a hash of both on the pod
template, so a changed credential or port rolls the pods.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dongyu.adapters.k8s import KubeClient, PodInfo, RolloutState
from dongyu.errors import K8sError
from dongyu.settings import InfraInfo

log = logging.getLogger("dongyu.k8s.deploy")

Progress = Callable[[str], None]
Doc = dict[str, Any]

APP = "remote-worker"
DEPLOYMENT = "remote-worker"
CONFIGMAP = "remote-worker-config"
SECRET = "remote-worker-mqtt"
SERVICE = "remote-worker-svc"
SELECTOR = f"app={APP}"
NAMESPACE = "default"
CONFIG_HASH = "dongyu.dev/config-hash"
_PERSIST_S = 30.0
# pods stuck in one of these will not become Ready by waiting
_FATAL_WAITING = {
    "ErrImageNeverPull": "the image is not in the node's Docker: run 'dongyu k8s build' "
    "(with kind: 'kind load docker-image dongyuapp-remote-worker:v1')",
    "CreateContainerConfigError": "a ConfigMap or Secret it needs is missing "
    "('dongyu k8s deploy' creates the Secret remote-worker-mqtt from infra.json)",
    "InvalidImageName": "the image name is invalid",
}


def _say(progress: Progress | None) -> Progress:
    return progress or (lambda line: print(line, file=sys.stderr, flush=True))


# --------------------------------------------------------------------------- rendering


def _merge_key(a: list[Any], b: list[Any]) -> str | None:
    items = [*a, *b]
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in ("name", "ip", "mountPath", "containerPort"):
        if all(key in i for i in items):
            return key
    return None


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic-merge patch, simplified: maps merge, named lists merge by name, else replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = _merge_key(base, patch)
        if key is None:
            return copy.deepcopy(patch)
        merged = [copy.deepcopy(i) for i in base]
        index = {i[key]: n for n, i in enumerate(merged)}
        for item in patch:
            if item[key] in index:
                merged[index[item[key]]] = strategic_merge(merged[index[item[key]]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _load_docs(path: Path) -> list[Doc]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise K8sError(f"cannot read the manifest {path}: {exc}") from exc
    return docs


def render(folder: Path) -> list[Doc]:
    """The manifests of a kustomization folder (the subset of kustomize the project uses)."""
    kfile = folder / "kustomization.yaml"
    if not kfile.is_file():
        raise K8sError(f"{folder} has no kustomization.yaml")
    spec = _load_docs(kfile)[0]
    docs: list[Doc] = []
    for res in spec.get("resources", []):
        target = (folder / res).resolve()
        docs.extend(render(target) if target.is_dir() else _load_docs(target))
    patch_files = [p["path"] if isinstance(p, dict) else p for p in spec.get("patches", [])]
    patch_files += list(spec.get("patchesStrategicMerge", []))
    for rel in patch_files:
        for patch in _load_docs(folder / rel):
            name = patch.get("metadata", {}).get("name")
            for n, doc in enumerate(docs):
                if doc.get("kind") == patch.get("kind") and doc["metadata"]["name"] == name:
                    docs[n] = strategic_merge(doc, patch)
                    break
            else:
                raise K8sError(f"patch {rel}: no {patch.get('kind')}/{name} to patch")
    return docs


def default_overlay() -> Path:
    from dongyu.k8s.image import repo_root

    return repo_root() / "k8s" / "overlays" / "local"


# --------------------------------------------------------------------------- settings from infra


@dataclass(frozen=True)
class WorkerDeployment:
    """What ``deploy`` applies: the rendered manifests and the Secret's values."""

    docs: tuple[Doc, ...]
    secret: Mapping[str, str] | None


def with_infra(docs: Sequence[Doc], info: InfraInfo | None) -> WorkerDeployment:
    """Set the ConfigMap's port and topic base and the Secret's login from ``infra.json``."""
    out = [copy.deepcopy(d) for d in docs]
    secret: dict[str, str] | None = None
    if info is not None:
        account = info.mqtt.worker
        if account is None or account.password is None:
            raise K8sError("infra.json has no MQTT account 'worker' with a password")
        secret = {"MQTT_USER": account.username, "MQTT_PASS": account.password}
        for doc in out:
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == CONFIGMAP:
                doc.setdefault("data", {})
                doc["data"]["MQTT_PORT"] = str(info.mqtt.port)
                doc["data"]["DY_MQTT_TOPIC_BASE"] = info.mqtt.topic_base
    configmap = next((d for d in out if d["kind"] == "ConfigMap"), {})
    digest = hashlib.sha256(
        json.dumps([configmap.get("data"), secret], sort_keys=True).encode()
    ).hexdigest()[:16]
    for doc in out:
        if doc["kind"] == "Deployment":
            template_meta = doc["spec"]["template"].setdefault("metadata", {})
            template_meta.setdefault("annotations", {})[CONFIG_HASH] = digest
    return WorkerDeployment(tuple(out), secret)


# --------------------------------------------------------------------------- operations


def client_for(kubeconfig: Path | None) -> KubeClient:
    return KubeClient(kubeconfig)


def apply(
    kube: KubeClient,
    wd: WorkerDeployment,
    *,
    namespace: str = NAMESPACE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    say = _say(progress)
    if wd.secret is not None and not dry_run:
        kube.put_secret(SECRET, namespace, wd.secret, labels={"app": APP})
        say(f"k8s: Secret/{SECRET} written from infra.json")
    applied = kube.apply(wd.docs, namespace, dry_run=dry_run)
    say(f"k8s: applied{' (server dry run)' if dry_run else ''}: {', '.join(applied)}")
    return applied


def _describe(state: RolloutState | None, pods: Sequence[PodInfo]) -> str:
    if state is None:
        return "no Deployment yet"
    pod_text = ", ".join(
        f"{p.name} {'Ready' if p.ready else p.waiting_reason or p.phase}"
        f"{' (terminating)' if p.deleting else ''}"
        for p in pods
    )
    return (
        f"{state.updated}/{state.desired} updated, {state.ready} ready, "
        f"{state.available} available; pods: {pod_text or 'none'}"
    )


def wait_rollout(
    kube: KubeClient,
    *,
    namespace: str = NAMESPACE,
    timeout_s: float = 180.0,
    progress: Progress | None = None,
) -> float:
    """Wait until the Deployment's new pods are all Ready and old ones gone; the seconds."""
    say = _say(progress)
    t0 = time.monotonic()
    last = ""
    seen: dict[tuple[str, str], float] = {}
    while True:
        state = kube.rollout(DEPLOYMENT, namespace)
        pods = kube.pods(namespace, SELECTOR)
        line = _describe(state, pods)
        if line != last:
            say(f"k8s: rollout {time.monotonic() - t0:5.1f} s: {line}")
            last = line
        if state is not None and state.complete and not any(p.deleting for p in pods):
            return time.monotonic() - t0
        for p in pods:
            # the kubelet retries a CreateContainerConfigError (its ConfigMap/Secret cache may
            # lag behind for a moment): fatal only when it lasts
            first = seen.setdefault((p.name, p.waiting_reason or ""), time.monotonic())
            lasting = time.monotonic() - first > _PERSIST_S
            if p.waiting_reason in _FATAL_WAITING and (
                p.waiting_reason != "CreateContainerConfigError" or lasting
            ):
                raise K8sError(
                    f"pod {p.name}: {p.waiting_reason} ({p.waiting_message or ''}): "
                    f"{_FATAL_WAITING[p.waiting_reason]}"
                )
        if time.monotonic() - t0 > timeout_s:
            hint = ""
            crashing = [p for p in pods if p.waiting_reason == "CrashLoopBackOff"]
            if crashing:
                hint = f"; read its logs: dongyu k8s logs (pod {crashing[0].name})"
            raise K8sError(
                f"the rollout of Deployment/{DEPLOYMENT} did not finish within "
                f"{timeout_s:.0f} s: {line}{hint}"
            )
        time.sleep(0.25)


def ready_pods(kube: KubeClient, namespace: str = NAMESPACE) -> list[PodInfo]:
    return [p for p in kube.pods(namespace, SELECTOR) if p.ready and not p.deleting]


def deploy(
    kube: KubeClient,
    info: InfraInfo | None,
    *,
    overlay: Path | None = None,
    namespace: str = NAMESPACE,
    wait: bool = True,
    timeout_s: float = 180.0,
    progress: Progress | None = None,
) -> float:
    """Render, apply with the infra's credentials, wait for the rollout; seconds to Ready."""
    wd = with_infra(render(overlay or default_overlay()), info)
    t0 = time.monotonic()
    apply(kube, wd, namespace=namespace, progress=progress)
    if wait:
        wait_rollout(kube, namespace=namespace, timeout_s=timeout_s, progress=progress)
    return time.monotonic() - t0


def delete(
    kube: KubeClient,
    *,
    overlay: Path | None = None,
    namespace: str = NAMESPACE,
    timeout_s: float = 60.0,
    progress: Progress | None = None,
) -> list[str]:
    """Delete the worker's objects and its Secret; wait until its pods are gone."""
    say = _say(progress)
    docs = render(overlay or default_overlay())
    deleted = kube.delete(docs, namespace)
    if kube.delete_secret(SECRET, namespace):
        deleted.append(f"Secret/{SECRET}")
    say(f"k8s: deleted {', '.join(deleted) or 'nothing (not deployed)'}")
    deadline = time.monotonic() + timeout_s
    # foreground deletion: an object goes only after its dependents (a Deployment after its
    # ReplicaSets and pods); an apply before it is gone would land on an object about to vanish
    while kube.pods(namespace, SELECTOR) or any(kube.exists(d, namespace) for d in docs):
        if time.monotonic() > deadline:
            raise K8sError(f"the worker's pods were not gone within {timeout_s:.0f} s")
        time.sleep(0.25)
    return deleted


def follow_logs(
    kube: KubeClient, *, namespace: str = NAMESPACE, follow: bool = True, tail: int | None = None
) -> Iterator[str]:
    """The log lines of the worker's (first ready, else first) pod."""
    pods = kube.pods(namespace, SELECTOR)
    if not pods:
        raise K8sError("no remote-worker pod: run 'dongyu k8s deploy'")
    live = [p for p in pods if not p.deleting]
    pod = next((p for p in live if p.ready), (live or pods)[0])
    yield from kube.stream_logs(pod.name, namespace, follow=follow, tail_lines=tail)
