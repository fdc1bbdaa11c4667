"""Helpers shared by the renderers: the file header and object skeletons."""

from __future__ import annotations

from typing import Any

from generator.yamlio import dump, dump_all

APP = "litellm"
SECRET_NAME = "litellm-secrets"
CONFIG_NAME = "litellm-config"
CONTAINER_PORT = 4000
SERVICE_PORT = 80
COMMON_LABELS = {"app.kubernetes.io/name": "litellm", "app.kubernetes.io/part-of": "litellm-gitops"}


def header(source: str, command: str) -> str:
    return f"# Generated from {source} by the LiteLLM GitOps generator. Do not edit.\n# To change it, edit {source} and run: {command}\n"


def yaml_file(source: str, command: str, *docs: Any) -> bytes:
    body = dump(docs[0]) if len(docs) == 1 else dump_all(list(docs))
    return (header(source, command) + body).encode("utf-8")


def obj(api_version: str, kind: str, name: str, *, namespace: str | None = None, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def env_value(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def env_secret(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": key}}}


def hardened_container_security() -> dict[str, Any]:
    """The securityContext of every container: no privilege escalation, read-only root, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
