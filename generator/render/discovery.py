"""The Thinkube discovery ConfigMap. Flaw 1 of the original is fixed: no secret, no master key."""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import APP, obj
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
                        "min_replicas": 1, "can_disable": True},
            # Only where to reach the proxy. The master key stays in litellm-secrets.
            "environment_variables": {"LITELLM_ENDPOINT": f"{base}/v1"},
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
