"""The site-independent Kustomize base: what every LiteLLM site shares.

Everything here holds for any site; the overlay adds or patches what a site decides
(image, replicas, resources, env, routing, the config). The base alone builds and is valid.
"""

from __future__ import annotations

from typing import Any

from generator.render.common import (
    APP, CONFIG_NAME, CONTAINER_PORT, hardened_container_security, SERVICE_PORT, env_secret, env_value, obj, yaml_file,
)

SOURCE = "generator/render/base.py"
COMMAND = "generator render --all"
# The non-root LiteLLM image (ghcr.io/berriai/litellm-non_root) runs as nobody (65534); the pod
# refuses to start as root. With a read-only root filesystem these paths must be writable: the
# Helm chart's /tmp, /.cache and /.npm, and /var/lib/litellm where the non-root proxy copies its UI.
RUN_AS_USER = 65534
WRITABLE_DIRS = {"tmp": "/tmp", "cache": "/.cache", "npm": "/.npm", "ui": "/var/lib/litellm"}
SELECTOR = {"app": APP}


def render_base() -> dict[str, bytes]:
    files = {
        "base/kustomization.yaml": _kustomization(),
        "base/deployment.yaml": yaml_file(SOURCE, COMMAND, deployment()),
        "base/service.yaml": yaml_file(SOURCE, COMMAND, service()),
    }
    return files


def _kustomization() -> bytes:
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/name": "litellm"}, "includeSelectors": False}],
        "resources": ["deployment.yaml", "service.yaml"],
    }
    return yaml_file(SOURCE, COMMAND, doc)


def base_env() -> list[dict[str, Any]]:
    """Env every site has: secrets only through secretKeyRef to litellm-secrets."""
    return [
        env_secret("LITELLM_MASTER_KEY", "LITELLM_MASTER_KEY"),
        env_secret("LITELLM_SALT_KEY", "LITELLM_SALT_KEY"),
        env_secret("UI_PASSWORD", "ADMIN_PASSWORD"),
        env_secret("DATABASE_URL", "DATABASE_URL"),
        env_secret("GENERIC_CLIENT_SECRET", "CLIENT_SECRET"),
        env_value("LITELLM_MODE", "PRODUCTION"),
    ]


def deployment() -> dict[str, Any]:
    deploy = obj("apps/v1", "Deployment", APP, labels=SELECTOR)
    http_get = lambda path: {"path": path, "port": "http"}  # noqa: E731
    container = {
        "name": APP,
        "image": "ghcr.io/berriai/litellm-non_root",
        "imagePullPolicy": "IfNotPresent",
        # The image's entrypoint runs `litellm "$@"`: only the arguments are ours.
        "args": ["--port", str(CONTAINER_PORT), "--config", "/app/config.yaml"],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": base_env(),
        "startupProbe": {"httpGet": http_get("/health/liveliness"), "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {"httpGet": http_get("/health/liveliness"), "initialDelaySeconds": 30, "periodSeconds": 10,
                          "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": http_get("/health/readiness"), "initialDelaySeconds": 10, "periodSeconds": 5,
                           "timeoutSeconds": 5, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        "securityContext": hardened_container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/app/config.yaml", "subPath": "config.yaml", "readOnly": True},
            *({"name": name, "mountPath": path} for name, path in WRITABLE_DIRS.items()),
        ],
    }
    deploy["spec"] = {
        "replicas": 1,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": dict(SELECTOR)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": dict(SELECTOR)},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 90,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS_USER,
                    "runAsGroup": RUN_AS_USER,
                    "fsGroup": RUN_AS_USER,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [
                    {"name": "config", "configMap": {"name": CONFIG_NAME}},
                    *({"name": name, "emptyDir": {}} for name in WRITABLE_DIRS),
                ],
            },
        },
    }
    return deploy


def service() -> dict[str, Any]:
    svc = obj("v1", "Service", APP, labels=SELECTOR)
    svc["spec"] = {
        "type": "ClusterIP",
        "selector": dict(SELECTOR),
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    return svc
