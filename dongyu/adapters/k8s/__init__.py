"""Kubernetes API access (the ``kubernetes`` client library); the only module that imports it."""

from dongyu.adapters.k8s.client import KubeClient, PodInfo, RolloutState

__all__ = ["KubeClient", "PodInfo", "RolloutState"]
