"""The repository's own settings, ``platform.yaml`` (optional): what a stock Thinkube lacks and the tree brings.

Thinkube's core installs Argo CD, Gitea, Harbor, Keycloak, PostgreSQL and SeaweedFS, but neither the
sealed-secrets controller nor Flux. The tree therefore renders the controller (``deploy/platform/``),
ordered before every site by each engine, and the engines' credential for the GitOps repository,
sealed from ``platform/git.sops.yaml``. Where another team already runs the controller, set
``sealedSecrets.install: false``; where the engines' credential is made outside git (``flux bootstrap``'s
deploy key), set ``gitCredential: external``. ``generator doctor --cluster`` checks either way.
The loader reads the file (``loader.load_platform``), with the other inputs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from generator.model import DnsLabel, GitUrl, Model
from generator.model.gitops import ArgoDestination

SETTINGS_FILE = "platform.yaml"
PLATFORM_DIR = "platform"  # the repository-level inputs: the credential's sops file, the engines' certificate
GIT_SOPS_FILE = f"{PLATFORM_DIR}/git.sops.yaml"
ENGINE_CERT = f"{PLATFORM_DIR}/sealing-cert.pem"
# the Secrets holding the engines' git credential (sealed from GIT_SOPS_FILE): Flux's GitRepository secretRef and
# Argo CD's repository Secret
FLUX_SECRET, ARGO_SECRET = "litellm-gitops-git", "litellm-gitops-repo"
SEALED_SECRETS_VERSION = "0.27.1"  # scripts/versions.env SEALED_SECRETS_CONTROLLER_VERSION (and kubeseal's)


class SealedSecrets(Model):
    install: bool = True
    namespace: DnsLabel = "kube-system"
    image: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9./_:-]*[a-z0-9]$", max_length=300)] = (
        f"docker.io/bitnami/sealed-secrets-controller:{SEALED_SECRETS_VERSION}")


class Repository(Model):
    """This GitOps repository as the engines read it, recorded by `generator init`: `site new` writes it into each
    new site's gitops section, with the engines named here turned on."""

    url: GitUrl
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    engines: Literal["flux", "argocd", "both"] = "both"


class ClusterArgoCd(Model):
    # where Argo CD sends this cluster's sites and platform: the cluster's own Argo CD by default, or a
    # cluster a hub's Argo CD knows by name or server (the credentials stay in that Argo CD, never in the tree)
    destination: ArgoDestination = ArgoDestination()


class Cluster(Model):
    """One cluster of the fleet: how Argo CD reaches it and what its platform layer installs."""

    argocd: ClusterArgoCd = ClusterArgoCd()
    sealed_secrets: SealedSecrets | None = None  # default: the repository's sealedSecrets


DEFAULT_CLUSTER = "default"  # the one cluster of a repository whose platform.yaml names none


class PlatformSettings(Model):
    repository: Repository | None = None
    sealed_secrets: SealedSecrets = SealedSecrets()
    # sealed: platform/git.sops.yaml holds the engines' git credential, sealed into the tree;
    # external: the Secrets are made by hand or by `flux bootstrap` (doctor --cluster checks they exist)
    git_credential: Literal["sealed", "external"] = "sealed"
    # the clusters a site may name (`cluster:`); with more than one, each gets its own entry points under
    # deploy/clusters/<name>/ (render/fleet.py). None named: one cluster, "default", today's layout.
    clusters: dict[DnsLabel, Cluster] = {}

    @field_validator("clusters", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        """A list of clusters, each with its ``name``, reads as the mapping by name."""
        if isinstance(value, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in value):
            return {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in value}
        return value

    def cluster_names(self) -> list[str]:
        return list(self.clusters) or [DEFAULT_CLUSTER]

    @property
    def multi_cluster(self) -> bool:
        return len(self.clusters) > 1

    def cluster(self, name: str | None) -> Cluster:
        return self.clusters.get(name or "", Cluster())

    def sealed_secrets_of(self, name: str | None) -> SealedSecrets:
        return self.cluster(name).sealed_secrets or self.sealed_secrets


def platform_namespaces(settings: PlatformSettings, cluster: str | None = None) -> tuple[str, ...]:
    """Where the platform's objects go, besides the engines' own namespaces."""
    return (settings.sealed_secrets_of(cluster).namespace,)
