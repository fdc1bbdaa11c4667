"""The Thinkube discovery ConfigMap. Flaw 1 of the original is fixed: no secret value in it.

Thinkube's readers take ``service.environment_variables`` as a list of ``{name, value}`` or
``{name, valueFrom: {secretKeyRef: {namespace, name, key}}}``: the JupyterHub discovery script
resolves the reference, so the master key is exported as in the original without being written
here; code-server's env refresh (ansible/roles/code_server_env_update) takes the ``value`` entries
and skips the reference. thinkube-control scales the service
by patching the Deployment's spec.replicas; ``can_disable`` is true only when the tree leaves that
field alone (Site.platform_owns_replicas).
"""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import APP, SECRET_NAME, obj
from generator.yamlio import dump


def service_config(site: Site) -> dict[str, Any]:
    d = site.discovery
    base = f"https://{site.host}"
    service = {
        "service": {
            "name": APP,
            "display_name": d.display_name,
            "description": d.description,
            "type": d.type,
            "category": d.category,
            "icon": d.icon,
            "component_version": d.component_version,
            "endpoints": [
                {"name": "dashboard", "type": "http", "url": f"{base}/ui", "primary": True,
                 "health_url": f"{base}/health/readiness"},
                {"name": "api", "type": "http", "url": f"{base}/v1"},
            ],
            "dependencies": list(d.dependencies),
            "scaling": {"resource_type": "deployment", "resource_name": APP, "namespace": site.namespace,
                        "min_replicas": site.hpa.min_replicas if site.hpa.enabled else 1,
                        "can_disable": site.platform_owns_replicas},
            "environment_variables": environment_variables(site),
        }
    }
    cm = obj("v1", "ConfigMap", "thinkube-service-config", labels={
        "thinkube.io/managed": "true",
        "thinkube.io/service-type": d.type,
        "thinkube.io/service-name": APP,
        "thinkube.io/component-version": d.component_version,
    })
    cm["data"] = {"service.yaml": dump(service)}
    return cm


def environment_variables(site: Site) -> list[dict[str, Any]]:
    """Where to reach the proxy, and the master key by reference: never a secret value. LITELLM_ENDPOINT is the
    bare host, as Thinkube's own is: its consumers append the paths (its check calls $LITELLM_ENDPOINT/health)."""
    entries: list[dict[str, Any]] = [{"name": "LITELLM_ENDPOINT", "value": f"https://{site.host}"}]
    if site.discovery.export_master_key:
        entries.append({"name": "LITELLM_MASTER_KEY", "valueFrom": {"secretKeyRef": {
            "namespace": site.namespace, "name": SECRET_NAME, "key": "LITELLM_MASTER_KEY"}}})
    return entries
