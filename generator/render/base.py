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
# The non-root LiteLLM image (ghcr.io/berriai/litellm-non_root, docker/Dockerfile.non_root) runs as
# nobody (65534); the pod refuses to start as root. The image bakes the Admin UI, restructured and
# marked ready, into /var/lib/litellm/ui and /var/lib/litellm/assets: nothing is mounted over them,
# so LiteLLM serves them as they are and copies nothing at start. HOME and XDG_CACHE_HOME are under
# /app, part of the image. With a read-only root the one writable path is /tmp (Python's tempfile:
# request bodies spooled to disk, the migration's scratch files), an emptyDir with a size limit.
# tests/pod_sandbox runs the pod as the image and the kubelet would and lists what LiteLLM writes.
RUN_AS_USER = 65534
WRITABLE_DIRS = {"tmp": "/tmp"}
TMP_SIZE_LIMIT = "256Mi"
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
        "labels": [{"pairs": {"app.kubernetes.io/name": "litellm"}, "includeSelectors": False, "includeTemplates": True}],
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
        # The migration Job migrates the schema before the pods roll; serving pods never do (races
        # between replicas, a read-only root, pods started before the schema is ready).
        env_value("DISABLE_SCHEMA_UPDATE", "true"),
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
            *writable_mounts(),
        ],
    }
    # No replicas here: the overlay pins them, or leaves them to the platform's scaling (or the HPA).
    deploy["spec"] = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": dict(SELECTOR)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": dict(SELECTOR)},
            "spec": {
                **pod_defaults(),
                "terminationGracePeriodSeconds": 90,
                "containers": [container],
                "volumes": [{"name": "config", "configMap": {"name": CONFIG_NAME}}, *writable_volumes()],
            },
        },
    }
    return deploy


def pod_defaults() -> dict[str, Any]:
    """What every LiteLLM pod (the server and the migration Job) shares: no token, no service links, nobody."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def writable_volumes() -> list[dict[str, Any]]:
    return [{"name": name, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}} for name in WRITABLE_DIRS]


def writable_mounts() -> list[dict[str, Any]]:
    return [{"name": name, "mountPath": path} for name, path in WRITABLE_DIRS.items()]


def service() -> dict[str, Any]:
    svc = obj("v1", "Service", APP, labels=SELECTOR)
    svc["spec"] = {
        "type": "ClusterIP",
        "selector": dict(SELECTOR),
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    return svc
