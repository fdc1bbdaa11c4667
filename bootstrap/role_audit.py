"""Users whose role stored in LiteLLM's database exceeds what their Keycloak roles grant today.

LiteLLM 1.108.7 stores a user's role (``LiteLLM_UserTable.user_role``) and sets it again only at that user's next
SSO sign-in. The rendered role mappings make every sign-in yield a role, so one who lost AI_ADMIN but kept AI_USER
is demoted then; a user who lost both roles is refused by Keycloak's gate and never signs in again, so their
stored role, and with it what their keys may do, stays. This audit lists them: read-only (a read-only
transaction as the PostgreSQL admin bootstrap already uses), nothing is changed in either service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

import psycopg
from keycloak.exceptions import KeycloakError, KeycloakGetError
from requests.exceptions import RequestException

from generator.errors import GeneratorError
from generator.model import PROXY_ADMIN_KEY, Site

RANK = {None: 0, "internal_user_viewer": 1, "internal_user": 2, "proxy_admin_viewer": 3, "proxy_admin": 4}
USERS_SQL = """
SELECT u.user_id, u.sso_user_id, u.user_role,
       (SELECT count(*) FROM "LiteLLM_VerificationToken" t WHERE t.user_id = u.user_id) AS keys
FROM "LiteLLM_UserTable" u ORDER BY u.user_id
"""


class RoleAuditFailed(GeneratorError):
    pass


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    sso_user_id: str | None
    role: str | None
    keys: int


@dataclass(frozen=True)
class Excess:
    user: StoredUser
    username: str | None  # None: no Keycloak user has this id
    granted: str | None


def stored_users(conninfo: dict[str, Any], dbname: str) -> list[StoredUser] | None:
    """Every LiteLLM user with their stored role and key count; None when the database or LiteLLM's tables do not
    exist yet (LiteLLM's migrations create them)."""
    try:
        conn = psycopg.connect(**conninfo, dbname=dbname, options="-c default_transaction_read_only=on")
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    with conn:
        if conn.execute("""SELECT to_regclass('"LiteLLM_UserTable"') IS NULL
                                  OR to_regclass('"LiteLLM_VerificationToken"') IS NULL""").fetchone()[0]:
            return None
        return [StoredUser(*row) for row in conn.execute(USERS_SQL).fetchall()]


def granted_role(site: Site, realm_roles: set[str], is_proxy_admin: bool) -> str | None:
    """The LiteLLM role a sign-in would give: the role claim bootstrap's mapper writes, PROXY_ADMIN_ID on top."""
    if is_proxy_admin or site.keycloak.admin_role in realm_roles:
        return "proxy_admin"
    if site.keycloak.user_role in realm_roles:
        return "internal_user"
    return None  # refused by the gate: no sign-in


def audit(site: Site, keycloak: Any, users: list[StoredUser], proxy_admin_id: str | None) -> list[Excess]:  # noqa: ANN401
    """``keycloak``: a python-keycloak KeycloakAdmin on the site's realm."""
    found = []
    for user in users:
        keycloak_id = user.sso_user_id or user.user_id  # the sub, with keycloak.claims.userId: sub
        try:
            username = keycloak.get_user(keycloak_id)["username"]
            roles = {r["name"] for r in keycloak.get_composite_realm_roles_of_user(keycloak_id)}  # groups count
        except KeycloakGetError as exc:
            if exc.response_code != 404:
                raise
            username, roles = None, set()
        granted = granted_role(site, roles, username is not None and keycloak_id == proxy_admin_id)
        if RANK.get(user.role, 0) > RANK[granted]:
            found.append(Excess(user, username, granted))
    return found


def report_excess(site: Site, keycloak: Any, conninfo: dict[str, Any], sops: dict[str, str], out: TextIO) -> int:  # noqa: ANN401
    """Print one line per user whose stored role exceeds their Keycloak roles; the number of such users."""
    try:
        users = stored_users(conninfo, site.postgres.database)
    except psycopg.Error as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RoleAuditFailed(f"role audit: database {site.postgres.database}: {line}") from exc
    if users is None:  # LiteLLM has not migrated its database yet (a first bootstrap): no user to audit
        return 0
    try:
        found = audit(site, keycloak, users, sops.get(PROXY_ADMIN_KEY))
    except (KeycloakError, RequestException) as exc:
        raise RoleAuditFailed(f"role audit: keycloak: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    for item in found:
        who = f"Keycloak user {item.username}" if item.username else "no Keycloak user"
        grants = f"Keycloak grants {item.granted}" if item.granted else "Keycloak grants no role (refused at sign-in)"
        print(f"warning   roles     LiteLLM user {item.user.user_id} ({who}): stored {item.user.role}, {grants}; "
              f"{item.user.keys} key(s) act with the stored role until an admin changes it or deletes them", file=out)
    print(f"roles     {len(users)} LiteLLM user(s), {len(found)} above their Keycloak roles", file=out)
    return len(found)
