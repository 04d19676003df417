"""A small typed face of the ``kubernetes`` client: apply, secrets, rollouts, pods, logs.

Everything the rest of dongyu needs from a cluster goes through :class:`KubeClient`;
the ``kubernetes`` library is imported here only (an import-linter contract).
Errors of the library become :class:`~dongyu.errors.K8sError` with the API's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from dongyu.errors import K8sError

log = logging.getLogger("dongyu.adapters.k8s.client")

FIELD_MANAGER = "dongyu"


@dataclass(frozen=True)
class PodInfo:
    """One pod, as the rollout and the tests need it."""

    name: str
    phase: str
    ready: bool
    restarts: int
    ip: str | None
    node: str | None
    deleting: bool
    waiting_reason: str | None
    waiting_message: str | None
    started_at: float | None


@dataclass(frozen=True)
class RolloutState:
    """A Deployment's progress."""

    name: str
    generation: int
    observed_generation: int
    replicas: int
    desired: int
    updated: int
    ready: int
    available: int
    conditions: tuple[tuple[str, str, str], ...]  # (type, status, message)

    @property
    def complete(self) -> bool:
        return (
            self.observed_generation >= self.generation
            and self.updated == self.desired
            and self.replicas == self.desired
            and self.available == self.desired
        )


def _reason(exc: ApiException | DynamicApiError) -> str:
    body = getattr(exc, "body", None) or getattr(exc, "summary", lambda: "")()
    return f"{getattr(exc, 'status', '?')} {getattr(exc, 'reason', '')}: {body}".strip()


class KubeClient:
    """``KubeClient(Path("kubeconfig"))``; ``None`` uses ``$KUBECONFIG`` / ``~/.kube/config``."""

    def __init__(self, kubeconfig: Path | None = None, *, context: str | None = None) -> None:
        try:
            self.api: Any = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except (config.ConfigException, OSError) as exc:
            raise K8sError(
                f"cannot load the kubeconfig {kubeconfig or '(default)'}: {exc}"
            ) from exc
        # the library's models are loosely typed (Optional everywhere): handled as Any here
        self.core: Any = client.CoreV1Api(self.api)
        self.apps: Any = client.AppsV1Api(self.api)
        self._dynamic: Any = None

    def close(self) -> None:
        self.api.close()

    @property
    def dynamic(self) -> Any:
        if self._dynamic is None:
            try:
                self._dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                raise K8sError(f"cannot reach the API server: {exc}") from exc
        return self._dynamic

    # ---- cluster ---------------------------------------------------------
    def server_version(self) -> str:
        try:
            info: Any = client.VersionApi(self.api).get_code()
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            raise K8sError(f"cannot reach the API server: {exc}") from exc
        return str(info.git_version)

    def nodes_ready(self) -> dict[str, bool]:
        nodes = self.core.list_node().items
        return {
            n.metadata.name: any(
                c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])
            )
            for n in nodes
        }

    # ---- apply / delete ----------------------------------------------------
    def apply(
        self, docs: Sequence[Mapping[str, Any]], namespace: str, *, dry_run: bool = False
    ) -> list[str]:
        """Server-side apply of each manifest (``force``: dongyu owns these fields); their names."""
        applied: list[str] = []
        for doc in docs:
            kind, name = str(doc["kind"]), str(doc["metadata"]["name"])
            try:
                resource = self.dynamic.resources.get(api_version=doc["apiVersion"], kind=kind)
                kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": True}
                if dry_run:
                    kwargs["dry_run"] = "All"
                resource.server_side_apply(
                    body=dict(doc),
                    name=name,
                    namespace=namespace if resource.namespaced else None,
                    **kwargs,
                )
            except (DynamicApiError, ResourceNotFoundError, ApiException) as exc:
                raise K8sError(
                    f"applying {kind}/{name}{' (dry run)' if dry_run else ''} failed: "
                    f"{_reason(exc) if not isinstance(exc, ResourceNotFoundError) else exc}"
                ) from exc
            applied.append(f"{kind}/{name}")
        return applied

    def delete(self, docs: Sequence[Mapping[str, Any]], namespace: str) -> list[str]:
        """Delete each manifest's object; the ones that existed."""
        deleted: list[str] = []
        for doc in docs:
            kind, name = str(doc["kind"]), str(doc["metadata"]["name"])
            try:
                resource = self.dynamic.resources.get(api_version=doc["apiVersion"], kind=kind)
                resource.delete(
                    name=name,
                    namespace=namespace if resource.namespaced else None,
                    body={"propagationPolicy": "Foreground"},
                )
            except DynamicApiError as exc:
                if exc.status == 404:
                    continue
                raise K8sError(f"deleting {kind}/{name} failed: {_reason(exc)}") from exc
            deleted.append(f"{kind}/{name}")
        return deleted

    def exists(self, doc: Mapping[str, Any], namespace: str) -> bool:
        """Does the manifest's object exist (also while it is being deleted)?"""
        kind, name = str(doc["kind"]), str(doc["metadata"]["name"])
        try:
            resource = self.dynamic.resources.get(api_version=doc["apiVersion"], kind=kind)
            resource.get(name=name, namespace=namespace if resource.namespaced else None)
        except DynamicApiError as exc:
            if exc.status == 404:
                return False
            raise K8sError(f"reading {kind}/{name} failed: {_reason(exc)}") from exc
        return True

    def put_secret(
        self,
        name: str,
        namespace: str,
        string_data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Create or replace an Opaque Secret."""
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels=dict(labels or {})),
            type="Opaque",
            string_data=dict(string_data),
        )
        try:
            self.core.replace_namespaced_secret(name, namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise K8sError(f"replacing Secret/{name} failed: {_reason(exc)}") from exc
            try:
                self.core.create_namespaced_secret(namespace, body)
            except ApiException as exc2:
                raise K8sError(f"creating Secret/{name} failed: {_reason(exc2)}") from exc2

    def delete_secret(self, name: str, namespace: str) -> bool:
        try:
            self.core.delete_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise K8sError(f"deleting Secret/{name} failed: {_reason(exc)}") from exc
        return True

    # ---- rollouts and pods -------------------------------------------------
    def rollout(self, name: str, namespace: str) -> RolloutState | None:
        try:
            d = self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise K8sError(f"reading Deployment/{name} failed: {_reason(exc)}") from exc
        s = d.status
        return RolloutState(
            name=name,
            generation=d.metadata.generation or 0,
            observed_generation=s.observed_generation or 0,
            replicas=s.replicas or 0,
            desired=d.spec.replicas if d.spec.replicas is not None else 1,
            updated=s.updated_replicas or 0,
            ready=s.ready_replicas or 0,
            available=s.available_replicas or 0,
            conditions=tuple((c.type, c.status, c.message or "") for c in (s.conditions or [])),
        )

    def pods(self, namespace: str, selector: str) -> list[PodInfo]:
        try:
            items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        except ApiException as exc:
            raise K8sError(f"listing pods ({selector}) failed: {_reason(exc)}") from exc
        return sorted((_pod(p) for p in items), key=lambda p: p.name)

    def delete_pod(self, name: str, namespace: str, grace_s: int | None = None) -> None:
        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_s)
        except ApiException as exc:
            if exc.status != 404:
                raise K8sError(f"deleting Pod/{name} failed: {_reason(exc)}") from exc

    def logs(self, pod: str, namespace: str, *, tail_lines: int | None = None) -> str:
        try:
            text: str = self.core.read_namespaced_pod_log(
                pod, namespace, tail_lines=tail_lines, _preload_content=True
            )
        except ApiException as exc:
            raise K8sError(f"reading the logs of {pod} failed: {_reason(exc)}") from exc
        return text

    def stream_logs(
        self, pod: str, namespace: str, *, follow: bool = True, tail_lines: int | None = None
    ) -> Iterator[str]:
        """The pod's log lines as they come (``follow``), until the container stops."""
        if not follow:  # the library's watch always follows
            yield from self.logs(pod, namespace, tail_lines=tail_lines).splitlines()
            return
        kwargs: dict[str, Any] = {}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        w: Any = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            yield from w.stream(self.core.read_namespaced_pod_log, pod, namespace, **kwargs)
        except ApiException as exc:
            raise K8sError(f"streaming the logs of {pod} failed: {_reason(exc)}") from exc
        finally:
            w.stop()


def _pod(p: Any) -> PodInfo:
    statuses = p.status.container_statuses or []
    waiting = next((c.state.waiting for c in statuses if c.state and c.state.waiting), None)
    running = next((c.state.running for c in statuses if c.state and c.state.running), None)
    return PodInfo(
        name=p.metadata.name,
        phase=p.status.phase or "Unknown",
        ready=bool(statuses) and all(c.ready for c in statuses),
        restarts=sum(c.restart_count or 0 for c in statuses),
        ip=p.status.pod_ip,
        node=p.spec.node_name,
        deleting=p.metadata.deletion_timestamp is not None,
        waiting_reason=waiting.reason if waiting else None,
        waiting_message=waiting.message if waiting else None,
        started_at=running.started_at.timestamp() if running and running.started_at else None,
    )
