"""Issue 26: who gets in, proven with the real Keycloak and the real LiteLLM proxy run from the rendered site.

A realm with a user of each kind, `generator bootstrap` (Keycloak and PostgreSQL), `generator render`, then:

1. the proxy admin by identity: bootstrap stores the Keycloak id of `keycloak.proxyAdmin` in sops, the render seals
   it as PROXY_ADMIN_ID, and LiteLLM's own sign-in code, fed Keycloak's real userinfo answers, makes that id a proxy
   admin and a user who is merely named `admin` not;
2. the table: for each kind of user, the password grant, the browser login through Keycloak's login form (plain
   HTTP, a cookie jar, the form parsed and posted), what the proxy's `/sso/callback` does with the code, a
   completion and an admin route with the user's token (LiteLLM's JWT auth, licence check on in the harness only:
   tests/e2e/licensed_litellm.py). The proxy runs without a database (tests/e2e/rendered.py), so the table shows
   what LiteLLM does then; what needs the database rests on reading its source (docs/access.md);
3. role loss: the role LiteLLM's code derives at sign-in follows the claim down (the rendered role mappings);
4. bootstrap's read-only audit of the roles stored in LiteLLM's database (its real schema, from litellm-proxy-extras'
   migrations, on the real PostgreSQL) against the users' Keycloak roles.
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import requests
from keycloak import KeycloakAdmin

from tests.e2e.pod import VENV, http, one, unseal
from tests.e2e.rendered import chat, container_env, mocked, proxy, render, rendered_config, running, serving_container
from tests.helpers import admin_env, build_file_tree, create_realm, generator, local_site, sops_decrypt
from tests.integration.test_keycloak_gate import _browser, _outcome
from tests.keys import age_key, sealing_pair, sops_rules
from tests.litellm_schema import apply_migrations, migrations

pytestmark = pytest.mark.e2e
REALM, SITE, PASSWORD = "access", "access", "access-user-password-5"
USERS = ("nobody", "admin", "alice", "bob", "dave")  # no role; named admin, no role; AI_USER; AI_ADMIN; no role yet
CALLBACK = "https://litellm.example.com/sso/callback"
ADMIN_ROUTE = "/user/list"
LICENSED = Path(__file__).with_name("licensed_litellm.py")
SSO_ROLES = Path(__file__).with_name("sso_roles.py")
NO_DB = "DB not connected"  # LiteLLM's answer where it needs its database


class World:
    def __init__(self, kc, pg, root: Path, env: dict[str, str], key, private_key: Path) -> None:  # noqa: ANN001
        self.kc, self.pg, self.root, self.env, self.key, self.private_key = kc, pg, root, env, key, private_key
        self.admin = KeycloakAdmin(server_url=kc.url, username=kc.admin_user, password=kc.admin_password,
                                   realm_name=REALM, user_realm_name="master")
        self.token_url = f"{kc.url}/realms/{REALM}/protocol/openid-connect/token"

    def role(self, user: str, role: str, *, remove: bool = False) -> None:
        call = self.admin.delete_realm_roles_of_user if remove else self.admin.assign_realm_roles
        call(self.admin.get_user_id(user), [self.admin.get_realm_role(role)])

    def secret(self) -> dict[str, str]:
        return sops_decrypt(self.root / f"sites/{SITE}/secrets.sops.yaml", self.key.identity)

    def grant(self, user: str, client: str = "litellm", secret: str | None = None) -> requests.Response:
        form = {"grant_type": "password", "client_id": client, "username": user, "password": PASSWORD,
                "scope": "openid litellm_proxy_admin" if client == "litellm" else "openid"}
        if secret:
            form["client_secret"] = secret
        return requests.post(self.token_url, data=form, timeout=30)

    def browser_login(self, user: str, session: requests.Session | None = None) -> tuple[str, str | None]:
        """Keycloak's login form for the litellm client, as a browser fills it: the outcome and the callback URL."""
        session = session or _browser()
        query = {"client_id": "litellm", "response_type": "code", "redirect_uri": CALLBACK, "scope": "openid",
                 "state": f"state-{user}"}
        page = session.get(f"{self.kc.url}/realms/{REALM}/protocol/openid-connect/auth?{urllib.parse.urlencode(query)}",
                           allow_redirects=False, timeout=30)
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        answer = session.post(html.unescape(action.group(1)), data={"username": user, "password": PASSWORD},
                              allow_redirects=False, timeout=30) if action else page
        outcome = _outcome(answer)
        return outcome, answer.headers["Location"] if outcome == "code" else None

    def signed_in_elsewhere(self, user: str) -> requests.Session:
        """A browser session of the realm, signed in through another client (other-app's own login)."""
        session = _browser()
        query = {"client_id": "other-app", "response_type": "code", "redirect_uri": "https://other.example.com/cb",
                 "scope": "openid", "state": "s"}
        page = session.get(f"{self.kc.url}/realms/{REALM}/protocol/openid-connect/auth?{urllib.parse.urlencode(query)}",
                           timeout=30)
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        answer = session.post(html.unescape(action.group(1)), data={"username": user, "password": PASSWORD},
                              allow_redirects=False, timeout=30)
        assert _outcome(answer) == "code", f"{user} could not sign in to other-app"
        return session


@pytest.fixture(scope="module")
def world(service_trio, tmp_path_factory: pytest.TempPathFactory) -> World:  # noqa: ANN001
    kc, pg, s3 = service_trio
    create_realm(kc, REALM, {user: PASSWORD for user in USERS})
    root = tmp_path_factory.mktemp("access") / "repo"
    key = age_key()
    cert, private_key = sealing_pair(root.parent / "keys")
    site = (local_site(kc, pg, s3, realm=REALM)
            .replace("directAccessGrants: true}", "directAccessGrants: true, adminUsers: [bob], proxyAdmin: bob}")
            .replace(f"port: {pg.port}}}", f"port: {pg.port}, database: access, role: access}}")
            + "cache: {enabled: false}\njwtAuth: {enabled: true}\n"
            + "models:\n  - {name: mock-gpt, model: openai/gpt-4o-mini}\n")
    build_file_tree(root, {f"sites/{SITE}/site.yaml": site, ".sops.yaml": sops_rules([key.recipient]),
                           f"sites/{SITE}/sealing-cert.pem": cert.read_bytes()})
    env = {"SOPS_AGE_KEY": key.identity, **admin_env(kc, pg, s3)}
    for args in (("secrets", "init", "--site", SITE), ("bootstrap", "--site", SITE)):
        result = generator(root, *args, env=env)
        assert result.code == 0, result.text
    assert generator(root, "secrets", "set", "--site", SITE, "LITELLM_LICENSE", stdin="a-licence\n", env=env).code == 0
    world = World(kc, pg, root, env, key, private_key)
    world.role("alice", "AI_USER")
    world.admin.create_client({"clientId": "other-app", "publicClient": True, "directAccessGrantsEnabled": True,
                               "redirectUris": ["https://other.example.com/cb"]})
    return world


def test_the_proxy_admin_is_the_keycloak_id_bootstrap_stored(world: World) -> None:
    bob = world.admin.get_user_id("bob")
    assert world.secret()["PROXY_ADMIN_ID"] == bob
    docs = render(world.root, SITE, (world.root / f"sites/{SITE}/site.yaml").read_text(), env=world.env)
    assert unseal(one(docs, "SealedSecret", "litellm-secrets"), world.private_key)["PROXY_ADMIN_ID"] == bob
    env = {e["name"]: e for e in serving_container(docs)["env"]}
    assert env["PROXY_ADMIN_ID"]["valueFrom"]["secretKeyRef"] == {"name": "litellm-secrets", "key": "PROXY_ADMIN_ID"}
    assert env["GENERIC_USER_ID_ATTRIBUTE"]["value"] == "sub"
    again = generator(world.root, "bootstrap", "--site", SITE, "--only", "keycloak", env=world.env)
    assert again.code == 0 and re.search(r"unchanged\s+keycloak\s+sops PROXY_ADMIN_ID", again.out), again.text
    assert bob not in again.text  # the id is kept in sops, never printed


def test_who_gets_in(world: World, tmp_path: Path) -> None:
    secret = world.secret()
    docs = render(world.root, SITE, (world.root / f"sites/{SITE}/site.yaml").read_text(), env=world.env)
    proxy_env, config = container_env(serving_container(docs), secret), mocked(rendered_config(docs))
    client_secret = secret["CLIENT_SECRET"]
    elsewhere = world.signed_in_elsewhere("nobody")
    rows: list[tuple[str, ...]] = []
    with running(proxy(tmp_path, config, proxy_env, "licensed", program=LICENSED)) as (licensed,):
        start = requests.get(f"{licensed.url}/sso/key/generate", allow_redirects=False, timeout=60)
        sso_start = f"{start.status_code} {_what(start.text)}"
        for label, user, session, client in (
                ("no AI_* role", "nobody", None, "litellm"),
                ("named `admin`, no AI_* role", "admin", None, "litellm"),
                ("AI_USER", "alice", None, "litellm"),
                ("AI_ADMIN (and PROXY_ADMIN_ID)", "bob", None, "litellm"),
                ("no role, signed in to other-app", "nobody", elsewhere, "other-app"),
                ("AI_ADMIN, other-app's token", "bob", None, "other-app")):
            granted = world.grant(user, client, client_secret if client == "litellm" else None)
            token = granted.json().get("access_token") if granted.status_code == 200 else None
            grant = f"{granted.status_code}" + (f" ({client})" if client != "litellm" else "")
            login, callback = world.browser_login(user, session) if client == "litellm" or session else ("-", None)
            rows.append((label, grant, login, _callback(world, licensed, callback, client_secret),
                         _call(licensed, token, completion=True), _call(licensed, token)))
    table = ["| user | password grant | browser login (Keycloak) | proxy /sso/callback | completion | "
             f"{ADMIN_ROUTE} |", "| --- | --- | --- | --- | --- | --- |", *("| " + " | ".join(r) + " |" for r in rows)]
    print(f"\n/sso/key/generate without a database: {sso_start}\n" + "\n".join(table))
    assert sso_start == "200 the page asking for DATABASE_URL", sso_start
    by_user = {r[0]: r[1:] for r in rows}
    unpriv = "no token"
    assert by_user["no AI_* role"] == ("401", "Access denied", "not reached", unpriv, unpriv)
    assert by_user["named `admin`, no AI_* role"] == ("401", "Access denied", "not reached", unpriv, unpriv)
    assert by_user["AI_USER"] == ("200", "code", f"500 {NO_DB} (code not redeemed: the test redeemed it)",
                                  f"401 {NO_DB}", "403 Role=internal_user not allowed")
    assert by_user["AI_ADMIN (and PROXY_ADMIN_ID)"] == (
        "200", "code", f"500 {NO_DB} (code not redeemed: the test redeemed it)", "200 Hello from the mock",
        f"500 {NO_DB}")
    assert by_user["no role, signed in to other-app"][:3] == ("200 (other-app)", "Access denied", "not reached")
    assert by_user["AI_ADMIN, other-app's token"][:3] == ("200 (other-app)", "-", "not reached")
    for label in ("no role, signed in to other-app", "AI_ADMIN, other-app's token"):  # not this client's audience
        assert all(cell.startswith("401 auth_error: ") for cell in by_user[label][3:]), by_user[label]


def _what(text: str) -> str:
    if "DATABASE_URL" in text and "<html" in text.lower():
        return "the page asking for DATABASE_URL"
    return re.sub(r"\s+", " ", text)[:80]


def _callback(world: World, licensed, location: str | None, client_secret: str) -> str:  # noqa: ANN001
    """The proxy's answer to Keycloak's redirect, then whether the code was still unused (redeemed by the test)."""
    if location is None:
        return "not reached"
    query = urllib.parse.urlsplit(location).query
    status, _, body = http("GET", f"{licensed.url}/sso/callback?{query}")
    detail = str(json.loads(body or b"{}").get("detail", body[:80].decode(errors="replace")))
    detail = NO_DB if _no_database(detail) else detail
    code = urllib.parse.parse_qs(query)["code"][0]
    redeemed = requests.post(world.token_url, timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": "litellm",
        "client_secret": client_secret}).status_code
    unused = "code not redeemed: the test redeemed it" if redeemed == 200 else f"code spent ({redeemed})"
    return f"{status} {detail} ({unused})"


def _call(licensed, token: str | None, *, completion: bool = False) -> str:  # noqa: ANN001
    if token is None:
        return "no token"
    if completion:
        status, body = chat(licensed, token, "mock-gpt")
    else:
        status, _, raw = http("GET", f"{licensed.url}{ADMIN_ROUTE}", headers={"Authorization": f"Bearer {token}"})
        body = json.loads(raw or b"{}")
    if status == 200 and "choices" in body:
        return f"200 {body['choices'][0]['message']['content']}"
    error = body.get("error", body.get("detail", body))
    if isinstance(error, dict):
        text = str(error.get("error") or error.get("message") or "")
        kind = str(error.get("type") or "")
    else:
        text, kind = str(error), ""
    if _no_database(text):
        return f"{status} {NO_DB}"
    refused = re.search(r"Role=\w+ not allowed", text)
    if refused:
        return f"{status} {refused.group(0)}"
    text = " ".join(text.split())[:70]
    return f"{status} {kind}: {text}" if kind else f"{status} {text}"


def _no_database(text: str) -> bool:
    return bool(re.search(r"(?i)db not connected|no db connected", text))


def test_the_role_litellm_derives_at_sign_in_follows_the_claim(world: World) -> None:
    """LiteLLM's sign-in code (tests/e2e/sso_roles.py) on the real userinfo answers, with the rendered env."""
    world.role("admin", "AI_USER")  # the user named admin now gets in: as an internal user, not as admin
    world.role("dave", "AI_ADMIN")
    secret = world.secret()
    docs = render(world.root, SITE, (world.root / f"sites/{SITE}/site.yaml").read_text(), env=world.env)
    env = container_env(serving_container(docs), secret)
    userinfo = {user: _userinfo(world, env, user, secret["CLIENT_SECRET"]) for user in ("bob", "admin", "alice", "dave")}
    world.role("dave", "AI_ADMIN", remove=True)  # lost AI_ADMIN, kept AI_USER (below): the next sign-in
    world.role("dave", "AI_USER")
    userinfo["dave after losing AI_ADMIN"] = _userinfo(world, env, "dave", secret["CLIENT_SECRET"])
    userinfo["a claim naming no role"] = {k: v for k, v in userinfo["alice"].items() if k != "litellm_role"}
    derived = _litellm_sign_in(env, userinfo)
    print("\n" + "\n".join(f"{name:28} id={'PROXY_ADMIN_ID' if d['id'] == env['PROXY_ADMIN_ID'] else 'sub'} "
                           f"role={d['role']} after PROXY_ADMIN_ID={d['after_proxy_admin_id']}"
                           for name, d in derived.items()))
    ids = {user: world.admin.get_user_id(user) for user in ("bob", "admin", "alice", "dave")}
    assert {name: derived[name]["id"] for name in ids} == ids  # the Keycloak id, not the username
    assert derived["bob"]["after_proxy_admin_id"] == "proxy_admin"
    assert derived["admin"] == {"id": ids["admin"], "role": "internal_user", "after_proxy_admin_id": "internal_user"}
    assert derived["alice"]["after_proxy_admin_id"] == "internal_user"
    assert derived["dave"]["role"] == "proxy_admin"
    assert derived["dave after losing AI_ADMIN"]["after_proxy_admin_id"] == "internal_user"
    assert derived["a claim naming no role"]["after_proxy_admin_id"] == "internal_user_viewer"


def _userinfo(world: World, env: dict[str, str], user: str, client_secret: str) -> dict:
    token = world.grant(user, secret=client_secret).json()["access_token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == world.admin.get_user_id(user)  # jwtAuth's user_id_jwt_field: the same id as SSO's
    status, _, body = http("GET", env["GENERIC_USERINFO_ENDPOINT"], headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    return json.loads(body)


def _litellm_sign_in(env: dict[str, str], userinfo: dict[str, dict]) -> dict[str, dict]:
    given = json.dumps({"env": env, "userinfo": userinfo})
    run = subprocess.run([str(VENV / "bin" / "python"), str(SSO_ROLES)], input=given.encode(), capture_output=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    answer = json.loads(run.stdout)
    assert answer["mappings"] is True
    return answer["users"]


def test_bootstrap_reports_stored_roles_above_the_keycloak_roles(world: World) -> None:
    ids = {user: world.admin.get_user_id(user) for user in USERS}
    dsn = world.secret()["DATABASE_URL"]  # as the site's role, as the migration Job runs: it owns what it makes
    assert len(apply_migrations(dsn, migrations())) > 200  # LiteLLM 1.108.7's schema, as its migration Job leaves it
    rows = [(ids["bob"], "proxy_admin"), (ids["alice"], "proxy_admin"), (ids["nobody"], "internal_user"),
            ("default_user_id", "proxy_admin"), (ids["admin"], "internal_user_viewer")]
    world.pg.psql("".join(f"""INSERT INTO "LiteLLM_UserTable"(user_id, user_role) VALUES ('{u}', '{r}');"""
                          for u, r in rows)
                  + f"""INSERT INTO "LiteLLM_VerificationToken"(token, user_id) VALUES ('k1', '{ids["alice"]}'),
                        ('k2', '{ids["alice"]}');""", "access")
    before = world.pg.psql('SELECT user_id, user_role FROM "LiteLLM_UserTable" ORDER BY user_id', "access")
    run = generator(world.root, "bootstrap", "--site", SITE, "--only", "keycloak", "--only", "postgres", env=world.env)
    assert run.code == 0, run.text
    print("\n" + "\n".join(line for line in run.out.splitlines() if "roles" in line))
    warnings = [line for line in run.out.splitlines() if line.startswith("warning   roles")]
    assert len(warnings) == 3, run.out
    assert any(f"LiteLLM user {ids['alice']} (Keycloak user alice): stored proxy_admin, Keycloak grants "
               "internal_user; 2 key(s)" in w for w in warnings), warnings
    assert any(f"LiteLLM user {ids['nobody']} (Keycloak user nobody): stored internal_user, Keycloak grants no "
               "role" in w for w in warnings), warnings
    assert any("LiteLLM user default_user_id (no Keycloak user): stored proxy_admin" in w for w in warnings), warnings
    assert "roles     5 LiteLLM user(s), 3 above their Keycloak roles" in run.out
    assert "nothing to do" in run.out  # the audit changes nothing, in either service
    assert world.pg.psql('SELECT user_id, user_role FROM "LiteLLM_UserTable" ORDER BY user_id', "access") == before
