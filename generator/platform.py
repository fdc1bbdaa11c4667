"""The repository's own settings, ``platform.yaml`` (optional): what a stock Thinkube lacks and the tree brings.

Thinkube's core installs Argo CD, Gitea, Harbor, Keycloak, PostgreSQL and SeaweedFS, but neither the
sealed-secrets controller nor Flux. The tree therefore renders the controller (``deploy/platform/``),
ordered before every site by each engine, and the engines' credential for the GitOps repository,
sealed from ``platform/git.sops.yaml``. Where another team already runs the controller, set
``sealedSecrets.install: false``; where the engines' credential is made outside git (``flux bootstrap``'s
deploy key), set ``gitCredential: external``. ``generator doctor --cluster`` checks either way.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError

from generator.layout import Repo
from generator.model import DnsLabel, Model

SETTINGS_FILE = "platform.yaml"
PLATFORM_DIR = "platform"  # the repository-level inputs: the credential's sops file, the engines' certificate
GIT_SOPS_FILE = f"{PLATFORM_DIR}/git.sops.yaml"
ENGINE_CERT = f"{PLATFORM_DIR}/sealing-cert.pem"
SEALED_SECRETS_VERSION = "0.27.1"  # scripts/versions.env SEALED_SECRETS_CONTROLLER_VERSION (and kubeseal's)


class SealedSecrets(Model):
    install: bool = True
    namespace: DnsLabel = "kube-system"
    image: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9./_:-]*[a-z0-9]$", max_length=300)] = (
        f"docker.io/bitnami/sealed-secrets-controller:{SEALED_SECRETS_VERSION}")


class PlatformSettings(Model):
    sealed_secrets: SealedSecrets = SealedSecrets()
    # sealed: platform/git.sops.yaml holds the engines' git credential, sealed into the tree;
    # external: the Secrets are made by hand or by `flux bootstrap` (doctor --cluster checks they exist)
    git_credential: Literal["sealed", "external"] = "sealed"


def load_platform(repo: Repo) -> PlatformSettings:
    path = repo.root / SETTINGS_FILE
    if not path.is_file() and not path.is_symlink():
        return PlatformSettings()
    from generator.inputs import checked_text, read_input
    from generator.loader import read_mapping, settings_error
    from generator.yamlio import load_plain

    plain = load_plain(checked_text(read_input(path, SETTINGS_FILE, root=repo.root), SETTINGS_FILE))
    if isinstance(plain, dict) and plain:
        try:
            return PlatformSettings.model_validate(plain)
        except ValidationError:
            pass  # read again below, keeping lines, to name the line of the problem
    tree = read_mapping(path, SETTINGS_FILE, empty="file is empty (delete it for the defaults)", what="settings",
                        root=repo.root)
    try:
        from generator.yamlio import to_plain

        return PlatformSettings.model_validate(to_plain(tree))
    except ValidationError as exc:
        raise settings_error(SETTINGS_FILE, tree, exc, PlatformSettings) from exc


def platform_namespaces(settings: PlatformSettings) -> tuple[str, ...]:
    """Where the platform's objects go, besides the engines' own namespaces."""
    return (settings.sealed_secrets.namespace,)
