"""Issue 26: which stored LiteLLM roles exceed what the users' Keycloak roles give at sign-in (the logic of
bootstrap/role_audit.py; tests/e2e/test_access.py runs it on the real Keycloak and LiteLLM's real schema)."""

from __future__ import annotations

from keycloak.exceptions import KeycloakGetError

from bootstrap.role_audit import StoredUser, audit
from generator.model import Site

SITE = Site.model_validate({"domain": "example.com"})


class Realm:
    """The two python-keycloak calls the audit makes, answered from a table (id -> username, effective roles)."""

    def __init__(self, users: dict[str, tuple[str, set[str]]]) -> None:
        self.users = users

    def get_user(self, user_id: str) -> dict:
        if user_id not in self.users:
            raise KeycloakGetError(error_message=b'{"error":"User not found"}', response_code=404)
        return {"username": self.users[user_id][0]}

    def get_composite_realm_roles_of_user(self, user_id: str) -> list[dict]:
        return [{"name": name} for name in sorted(self.users[user_id][1])]


def test_stored_roles_above_the_keycloak_roles_are_found() -> None:
    realm = Realm({"id-bob": ("bob", {"AI_ADMIN", "default-roles-x"}), "id-alice": ("alice", {"AI_USER"}),
                   "id-carol": ("carol", {"AI_USER"}), "id-nobody": ("nobody", set()),
                   "id-root": ("root", set())})
    users = [StoredUser("id-bob", None, "proxy_admin", 0), StoredUser("id-alice", None, "proxy_admin", 2),
             StoredUser("id-carol", None, "internal_user", 1), StoredUser("id-nobody", None, "internal_user", 0),
             StoredUser("id-root", None, "proxy_admin", 0), StoredUser("default_user_id", None, "proxy_admin", 3),
             StoredUser("legacy", "id-carol", "proxy_admin_viewer", 0), StoredUser("id-nobody2", None, None, 0)]
    found = {(e.user.user_id, e.username, e.granted) for e in audit(SITE, realm, users, proxy_admin_id="id-root")}
    assert found == {("id-alice", "alice", "internal_user"), ("id-nobody", "nobody", None),
                     ("default_user_id", None, None), ("legacy", "carol", "internal_user")}
