"""How the site reaches the cluster: the GitOps engines (Flux, Argo CD) and the site's wave in a fleet rollout,
how its secret travels (sealed or sops), and what the platform's service discovery (thinkube-control) reads."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from generator.model.base import SECRET_KEY_RE, DnsLabel, Duration, GitUrl, HttpUrl, Model, checked, rule_error


class Flux(Model):
    enabled: bool = True
    namespace: DnsLabel = "flux-system"
    url: GitUrl = "ssh://git@git.example.com/platform/litellm-gitops.git"
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    interval: Duration = "1m"
    sync_interval: Duration = "10m"
    timeout: Duration = "5m"
    # A Secret in `namespace` that source-controller reads: identity + known_hosts for ssh://,
    # username + password (or bearerToken) for an https:// server that asks for them.
    secret_ref: DnsLabel | None = None


IN_CLUSTER = "https://kubernetes.default.svc"


class ArgoDestination(Model):
    """Where Argo CD sends the site's objects: a cluster by its API ``server`` URL, or by the ``name`` it was
    registered under (``argocd cluster add``); the cluster Argo CD runs in when neither is set."""

    server: HttpUrl | None = None
    name: DnsLabel | None = None

    @model_validator(mode="after")
    def _one_way(self) -> "ArgoDestination":
        if self.server and self.name:
            raise rule_error("name", "set server or name, not both: Argo CD refuses a destination with both")
        return self

    def spec(self) -> dict[str, str]:
        """The Application's destination, before its namespace."""
        return {"name": self.name} if self.name else {"server": self.server or IN_CLUSTER}


class ArgoCd(Model):
    enabled: bool = True
    namespace: DnsLabel = "argocd"
    repo_url: GitUrl = "ssh://git@git.example.com/platform/litellm-gitops.git"
    target_revision: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    # the AppProject the fleet renders for its sites (this repository, their namespaces); "default" to opt out
    project: DnsLabel = "litellm"
    destination: ArgoDestination = ArgoDestination()


class Rollout(Model):
    """The site's wave in a fleet rollout, 0 first. Flux: a wave starts once the sites of the wave before are
    healthy (dependsOn). Argo CD: sync waves in the parent Application order the creation of the sites'
    Applications only: Argo CD has no health check for an Application unless argocd-cm defines one."""

    wave: Annotated[int, Field(ge=0, le=100)] = 0


class GitOps(Model):
    flux: Flux = Flux()
    argocd: ArgoCd = ArgoCd()


AGE_RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


class Secrets(Model):
    """``sealed``: a SealedSecret (Flux or Argo CD). ``sops``: a sops-encrypted Secret that Flux decrypts."""

    mode: Literal["sealed", "sops"] = "sealed"
    # sops mode: the cluster's age recipients, and the Secret in the Flux namespace holding its key.
    flux_recipients: list[Annotated[str, *checked(AGE_RECIPIENT_RE, "age recipient (age1...)")]] = Field(default_factory=list)
    flux_decryption_secret: DnsLabel = "sops-age"
    # Keys the site reads (a model's apiKeySecret, a pass-through header's secretKey, an extraEnv reference to
    # litellm-secrets) that its sops file does not hold yet, on purpose: render refuses any other missing key.
    filled_later: list[Annotated[str, *checked(SECRET_KEY_RE, "secret key name (UPPER_SNAKE_CASE)")]] = Field(
        default_factory=list, description="Keys the site reads from litellm-secrets (a model's apiKeySecret, a "
        "pass-through header's secretKey, an extraEnv reference) that its sops file does not hold yet, on purpose; "
        "render refuses any other key the sops file lacks.")

    @model_validator(mode="after")
    def _recipients_for_sops(self) -> "Secrets":
        if self.mode == "sops" and not self.flux_recipients:
            raise rule_error("fluxRecipients", "list the cluster's age recipients: Flux decrypts the Secret with their key")
        return self


class Discovery(Model):
    enabled: bool = True
    display_name: str = "LiteLLM"
    description: str = "Unified LLM API proxy with cost tracking and load balancing"
    type: str = "optional"
    category: str = "ai"
    icon: str = "/icons/tk_ai.svg"
    component_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = "0.1.0"
    dependencies: list[str] = Field(default_factory=lambda: ["postgresql", "keycloak", "seaweedfs"])
    # thinkube-control scales or disables the service by patching the Deployment's spec.replicas. When
    # true, the tree leaves that field to it (no replicas in git; Argo CD ignores the field) and the
    # ConfigMap says can_disable: true. When false, git pins `replicas` and can_disable is false.
    platform_scaling: bool = True
    # Export the master key to code-server and notebooks as LITELLM_MASTER_KEY, by secretKeyRef (never the value).
    # Off: the master key is a proxy admin outside Keycloak, and every notebook user would hold it.
    export_master_key: bool = False
