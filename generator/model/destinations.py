"""Where a site's pods connect, read from its own settings: what the egress policy admits, and what it
cannot admit by name (a NetworkPolicy matches addresses: a destination outside the cluster needs a CIDR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from generator.model.data import S3, Cache, Postgres
from generator.model.proxy import ModelEntry, PassThroughEndpoint
from generator.model.serving import Callbacks, Redis

CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")


@dataclass(frozen=True)
class Destination:
    what: str  # the site field that names it
    host: str
    port: int

    @property
    def namespace(self) -> str | None:
        """The namespace of an in-cluster Service name (<service>.<namespace>.svc[.cluster.local])."""
        for suffix in CLUSTER_SUFFIXES:
            if self.host.endswith(suffix):
                labels = self.host[: -len(suffix)].split(".")
                return labels[1] if len(labels) == 2 else None
        return None


class Reaching(Protocol):
    """What ``destinations`` reads of a site (``Site`` has these sections and ``keycloak_url``)."""

    @property
    def postgres(self) -> Postgres: ...

    @property
    def keycloak_url(self) -> str: ...

    @property
    def cache(self) -> Cache: ...

    @property
    def s3(self) -> S3: ...

    @property
    def redis(self) -> Redis: ...

    @property
    def callbacks(self) -> Callbacks: ...

    @property
    def models(self) -> list[ModelEntry]: ...

    @property
    def pass_through_endpoints(self) -> list[PassThroughEndpoint]: ...


def _url(what: str, url: str) -> Destination:
    parts = urlsplit(url)
    return Destination(what, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


def destinations(site: Reaching) -> list[Destination]:
    """Every address the pods connect to, read from the site's own settings."""
    found = [Destination("postgres.host", site.postgres.host, site.postgres.port), _url("keycloak.url", site.keycloak_url)]
    if site.cache.enabled:
        found.append(_url("s3.endpoint", site.s3.endpoint))
    if site.redis.enabled:
        found.append(Destination("redis.host", site.redis.host, site.redis.port))
    if site.callbacks.langfuse:
        found.append(_url("callbacks.langfuse.host", site.callbacks.langfuse.host))
    for index, entry in enumerate(site.models):
        if entry.api_base:
            found.append(_url(f"models[{index}].apiBase", entry.api_base))
        else:  # the provider's public API
            found.append(Destination(f"models[{index}] ({entry.model.split('/')[0]})", "", 443))
    for index, endpoint in enumerate(site.pass_through_endpoints):
        found.append(_url(f"passThroughEndpoints[{index}].target", endpoint.target))
    return found


def external_destinations(site: Reaching) -> list[str]:
    return [d.what for d in destinations(site) if d.namespace is None]
