"""Issue 11: API calls authenticated by Keycloak access tokens, as the rendered site configures LiteLLM.

Real Keycloak (realm and client converged by `generator bootstrap`), real tokens, the real LiteLLM proxy run
from the rendered config and env (tests/e2e/rendered.py lists the only differences from the pod).

1. The licence: jwtAuth without LITELLM_LICENSE in the site's secrets is refused at render (exit 2).
2. With a licence value that is not a LiteLLM licence, the rendered proxy answers a valid token with its
   licence refusal: the rendered settings reach LiteLLM's JWT path. LiteLLM asks its licence server about such
   a value; the request goes to the tests' egress trap (tests/egress.py), which refuses it on this machine.
3. With the licence check switched on INSIDE THIS TEST HARNESS ONLY (tests/e2e/licensed_litellm.py; a real
   deployment needs a real licence), the JWT path itself:
   - an admin's token (AI_ADMIN, so Keycloak grants the litellm_proxy_admin scope) passes authentication as
     a proxy admin: on an admin-only route the handler then fails for lack of the database (no auth error),
     and a completion succeeds;
   - an AI_USER token (the scope is not granted to it, even when asked for) is refused on that route by
     authorisation (enforce_rbac), before any database lookup;
   - a token of another realm, and an expired token, are refused by authentication.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from keycloak import KeycloakAdmin

from tests import egress
from tests.e2e.oidc import _b64
from tests.e2e.pod import http
from tests.e2e.rendered import chat, container_env, mocked, proxy, render, rendered_config, running, serving_container
from tests.helpers import admin_env, build_file_tree, create_realm, generator, local_site, sops_decrypt
from tests.keys import age_key, sealing_pair, sops_rules
from tests.servers import scaled

pytestmark = pytest.mark.e2e
REALM, OTHER, SITE = "jwt", "elsewhere", "jwt"
PASSWORD = "jwt-user-password-3"
ADMIN_ROUTE = "/user/list"  # management route: proxy admins only
LICENSED = Path(__file__).with_name("licensed_litellm.py")  # run by LiteLLM's venv Python


def _grant(kc, realm: str, client: str, secret: str | None, user: str, scope: str) -> str:  # noqa: ANN001
    form = {"grant_type": "password", "client_id": client, "username": user, "password": PASSWORD, "scope": scope}
    if secret:
        form["client_secret"] = secret
    url = f"{kc.url}/realms/{realm}/protocol/openid-connect/token"
    with urllib.request.urlopen(urllib.request.Request(url, data=urllib.parse.urlencode(form).encode()), timeout=30) as r:
        return json.loads(r.read())["access_token"]


def _claims(token: str) -> dict:
    return json.loads(_b64(token.split(".")[1]))


def _call(target, token: str) -> tuple[int, dict]:  # noqa: ANN001
    status, _, body = http("GET", f"{target.url}{ADMIN_ROUTE}", headers={"Authorization": f"Bearer {token}"})
    return status, json.loads(body or b"{}")


def _error(body: dict) -> tuple[str, str]:
    error = body.get("error", body)
    return str(error.get("type")), str(error.get("message", body))


@pytest.fixture(scope="module")
def keycloak_world(service_trio, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001
    kc, pg, s3 = service_trio
    create_realm(kc, REALM, {"admin": PASSWORD, "alice": PASSWORD})
    create_realm(kc, OTHER, {"admin": PASSWORD})
    admin = KeycloakAdmin(server_url=kc.url, username=kc.admin_user, password=kc.admin_password, realm_name=REALM,
                          user_realm_name="master")
    root = tmp_path_factory.mktemp("jwt") / "repo"
    key = age_key()
    cert, _ = sealing_pair(root.parent / "keys")
    site = local_site(kc, pg, s3, realm=REALM) + (
        "cache: {enabled: false}\njwtAuth: {enabled: true}\nmodels:\n  - {name: mock-gpt, model: openai/gpt-4o-mini}\n")
    build_file_tree(root, {f"sites/{SITE}/site.yaml": site, ".sops.yaml": sops_rules([key.recipient]),
                           f"sites/{SITE}/sealing-cert.pem": cert.read_bytes()})
    env = {"SOPS_AGE_KEY": key.identity, **admin_env(kc, pg, s3)}
    for args in (("secrets", "init", "--site", SITE), ("bootstrap", "--site", SITE, "--only", "keycloak")):
        result = generator(root, *args, env=env)
        assert result.code == 0, result.text
    admin.assign_realm_roles(admin.get_user_id("alice"), [admin.get_realm_role("AI_USER")])
    return kc, admin, root, env, key


def test_jwt_auth_needs_a_licence_key_to_render(keycloak_world) -> None:  # noqa: ANN001
    _, _, root, env, _ = keycloak_world
    refused = generator(root, "render", "--site", SITE, env=env)
    assert refused.code == 2, refused.text
    message = refused.err.strip()
    assert message.count("\n") == 0 and message.startswith(f"error: sites/{SITE}/site.yaml:"), message
    assert " jwtAuth.enabled: " in message and "LITELLM_LICENSE" in message and "enterprise" in message, message
    assert not (root / "overlays").exists()


def test_keycloak_tokens_reach_litellms_jwt_auth(keycloak_world, tmp_path: Path) -> None:  # noqa: ANN001
    kc, admin, root, env, key = keycloak_world
    stored = generator(root, "secrets", "set", "--site", SITE, "LITELLM_LICENSE", stdin="not-a-litellm-licence\n", env=env)
    assert stored.code == 0, stored.text
    docs = render(root, SITE, (root / f"sites/{SITE}/site.yaml").read_text(), env=env)
    secret = sops_decrypt(root / f"sites/{SITE}/secrets.sops.yaml", key.identity)
    proxy_env = container_env(serving_container(docs), secret)
    config = mocked(rendered_config(docs))
    assert config["general_settings"]["enable_jwt_auth"] is True
    assert proxy_env["JWT_PUBLIC_KEY_URL"] == f"{kc.url}/realms/{REALM}/protocol/openid-connect/certs"
    client_secret = secret["CLIENT_SECRET"]

    admin_token = _grant(kc, REALM, "litellm", client_secret, "admin", "openid litellm_proxy_admin")
    user_token = _grant(kc, REALM, "litellm", client_secret, "alice", "openid litellm_proxy_admin")
    assert "litellm_proxy_admin" in _claims(admin_token)["scope"].split()
    assert "litellm_proxy_admin" not in _claims(user_token)["scope"].split()  # asked for, not granted
    assert proxy_env["JWT_AUDIENCE"] == "litellm-api"  # an audience only this client's tokens carry
    assert "litellm-api" in _claims(admin_token)["aud"]  # bootstrap's audience mapper: JWT_AUDIENCE holds
    assert _claims(user_token)["litellm_role"] == ["internal_user"]
    foreign_token = _grant(kc, OTHER, "admin-cli", None, "admin", "openid")

    unlicensed = proxy(tmp_path, config, proxy_env, "unlicensed")
    licensed = proxy(tmp_path, config, proxy_env, "licensed", program=LICENSED)
    with running(unlicensed, licensed):
        # 2. the rendered proxy: the JWT path, stopped by the licence gate
        status, body = _call(unlicensed, admin_token)
        assert status == 403 and "JWT Auth is an enterprise only feature" in _error(body)[1], body
        # a licence LiteLLM cannot verify offline is checked with its licence server: refused here, locally
        assert "license.litellm.ai:443" in egress.active().seen()
        # the master key still works (JWT auth adds a way in, it removes none)
        assert chat(unlicensed, secret["LITELLM_MASTER_KEY"], "mock-gpt")[0] == 200

        # 3. the licence check on (harness only): authentication and authorisation
        # the admin passes authentication as a proxy admin; the handler then needs the database (no auth error)
        status, body = _call(licensed, admin_token)
        assert status == 500 and "No db connected" in body["detail"]["error"], (status, body)
        status, body = chat(licensed, admin_token, "mock-gpt")  # admin_allowed_routes include the model API
        assert status == 200 and body["choices"][0]["message"]["content"] == "Hello from the mock", body
        # an AI_USER: authenticated, then refused by authorisation (enforce_rbac, before any database lookup)
        status, body = _call(licensed, user_token)
        kind, message = _error(body)
        assert (status, kind) == (403, "auth_error"), (status, body)
        assert f"Role=internal_user not allowed to call route={ADMIN_ROUTE}" in message, body
        # on the model API a user's token is resolved to its LiteLLM user, which lives in the database
        status, body = chat(licensed, user_token, "mock-gpt")
        assert status == 401 and "No db connected" in _error(body)[1], (status, body)
        # refused by authentication: another realm's token (its key is not in this realm's JWKS), an expired one
        status, body = _call(licensed, foreign_token)
        assert status == 401 and _error(body)[0] == "auth_error", (status, body)
        status, body = _call(licensed, _expired(kc, admin))
        assert (status, _error(body)) == (401, ("expired_key", "Token Expired")), (status, body)


def _expired(kc, admin: KeycloakAdmin) -> str:  # noqa: ANN001
    """An admin token of the realm that has expired: minted with a short lifespan, then waited out."""
    realm = admin.get_realm(REALM)
    admin.update_realm(REALM, {"accessTokenLifespan": 2})
    try:
        token = _grant(kc, REALM, "litellm", _client_secret(admin), "admin", "openid litellm_proxy_admin")
    finally:
        admin.update_realm(REALM, {"accessTokenLifespan": realm.get("accessTokenLifespan", 300)})
    expires = _claims(token)["exp"]
    deadline = time.monotonic() + scaled(30)
    while time.time() <= expires + 1:  # a timestamp to pass, not a guess
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return token


def _client_secret(admin: KeycloakAdmin) -> str:
    return admin.get_client_secrets(admin.get_client_id("litellm"))["value"]
