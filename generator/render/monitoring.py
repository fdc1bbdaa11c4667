"""Prometheus scraping of LiteLLM's /metrics/: a ServiceMonitor, and the read access kube-prometheus needs.

kube-prometheus (Thinkube's optional Prometheus, namespace `monitoring`) selects ServiceMonitors in every
namespace, but its ServiceAccount may only list Services, Endpoints and Pods where a Role allows it
(it ships Roles for default, kube-system and monitoring): without the Role here its targets stay empty.
"""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import APP, obj

MONITOR_NAME = "litellm"
SCRAPE_ROLE = "litellm-prometheus-scrape"


def monitoring_objects(site: Site) -> list[dict[str, Any]]:
    monitor = site.metrics.service_monitor
    service_monitor = obj("monitoring.coreos.com/v1", "ServiceMonitor", MONITOR_NAME, labels={"app": APP})
    service_monitor["spec"] = {
        "selector": {"matchLabels": {"app": APP}},
        "namespaceSelector": {"matchNames": [site.namespace]},
        # LiteLLM mounts its metrics app at /metrics: /metrics answers with a redirect to /metrics/
        "endpoints": [{"port": "http", "path": "/metrics/", "interval": monitor.interval, "scheme": "http"}],
    }
    role = obj("rbac.authorization.k8s.io/v1", "Role", SCRAPE_ROLE, labels={"app": APP})
    role["rules"] = [
        {"apiGroups": [""], "resources": ["services", "endpoints", "pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    ]
    binding = obj("rbac.authorization.k8s.io/v1", "RoleBinding", SCRAPE_ROLE, labels={"app": APP})
    binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SCRAPE_ROLE}
    binding["subjects"] = [{"kind": "ServiceAccount", "name": monitor.prometheus_service_account,
                            "namespace": monitor.prometheus_namespace}]
    return [service_monitor, role, binding]
