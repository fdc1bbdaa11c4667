"""Who signs in: the Keycloak client the proxy's UI uses (realm, roles, the token's claims), the UI's admin
user, and how the bootstrap reaches Keycloak's admin API from the operator's machine."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from generator.model.base import HttpUrl, KeycloakName, Model


class Claims(Model):
    # The Keycloak user's id: a LiteLLM user is that identity, not a username someone else may take (and
    # PROXY_ADMIN_ID, compared against this claim at every SSO sign-in, is the admin's id: keycloak.proxyAdmin).
    user_id: str = "sub"
    # Empty: LiteLLM 1.108.7 links a signing-in user to an existing account with the same email without looking
    # at email_verified, so the email claim is left out unless the realm guarantees verified, unique emails.
    email: str = ""
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
    # The username of the Keycloak user LiteLLM makes proxy admin at every sign-in (PROXY_ADMIN_ID), whatever
    # the role claim says. Bootstrap looks up the user's id (sub) and stores it in sops as PROXY_ADMIN_ID; a user
    # who merely takes this username later is not admin. None: admin only by keycloak.adminRole.
    proxy_admin: Annotated[str, Field(min_length=1)] | None = "admin"
    claims: Claims = Claims()
    # The password grant for this client: off, since the dashboard needs only the code flow and programmatic
    # access is by key or by a token of the realm (jwtAuth); the grant would also skip browser second factors.
    direct_access_grants: bool = False


class Ui(Model):
    username: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "admin"
    # LiteLLM's own username/password login (UI_USERNAME/UI_PASSWORD) is a proxy admin without Keycloak or its
    # second factor: off (general_settings.disable_password_login_when_sso_enabled) unless the site opts in.
    password_login: bool = False


class Users(Model):
    """What a user gets when LiteLLM first creates their record (on first sign-in): LiteLLM 1.108.7's
    ``default_internal_user_params`` and, for internal users (AI_USER), ``max_internal_user_budget`` and
    ``internal_user_budget_duration``. A user whose token names no LiteLLM role becomes a view-only user."""

    # Model names a new user may call; none: no model until an admin grants one (LiteLLM's "no-default-models";
    # an empty list would mean every model to LiteLLM).
    models: list[Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]] = \
        Field(default_factory=list)
    max_budget: Annotated[float, Field(ge=0)] = 10.0  # USD per budget period, for the user's own keys
    budget_duration: Annotated[str, Field(pattern=r"^[1-9][0-9]*(s|m|h|d|mo)$")] = "30d"


class BootstrapKeycloak(Model):
    url: HttpUrl | None = None  # default: keycloak.url
    admin_realm: KeycloakName = "master"
    admin_client_id: KeycloakName = "admin-cli"
    verify_tls: bool = True
    ca_bundle: str | None = None
