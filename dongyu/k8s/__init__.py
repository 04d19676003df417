"""Kubernetes for the remote worker: a local single-node cluster, the worker image, deployment.

- :mod:`dongyu.k8s.cluster`: build (cached), start, stop a real single-node
  Kubernetes v1.20 on this machine (``scripts/k8s-cluster``, ``dongyu k8s cluster``);
- :mod:`dongyu.k8s.image`: the worker image ``dongyuapp-remote-worker:v1``;
- :mod:`dongyu.k8s.deploy`: render the manifests, apply them with the infra's
  credentials, wait for the rollout, logs, delete (through :mod:`dongyu.adapters.k8s`).

The ``kubernetes`` client library is imported by :mod:`dongyu.adapters.k8s` only.
"""
