"""How traffic reaches the site and leaves it: the Gateway API route or the Ingress, and the NetworkPolicy
(who may connect in, where the pods may connect out)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from generator.redact import shown
from generator.model.base import DnsLabel, Duration, Model

# Thinkube (ansible/40_thinkube/core/infrastructure/gateway-api/10_deploy.yaml) installs Envoy Gateway in
# envoy-gateway-system, and the Envoy proxy pods that carry the traffic run there too; the Gateway object
# itself lives in gateway-system, where no pod runs.
DEFAULT_GATEWAY_PROXY_NAMESPACE = "envoy-gateway-system"
# Thinkube's former ingress-nginx ran in namespace `ingress` (IngressClass nginx); current Thinkube
# routes everything through the Gateway API.
DEFAULT_INGRESS_CONTROLLER_NAMESPACE = "ingress"


class GatewayRef(Model):
    name: DnsLabel = "thinkube-gateway"
    namespace: DnsLabel = "gateway-system"
    section_name: DnsLabel | None = "https"


class HttpRoute(Model):
    name: DnsLabel = "litellm-route"
    gateway: GatewayRef = GatewayRef()
    request_timeout: Duration = "600s"
    # Where the gateway's data-plane (Envoy proxy) pods run: the NetworkPolicy admits them.
    proxy_namespace: DnsLabel = DEFAULT_GATEWAY_PROXY_NAMESPACE


class Ingress(Model):
    name: DnsLabel = "litellm"
    class_name: DnsLabel = "nginx"
    # Where the ingress controller's pods run: the NetworkPolicy admits them.
    controller_namespace: DnsLabel = DEFAULT_INGRESS_CONTROLLER_NAMESPACE
    tls_secret_name: DnsLabel | None = None
    annotations: dict[str, str] = Field(
        default_factory=lambda: {
            "nginx.ingress.kubernetes.io/proxy-body-size": "10m",
            "nginx.ingress.kubernetes.io/proxy-connect-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-send-timeout": "600",
        }
    )


class Routing(Model):
    type: Literal["httproute", "ingress"] = "httproute"
    httproute: HttpRoute = HttpRoute()
    ingress: Ingress = Ingress()


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{shown(value)} is not a CIDR block such as 203.0.113.0/24") from None
    return value


Cidr = Annotated[str, AfterValidator(_network)]


class ExternalBlock(Model):
    cidr: Cidr
    except_: list[Cidr] = Field(default_factory=list, alias="except")

    @model_validator(mode="after")
    def _inside(self) -> "ExternalBlock":
        outer = ipaddress.ip_network(self.cidr)
        for inner in self.except_:
            if not ipaddress.ip_network(inner).subnet_of(outer):  # type: ignore[arg-type]
                raise ValueError(f"except {inner} is not inside {self.cidr}")
        return self


class Egress(Model):
    """Where the pods may connect, derived from the site's own settings: DNS, then every in-cluster service
    the site names (PostgreSQL, S3, Redis, Langfuse, Keycloak or a model's apiBase on *.svc) by namespace and
    port. A NetworkPolicy matches addresses, not names: destinations outside the cluster (the model providers,
    Keycloak's public URL) are reached through ``external`` blocks, on the ports their URLs name."""

    enabled: bool = False
    dns_namespace: DnsLabel = "kube-system"
    external: list[ExternalBlock] = Field(default_factory=list)


class NetworkPolicy(Model):
    enabled: bool = False
    # The pods that carry the site's traffic (the gateway's Envoy proxies, or the ingress controller,
    # per routing) are always admitted; these namespaces are admitted besides (in-cluster clients).
    allow_from_namespaces: list[DnsLabel] = Field(default_factory=list)
    egress: Egress = Egress()
