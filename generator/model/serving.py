"""How the proxy serves beyond one pod: shared state (Redis), API auth by Keycloak JWT, draining on
rollouts, callbacks and metrics. Closed, typed site sections; model/site.py composes them into ``Site``.

Every secret is a key of the site's ``litellm-secrets`` (sops, then sealed), named here and read by the
pod as an env var of the same name: never a value in the tree.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Protocol

from pydantic import Field, model_validator

from generator.model.scheduling import K8sModel as Section
from generator.model.scheduling import matching

SECRET_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DURATION_RE = re.compile(r"^[0-9]+(s|m)$")

# Thinkube's Valkey (thinkube/thinkube ansible/40_thinkube/optional/valkey/10_deploy.yaml): Deployment and
# Service `valkey` in namespace `valkey`, port 6379, `--requirepass` from Secret valkey-auth key `password`
# (the platform's admin password), no TLS inside the cluster.
VALKEY_HOST = "valkey.valkey.svc.cluster.local"
VALKEY_PORT = 6379
# Thinkube's Langfuse (optional/langfuse/11_deploy.yaml): Service `langfuse`, namespace `langfuse`, port 3000.
LANGFUSE_HOST = "http://langfuse.langfuse.svc.cluster.local:3000"
# Thinkube's Prometheus (optional/prometheus/11_deploy.yaml) is kube-prometheus: Prometheus prometheus-k8s
# in namespace `monitoring`, which selects ServiceMonitors in every namespace but may only read Endpoints
# where a Role lets its ServiceAccount (kube-prometheus grants default, kube-system and monitoring only).
PROMETHEUS_NAMESPACE = "monitoring"
PROMETHEUS_SERVICE_ACCOUNT = "prometheus-k8s"
# LiteLLM's own default drain window (GRACEFUL_SHUTDOWN_TIMEOUT) is 30 s; the route's request timeout is
# 600 s, so a drain shorter than that cuts the longest streaming completions the gateway still allows.
DEFAULT_DRAIN_SECONDS = 600
LICENSE_KEY = "LITELLM_LICENSE"


SecretKey = Annotated[str, matching(SECRET_KEY_RE, "secret key name (UPPER_SNAKE_CASE)")]
Host = Annotated[str, matching(HOSTNAME_RE, "hostname (lowercase labels separated by dots)")]
Url = Annotated[str, matching(URL_RE, "http(s) URL")]
Namespace = Annotated[str, matching(DNS_LABEL_RE, "namespace (a DNS label)")]
Port = Annotated[int, Field(ge=1, le=65535)]


class Redis(Section):
    """LiteLLM's shared state across pods: the router's usage counters (model rpm/tpm, cooldowns) and the
    proxy's coordination cache (key and team rate limits, budgets, spend). Without it each pod counts alone."""

    enabled: bool = False
    host: Host = VALKEY_HOST
    port: Port = VALKEY_PORT
    # the key of litellm-secrets holding the password (copy Thinkube's valkey-auth/password there with
    # `generator secrets set`); null for a server without AUTH
    password_secret: SecretKey | None = "REDIS_PASSWORD"
    tls: bool = False


class JwtAuth(Section):
    """API calls authenticated by a Keycloak access token of the site's realm (LiteLLM ``enable_jwt_auth``).
    LiteLLM 1.108.7 licenses this: the site's secrets must hold LITELLM_LICENSE."""

    enabled: bool = False
    # the audience the token's `aud` must hold (JWT_AUDIENCE), which bootstrap's audience mapper puts into this
    # client's tokens only. Not the client id: Keycloak adds a client's id to the `aud` of every token, of any
    # client, whose user holds roles of that client, and LiteLLM does not check `azp`.
    audience: str | None = None  # default: <keycloak.clientId>-api
    public_key_ttl: Annotated[int, Field(ge=10, le=86400)] = 600


class Drain(Section):
    """On a rollout or a drain, the pod first leaves the Service (its readiness turns 503), then waits for
    its in-flight requests, at most ``seconds``, through LiteLLM's /health/drain (a preStop hook)."""

    enabled: bool = True
    seconds: Annotated[int, Field(ge=5, le=3600)] = DEFAULT_DRAIN_SECONDS
    # The key of litellm-secrets the hook sends as X-Drain-Token: without one, anyone who reaches the proxy
    # (the route is public) could take pods out of rotation. The master key by default: it is in the pod
    # already and grants more than a drain; name a dedicated key to keep the two apart.
    token_secret: SecretKey = "LITELLM_MASTER_KEY"
    # after the drain: time for the process to exit before the kubelet kills it
    exit_seconds: Annotated[int, Field(ge=5, le=300)] = 15

    @property
    def grace_period(self) -> int:
        return self.seconds + self.exit_seconds


class Langfuse(Section):
    host: Url = LANGFUSE_HOST
    public_key_secret: SecretKey = "LANGFUSE_PUBLIC_KEY"
    secret_key_secret: SecretKey = "LANGFUSE_SECRET_KEY"
    # log successful calls, failed calls, or both
    events: Annotated[list[Literal["success", "failure"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["success", "failure"])

    @model_validator(mode="after")
    def _distinct(self) -> "Langfuse":
        if len(set(self.events)) != len(self.events):
            raise ValueError("events must not repeat")
        if self.public_key_secret == self.secret_key_secret:
            raise ValueError("publicKeySecret and secretKeySecret name the same key")
        return self


class Callbacks(Section):
    """LiteLLM logging callbacks (``litellm_settings``); their keys are secret references."""

    langfuse: Langfuse | None = None


class ServiceMonitor(Section):
    enabled: bool = False
    interval: Annotated[str, matching(DURATION_RE, "scrape interval such as 30s or 1m")] = "30s"
    # where Prometheus runs: the NetworkPolicy admits it, and a Role lets its ServiceAccount find the pods
    prometheus_namespace: Namespace = PROMETHEUS_NAMESPACE
    prometheus_service_account: Namespace = PROMETHEUS_SERVICE_ACCOUNT


class Metrics(Section):
    """LiteLLM's Prometheus callback: /metrics/ on the proxy port, unauthenticated (the NetworkPolicy
    admits only the pods that carry traffic and Prometheus)."""

    enabled: bool = False
    service_monitor: ServiceMonitor = ServiceMonitor()


class ServingSections(Protocol):
    """What ``serving_env_names`` reads of a site (``Site`` has these sections)."""

    @property
    def jwt_auth(self) -> JwtAuth: ...

    @property
    def drain(self) -> Drain: ...

    @property
    def callbacks(self) -> Callbacks: ...


def serving_env_names(site: ServingSections) -> set[str]:
    """The env vars these sections set in the pod (render/site.py serving_env renders them; a test keeps the
    two in step): extraEnv may not set them too."""
    names: set[str] = set()
    if site.jwt_auth.enabled:
        names |= {"JWT_PUBLIC_KEY_URL", "JWT_ISSUER", "JWT_AUDIENCE", LICENSE_KEY}
    if site.drain.enabled:
        names |= {"DRAIN_ENDPOINT_TOKEN", "GRACEFUL_SHUTDOWN_TIMEOUT"}
    if site.callbacks.langfuse:
        names |= {"LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}
    return names
