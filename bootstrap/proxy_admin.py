"""The proxy admin by identity: the Keycloak id (``sub``) of the user ``keycloak.proxyAdmin`` names, stored in sops
as PROXY_ADMIN_ID, which the render seals and the pod reads.

LiteLLM 1.108.7 makes the user whose id equals PROXY_ADMIN_ID a proxy admin at every SSO sign-in, whatever the role
claim says (``ui_sso.check_and_update_if_proxy_admin_id``), and the id it compares is the claim
GENERIC_USER_ID_ATTRIBUTE names (``sub``). An id cannot be taken over by creating or renaming a user, a username can.
The id is not a secret, but the sops file is where bootstrap keeps what it learns from the services.
"""

from __future__ import annotations

from typing import Any

from bootstrap.report import CREATED, UNCHANGED, UPDATED, Report
from bootstrap.vault import Vault
from generator.errors import GeneratorError
from generator.model import PROXY_ADMIN_KEY, Site

SERVICE = "keycloak"


class ProxyAdminMissing(GeneratorError):
    pass


def fresh_plan(site: Site) -> list[tuple[str, str]]:
    username = site.keycloak.proxy_admin
    return [(f"sops {PROXY_ADMIN_KEY}", f"the id of user {username}")] if username else []


def store_proxy_admin_id(admin: Any, site: Site, vault: Vault, report: Report, where: str) -> None:  # noqa: ANN401
    """Look the user up by exact username (python-keycloak's get_user_id) and keep its id in sops."""
    username = site.keycloak.proxy_admin
    if not username:
        return
    user_id = admin.get_user_id(username)
    if user_id is None:
        raise ProxyAdminMissing(f"{where}: proxy admin '{username}' does not exist in realm '{site.keycloak.realm}'; "
                                "create the user or fix keycloak.proxyAdmin")
    stored = vault.get(PROXY_ADMIN_KEY)
    vault.remember(PROXY_ADMIN_KEY, user_id)
    what = f"sops {PROXY_ADMIN_KEY}"
    if stored == user_id:
        report.add(SERVICE, what, UNCHANGED, f"the id of user {username}")
    else:
        report.add(SERVICE, what, UPDATED if stored else CREATED, f"the id of user {username}")
