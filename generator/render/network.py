"""The site's NetworkPolicy: who may call the proxy, and (optionally) where its pods may connect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from generator.model.destinations import destinations
from generator.render.common import APP, CONTAINER_PORT, obj

if TYPE_CHECKING:
    from generator.model import Site

# Envoy Gateway labels the proxy pods of a Gateway with these (its default Kubernetes provider).
ENVOY_PROXY_LABELS = {"app.kubernetes.io/component": "proxy", "app.kubernetes.io/name": "envoy"}
# kube-prometheus (Thinkube's optional Prometheus) labels its Prometheus pods so.
PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus"}


def _namespace(ns: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}


def _tcp(ports: set[int] | list[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in sorted(ports)]


def network_policy(site: Site) -> dict[str, Any]:
    """Admit the pods that carry the site's traffic (the gateway's Envoy proxies or the ingress controller),
    Prometheus when it scrapes, and the extra namespaces the site lists, on the proxy's port only."""
    if site.routing.type == "httproute":
        gateway = site.routing.httproute.gateway
        traffic = {**_namespace(site.traffic_namespace), "podSelector": {"matchLabels": {
            **ENVOY_PROXY_LABELS,
            "gateway.envoyproxy.io/owning-gateway-name": gateway.name,
            "gateway.envoyproxy.io/owning-gateway-namespace": gateway.namespace,
        }}}
    else:
        traffic = _namespace(site.traffic_namespace)
    peers = [traffic]
    monitor = site.metrics.service_monitor
    if site.metrics.enabled and monitor.enabled:
        peers.append({**_namespace(monitor.prometheus_namespace), "podSelector": {"matchLabels": PROMETHEUS_LABELS}})
    peers += [_namespace(ns) for ns in sorted(set(site.network_policy.allow_from_namespaces))
              if ns != site.traffic_namespace]
    doc = obj("networking.k8s.io/v1", "NetworkPolicy", APP, labels={"app": APP})
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": {"app": APP}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]}],
    }
    if site.network_policy.egress.enabled:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["egress"] = egress_rules(site)
    doc["spec"] = spec
    return doc


def egress_rules(site: Site) -> list[dict[str, Any]]:
    """DNS, then each in-cluster namespace on the ports the site names, then the external blocks on the
    ports of the destinations outside the cluster. The ports are the Services' ports: a policy matches the
    pod port after translation, and Thinkube's services (PostgreSQL, SeaweedFS, Valkey, Langfuse) use one."""
    egress = site.network_policy.egress
    rules: list[dict[str, Any]] = [{"to": [_namespace(egress.dns_namespace)],
                                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    inside: dict[str, set[int]] = {}
    outside: set[int] = set()
    for target in destinations(site):
        if target.namespace:
            inside.setdefault(target.namespace, set()).add(target.port)
        else:
            outside.add(target.port)
    rules += [{"to": [_namespace(ns)], "ports": _tcp(ports)} for ns, ports in sorted(inside.items())]
    if egress.external:
        blocks = [{"ipBlock": {"cidr": b.cidr, **({"except": list(b.except_)} if b.except_ else {})}}
                  for b in egress.external]
        rules.append({"to": blocks, "ports": _tcp(outside or {443})})
    return rules
