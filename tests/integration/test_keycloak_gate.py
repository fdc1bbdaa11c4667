"""Issue 26: only the roles the site names get in, and the gate lives in Keycloak.

A real Keycloak, a realm with a user of each kind, `generator bootstrap --only keycloak`, then each user asks
for a token of the LiteLLM client: by the password grant, and by the browser login through Keycloak's own
login form (plain HTTP, as a browser would: the form is fetched, filled and posted; the answer is a redirect to
`/sso/callback` with a code, or not). A user signed in to another client of the realm then comes to LiteLLM
with that session's cookie. Other clients of the realm are unaffected, the realm's own flows are untouched, a
second run changes nothing and a drifted flow is rebuilt.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from keycloak import KeycloakAdmin

from tests.helpers import MINIMAL_SITE, build_file_tree, create_realm, generator
from tests.keys import age_key, sealing_pair, sops_rules
from tests.servers import KeycloakServer

pytestmark = pytest.mark.servers
SITE = "gate"
PASSWORD = "gate-user-password-7"
CALLBACK = "https://litellm.example.org/sso/callback"
USERS = ("nobody", "alice", "carol", "bob", "dave")  # no role; AI_USER; AI_USER by a group; AI_ADMIN; AI_ADMIN by a group


class Realm:
    def __init__(self, kc: KeycloakServer, root: Path, *, direct_grants: bool = True) -> None:
        self.kc, self.root, self.name = kc, root, f"gate-{uuid.uuid4().hex[:8]}"
        create_realm(kc, self.name, {user: PASSWORD for user in USERS})
        self.admin = KeycloakAdmin(server_url=kc.url, username=kc.admin_user, password=kc.admin_password,
                                   realm_name=self.name, user_realm_name="master")
        key = age_key()
        cert, _ = sealing_pair(root.parent / "keys")
        build_file_tree(root, {f"sites/{SITE}/site.yaml": MINIMAL_SITE.replace("example.org", "example.org") +
                               f"keycloak: {{url: '{kc.url}', realm: {self.name}, adminUsers: [bob], proxyAdmin: bob, directAccessGrants: {str(direct_grants).lower()}}}\n",
                               ".sops.yaml": sops_rules([key.recipient])})
        shutil.copy(cert, root / f"sites/{SITE}/sealing-cert.pem")
        self.env = {"SOPS_AGE_KEY": key.identity, "KEYCLOAK_ADMIN_USERNAME": kc.admin_user,
                    "KEYCLOAK_ADMIN_PASSWORD": kc.admin_password}
        assert generator(root, "secrets", "init", "--site", SITE, env=self.env).code == 0

    def bootstrap(self, *args: str):  # noqa: ANN201
        result = generator(self.root, "bootstrap", "--site", SITE, "--only", "keycloak", *args, env=self.env)
        assert result.code == 0, result.text
        return result

    def grant_roles(self) -> None:
        ids = {user: self.admin.get_user_id(user) for user in USERS}
        self.admin.assign_realm_roles(ids["alice"], [self.admin.get_realm_role("AI_USER")])
        for group, role, user in (("ai-users", "AI_USER", "carol"), ("ai-admins", "AI_ADMIN", "dave")):
            group_id = self.admin.create_group({"name": group})
            self.admin.assign_group_realm_roles(group_id, [self.admin.get_realm_role(role)])
            self.admin.group_user_add(ids[user], group_id)

    def client_secret(self) -> str:
        return self.admin.get_client_secrets(self.admin.get_client_id("litellm"))["value"]

    def password_grant(self, user: str, client: str = "litellm", secret: str | None = None) -> int:
        return self.token(user, client, secret).status_code

    def token(self, user: str, client: str = "litellm", secret: str | None = None) -> requests.Response:
        form = {"grant_type": "password", "client_id": client, "username": user, "password": PASSWORD,
                "scope": "openid"}
        if secret:
            form["client_secret"] = secret
        return requests.post(f"{self.kc.url}/realms/{self.name}/protocol/openid-connect/token", data=form,
                             timeout=30)

    def browser_login(self, user: str, session: requests.Session | None = None) -> str:
        """'code' when Keycloak redirects to the callback with a code, else what the page says."""
        session = session or _browser()
        page = session.get(self._auth_url("litellm", CALLBACK), allow_redirects=False, timeout=30)
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        if not action:  # no form to fill: a session's cookie already decided (a code, or access denied)
            return _outcome(page)
        answer = session.post(html.unescape(action.group(1)), data={"username": user, "password": PASSWORD},
                              allow_redirects=False, timeout=30)
        return _outcome(answer)

    def signed_in_elsewhere(self, user: str) -> requests.Session:
        """A browser session of the realm, signed in through the account console (another client)."""
        session = _browser()
        page = session.get(self._auth_url("account-console", f"{self.kc.url}/realms/{self.name}/account/",
                                          pkce=True), timeout=30)
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        assert action, page.text[:300]
        answer = session.post(html.unescape(action.group(1)), data={"username": user, "password": PASSWORD},
                              allow_redirects=False, timeout=30)
        assert _outcome(answer) == "code", f"{user} could not sign in to the account console"
        return session

    def _auth_url(self, client: str, redirect: str, pkce: bool = False) -> str:
        query = {"client_id": client, "response_type": "code", "redirect_uri": redirect, "scope": "openid",
                 "state": "s"}
        if pkce:
            query |= {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
        return f"{self.kc.url}/realms/{self.name}/protocol/openid-connect/auth?{urllib.parse.urlencode(query)}"


class _Browser(requests.Session):
    """Keycloak marks its session cookies Secure; the test server speaks plain HTTP on 127.0.0.1, which a browser
    treats as a secure context, so it sends them back. requests would not: the flag is cleared as they arrive."""

    def request(self, *args, **kwargs) -> requests.Response:  # noqa: ANN002, ANN003
        response = super().request(*args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response


def _browser() -> requests.Session:
    return _Browser()


def _outcome(response: requests.Response) -> str:
    location = response.headers.get("Location", "")
    if response.status_code in (302, 303) and "code=" in urllib.parse.urlsplit(location).query:
        return "code"
    text = re.sub(r"<[^>]+>", " ", response.text)
    message = re.search(r"(Access denied|Invalid username or password)", text)
    return message.group(1) if message else f"HTTP {response.status_code}"


@pytest.fixture
def realm(keycloak_server: KeycloakServer, tmp_path: Path) -> Realm:
    return Realm(keycloak_server, tmp_path / "repo")


def test_only_the_sites_roles_get_a_code_or_a_token(realm: Realm) -> None:
    realm_flows = {f["alias"]: realm.admin.get_authentication_flow_executions(f["alias"])
                   for f in realm.admin.get_authentication_flows()}
    realm.bootstrap()
    realm.grant_roles()
    secret = realm.client_secret()

    outcomes = {user: (realm.password_grant(user, secret=secret), realm.browser_login(user)) for user in USERS}
    print("\nuser     password grant  browser login")
    for user, (grant, login) in outcomes.items():
        print(f"{user:8} {grant:<15} {login}")
    assert outcomes == {"nobody": (401, "Access denied"), "alice": (200, "code"), "carol": (200, "code"),
                        "bob": (200, "code"), "dave": (200, "code")}

    # signed in to another client of the realm: the session's cookie does not slip past the gate
    assert realm.browser_login("nobody", realm.signed_in_elsewhere("nobody")) == "Access denied"
    assert realm.browser_login("alice", realm.signed_in_elsewhere("alice")) == "code"
    # other clients keep the realm's flows: the user without a role still gets their tokens
    assert realm.password_grant("nobody", client="admin-cli") == 200
    for alias, executions in realm_flows.items():
        assert realm.admin.get_authentication_flow_executions(alias) == executions, f"realm flow {alias} changed"


def test_the_gate_converges_idempotently_and_drift_is_rebuilt(realm: Realm) -> None:
    dry = generator(realm.root, "bootstrap", "--site", SITE, "--only", "keycloak", "--dry-run", env=realm.env)
    assert dry.code == 0, dry.text
    assert "flow litellm browser" in dry.out and "flow litellm direct grant" in dry.out
    assert not [f for f in realm.admin.get_authentication_flows() if f["alias"].startswith("litellm ")]

    first = realm.bootstrap()
    assert re.search(r"created\s+keycloak\s+flow litellm browser", first.out), first.out
    second = realm.bootstrap()
    assert re.search(r"unchanged\s+keycloak\s+flow litellm browser", second.out), second.out
    assert re.search(r"unchanged\s+keycloak\s+client litellm flow bindings", second.out), second.out

    # drift: the role gate switched off by hand
    gate = next(e for e in realm.admin.get_authentication_flow_executions("litellm browser")
                if e.get("displayName") == "litellm browser role gate")
    realm.admin.update_authentication_flow_executions({**gate, "requirement": "DISABLED"}, "litellm browser")
    realm.grant_roles()
    assert realm.browser_login("nobody") == "code"  # the hole the drift opened
    third = realm.bootstrap()
    assert re.search(r"updated\s+keycloak\s+flow litellm browser\s+\(drift: rebuilt\)", third.out), third.out
    assert realm.browser_login("nobody") == "Access denied"
    assert realm.browser_login("alice") == "code"
    assert "nothing to do" in realm.bootstrap().out


def _audiences(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    payload = response.json()["access_token"].split(".")[1]
    aud = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["aud"]
    return aud if isinstance(aud, list) else [aud]


def test_only_this_clients_tokens_carry_the_rendered_jwt_audience(realm: Realm) -> None:
    """Keycloak puts the client id into the ``aud`` of any client's token whose user holds the client's roles, and
    LiteLLM's JWT auth does not check ``azp``: the audience the rendered JWT_AUDIENCE names is one that only this
    client's tokens carry (bootstrap's audience mapper)."""
    site = realm.root / f"sites/{SITE}/site.yaml"
    site.write_text(site.read_text() + "jwtAuth: {enabled: true}\n")
    assert generator(realm.root, "secrets", "set", "--site", SITE, "LITELLM_LICENSE", stdin="a-licence\n",
                     env=realm.env).code == 0
    realm.bootstrap()
    realm.grant_roles()
    rendered = generator(realm.root, "render", "--site", SITE, "--no-validate", env=realm.env)
    assert rendered.code == 0, rendered.text
    patch = yaml.safe_load((realm.root / f"overlays/{SITE}/app/deployment-patch.yaml").read_text())
    env = {e["name"]: e.get("value") for c in patch["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    audience = env["JWT_AUDIENCE"]
    assert audience == "litellm-api"

    ours = _audiences(realm.token("bob", secret=realm.client_secret()))
    # another client of the realm, as an application team would add one (the realm's default scopes, full scope)
    realm.admin.create_client({"clientId": "other-app", "publicClient": True, "directAccessGrantsEnabled": True})
    theirs = _audiences(realm.token("bob", client="other-app"))  # the same user
    assert audience in ours
    assert "litellm" in theirs and audience not in theirs, theirs  # the client id leaks; the audience does not


def test_the_password_grant_is_off_unless_the_site_asks(keycloak_server: KeycloakServer, tmp_path: Path) -> None:
    realm = Realm(keycloak_server, tmp_path / "repo", direct_grants=False)
    realm.bootstrap()
    realm.grant_roles()
    client = realm.admin.get_client(realm.admin.get_client_id("litellm"))
    assert client["directAccessGrantsEnabled"] is False
    refused = realm.token("alice", secret=realm.client_secret())
    assert (refused.status_code, refused.json()["error"]) == (400, "unauthorized_client"), refused.text
    assert realm.browser_login("alice") == "code"
