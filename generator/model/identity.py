"""Who signs in: the Keycloak client the proxy's UI uses (realm, roles, the token's claims), the UI's admin
user, and how the bootstrap reaches Keycloak's admin API from the operator's machine."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from generator.model.base import HttpUrl, KeycloakName, Model


class Claims(Model):
    user_id: str = "preferred_username"
    email: str = "email"
    # Flaw 7: realm_access.roles yields Keycloak role names. The bootstrap adds a protocol mapper
    # that puts the LiteLLM role (proxy_admin, internal_user, ...) into this claim.
    role: str = "litellm_role"


class Keycloak(Model):
    url: HttpUrl | None = None  # default https://auth.<domain>
    realm: KeycloakName = "thinkube"
    client_id: KeycloakName = "litellm"
    client_name: str = "LiteLLM Proxy"
    scope: str = "openid profile email roles"
    admin_scope: KeycloakName = "litellm_proxy_admin"
    admin_role: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "AI_ADMIN"
    user_role: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "AI_USER"
    admin_users: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["admin"])
    proxy_admin_id: str = "admin"
    claims: Claims = Claims()


class Ui(Model):
    username: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "admin"


class BootstrapKeycloak(Model):
    url: HttpUrl | None = None  # default: keycloak.url
    admin_realm: KeycloakName = "master"
    admin_client_id: KeycloakName = "admin-cli"
    verify_tls: bool = True
    ca_bundle: str | None = None
