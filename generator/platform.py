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

from pydantic import Field

from generator.model import DnsLabel, GitUrl, Model

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


class PlatformSettings(Model):
    repository: Repository | None = None
    sealed_secrets: SealedSecrets = SealedSecrets()
    # sealed: platform/git.sops.yaml holds the engines' git credential, sealed into the tree;
    # external: the Secrets are made by hand or by `flux bootstrap` (doctor --cluster checks they exist)
    git_credential: Literal["sealed", "external"] = "sealed"


def platform_namespaces(settings: PlatformSettings) -> tuple[str, ...]:
    """Where the platform's objects go, besides the engines' own namespaces."""
    return (settings.sealed_secrets.namespace,)
