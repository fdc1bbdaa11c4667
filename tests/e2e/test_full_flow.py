"""Issue 5: the whole flow on real servers, and the real LiteLLM proxy run from the rendered tree.

secrets init -> bootstrap (real Keycloak, PostgreSQL, SeaweedFS) -> render -> validate -> build the
overlay with kustomize -> unseal the SealedSecret with the real kubeseal -> run the Deployment's init
containers, then the real LiteLLM proxy, in the pod sandbox (tests/pod_sandbox): the image's layout
and environment, user 65534, a read-only root, every volume of the rendered Deployment mounted as the
kubelet mounts it, the container's args and env; strace lists every path it writes.

What differs from the pod, and why (nothing else does):
  1. DATABASE_URL is left unset: LiteLLM's Prisma engines cannot be downloaded here.
  2. model_list gets one entry with mock_response instead of a real provider (no outbound calls).
  3. --port is a free local port (the sandbox shares the host's network).
  4. LITELLM_LOCAL_MODEL_COST_MAP=True, so the proxy does not fetch the cost map from the internet.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from keycloak import KeycloakAdmin

from tests.e2e import oidc
from tests.e2e.leaks import ProcessWatch, shim_calls, tool_shims
from tests.e2e.pod import LITELLM, PodProxy, Proxy, build, http, one, unseal
from tests.e2e.rendered import running
from tests.pod_sandbox import Container, Sandbox, config_maps, pod_spec
from tests.pod_sandbox.checks import probe_writes, ui_problems, write_problems
from tests.helpers import admin_env, build_file_tree, create_realm, generator, local_site
from tests.keys import age_key, sealing_pair, sops_rules
from tests.servers import free_port, scaled

pytestmark = pytest.mark.e2e
REALM, SITE = "thinkube", "e2e"
ADMIN, ADMIN_PASSWORD = "admin", "e2e-admin-password-1"
PLAIN, PLAIN_PASSWORD = "alice", "e2e-user-password-2"
DIFFERENCES = ("DATABASE_URL unset", "mock_response model", "local --port", "LITELLM_LOCAL_MODEL_COST_MAP=True")
POD_ENV = {"DATABASE_URL": None, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # differences 1 and 4
MOCK_MODELS = [{"model_name": "mock-gpt", "litellm_params": {
    "model": "openai/gpt-4o-mini", "api_key": "not-used", "mock_response": "Hello from the mock"}}]  # 2


@pytest.fixture(scope="module")
def servers(service_trio):  # noqa: ANN001 - tests/e2e/conftest.py
    kc, _, _ = service_trio
    create_realm(kc, REALM, {ADMIN: ADMIN_PASSWORD, PLAIN: PLAIN_PASSWORD})
    return service_trio


def serving_container(docs: list[dict], secret: dict[str, str]) -> Container:
    """The Deployment's litellm container, with difference 2 applied to its mounted config.yaml."""
    spec = pod_spec(docs, "Deployment", "litellm")
    maps = config_maps(docs)
    config_name = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "config")
    config = yaml.safe_load(maps[config_name]["config.yaml"])
    config["model_list"] = copy.deepcopy(MOCK_MODELS)
    maps[config_name] = {**maps[config_name], "config.yaml": yaml.safe_dump(config)}
    return Container(next(c for c in spec["containers"] if c["name"] == "litellm"), spec, secret, maps)


def _chat(proxy: Proxy | PodProxy, key: str, text: str = "What is GitOps?") -> tuple[int, dict[str, str], dict]:
    status, headers, body = http("POST", f"{proxy.url}/v1/chat/completions",
                                 {"model": "mock-gpt", "messages": [{"role": "user", "content": text}]},
                                 {"Authorization": f"Bearer {key}"})
    try:
        return status, headers, json.loads(body or b"{}")
    except json.JSONDecodeError:
        return status, headers, {"raw": body.decode(errors="replace")}


def _bucket_objects(s3_endpoint: str, bucket: str, key_id: str, secret: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id=key_id, aws_secret_access_key=secret)
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _wait_for_objects(proxy_env: dict[str, str], secret: dict[str, str], seconds: float = 30) -> list[str]:
    """Objects in the cache bucket, read with LiteLLM's own S3 identity (the one bootstrap created)."""
    deadline = time.monotonic() + scaled(seconds)
    while True:
        objects = _bucket_objects(proxy_env["S3_ENDPOINT_URL"], proxy_env["S3_BUCKET_NAME"],
                                  secret["S3_AWS_ACCESS_KEY_ID"], secret["S3_AWS_SECRET_ACCESS_KEY"])
        if objects or time.monotonic() > deadline:
            return objects
        time.sleep(0.5)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else "(no log)"


def test_full_flow(servers, tmp_path: Path) -> None:
    kc, pg, s3 = servers
    assert LITELLM.is_file(), f"{LITELLM} missing: run scripts/install-servers.sh"
    root = tmp_path / "repo"
    key = age_key()
    cert, private_key = sealing_pair(tmp_path / "keys")
    build_file_tree(root, {f"sites/{SITE}/site.yaml": local_site(kc, pg, s3, realm=REALM), ".sops.yaml": sops_rules([key.recipient])})
    shutil.copy(cert, root / f"sites/{SITE}/sealing-cert.pem")
    shim_log = tmp_path / "tool-calls.log"
    env = {"SOPS_AGE_KEY": key.identity, **admin_env(kc, pg, s3), **tool_shims(tmp_path / "shims", shim_log)}
    logs: list[str] = []
    tmp_before = set(_tmp_files())

    with ProcessWatch() as watch:
        # 1. The operator's flow.
        for args in (("secrets", "init", "--site", SITE), ("bootstrap", "--site", SITE), ("render", "--site", SITE),
                     ("validate", "--site", SITE)):
            result = generator(root, *args, env=env)
            logs.append(result.text)
            assert result.code == 0, f"{args}: {result.text}"
        again = generator(root, "bootstrap", "--site", SITE, env=env)
        assert again.code == 0 and "nothing to do" in again.out, again.text

        # 2. The pod, from the manifests: its init containers run to completion against the real services.
        docs = build(root / f"overlays/{SITE}")
        secret = unseal(one(docs, "SealedSecret", "litellm-secrets"), private_key)
        rendered_config = yaml.safe_load(one(docs, "ConfigMap", "litellm-config")["data"]["config.yaml"])
        assert rendered_config["litellm_settings"]["cache_params"]["type"] == "s3"
        container = serving_container(docs, secret)
        assert container.argv() == ["/app/docker/prod_entrypoint.sh", "--port", "4000", "--config", "/app/config.yaml"]
        for init in container.pod.get("initContainers", []):
            waited = Sandbox(Container(init, container.pod, secret, container.maps), tmp_path / "pod").run_to_end(120)
            assert waited.returncode == 0, f"init container {init['name']}: {waited.text()[-2000:]}"
        master = secret["LITELLM_MASTER_KEY"]
        proxy_env = container.env()

        # 3. What the run must show.
        with PodProxy(container, tmp_path / "pod", free_port(), env_overrides=POD_ENV) as proxy:
            assert http("GET", f"{proxy.url}/health/liveliness")[0] == 200
            assert http("GET", f"{proxy.url}/health/readiness")[0] == 200
            status, headers, first = _chat(proxy, master)
            assert status == 200, first
            assert first["choices"][0]["message"]["content"] == "Hello from the mock"
            objects = _wait_for_objects(proxy_env, secret)  # the cache write is asynchronous
            assert objects, f"LiteLLM wrote nothing to the cache bucket: {_tail(proxy.run.log)}"
            status, headers, second = _chat(proxy, master)
            assert status == 200, second
            assert headers.get("x-litellm-cache-key"), f"no cache hit: {headers}"
            assert second["id"] == first["id"], "the repeated request was not served from the cache"
            wrong = _chat(proxy, "sk-" + "x" * 48)
            assert wrong[0] in (400, 401, 403), (wrong, _tail(proxy.run.log))
            status, _, page = http("GET", f"{proxy.url}/ui/")
            assert status == 200 and b"<html" in page.lower(), (status, page[:200])
            marker = http("GET", f"{proxy.url}/ui/.litellm_ui_ready")[0]
            # LiteLLM's own password login (a proxy admin without Keycloak) is off: the rendered config says so
            form = urllib.parse.urlencode({"username": proxy_env["UI_USERNAME"], "password": secret["ADMIN_PASSWORD"]})
            login = urllib.request.Request(f"{proxy.url}/login", data=form.encode(), method="POST",
                                           headers={"Content-Type": "application/x-www-form-urlencoded"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(login, timeout=60)
            assert refused.value.code == 403, refused.value.read()[:300]
        run = proxy.run
        # The image's pre-built UI is served as it is, and the pod writes only where it may.
        assert not ui_problems(run, marker_status=marker), ui_problems(run, marker_status=marker)
        assert not write_problems(run), write_problems(run)
        print("paths the proxy wrote:", *(str(w) for w in run.writes), sep="\n  ")
        probe = probe_writes(container, tmp_path / "probe", ["/tmp/probe", "/app/probe", "/app/.cache/probe",
                                                             "/var/lib/litellm/ui/probe", "/probe"])
        assert probe.pop("/tmp/probe") == "ok", probe
        assert set(probe.values()) == {"Read-only file system"}, probe

        # 4. The SSO side, with the client id and secret from sops (here: the unsealed Secret, equal to sops).
        token_url = proxy_env["GENERIC_TOKEN_ENDPOINT"]
        issuer = token_url.rsplit("/protocol/", 1)[0]
        tokens = oidc.password_grant(token_url, proxy_env["GENERIC_CLIENT_ID"], secret["CLIENT_SECRET"], ADMIN, ADMIN_PASSWORD)
        claims = oidc.verify(tokens["access_token"], f"{issuer}/protocol/openid-connect/certs", issuer)
        role_claim = oidc.nested(claims, proxy_env["GENERIC_USER_ROLE_ATTRIBUTE"])
        assert _litellm_role(role_claim) == "proxy_admin", role_claim
        status, _, userinfo = http("GET", proxy_env["GENERIC_USERINFO_ENDPOINT"],
                                   headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert status == 200 and _litellm_role(oidc.nested(json.loads(userinfo), proxy_env["GENERIC_USER_ROLE_ATTRIBUTE"])) == "proxy_admin"
        # a user without AI_USER or AI_ADMIN gets no token of this client (bootstrap's gate); with AI_USER, a user's
        with pytest.raises(urllib.error.HTTPError) as refused:
            oidc.password_grant(token_url, proxy_env["GENERIC_CLIENT_ID"], secret["CLIENT_SECRET"], PLAIN, PLAIN_PASSWORD)
        assert refused.value.code == 401
        realm_admin = KeycloakAdmin(server_url=kc.url, username=kc.admin_user, password=kc.admin_password,
                                    realm_name=REALM, user_realm_name="master")
        realm_admin.assign_realm_roles(realm_admin.get_user_id(PLAIN), [realm_admin.get_realm_role("AI_USER")])
        plain = oidc.password_grant(token_url, proxy_env["GENERIC_CLIENT_ID"], secret["CLIENT_SECRET"], PLAIN, PLAIN_PASSWORD)
        plain_claims = oidc.verify(plain["access_token"], f"{issuer}/protocol/openid-connect/certs", issuer)
        assert _litellm_role(oidc.nested(plain_claims, proxy_env["GENERIC_USER_ROLE_ATTRIBUTE"])) == "internal_user"
        auth = http("GET", proxy_env["GENERIC_AUTHORIZATION_ENDPOINT"] + "?client_id=litellm&response_type=code&scope=openid"
                    "&redirect_uri=https://litellm.example.com/sso/callback")
        assert auth[0] == 200, auth[0]

    # 7. Leak checks: argv of every child, env of every child that must not hold a value, logs, tree, history.
    values = {k: v for k, v in secret.items() if len(v) >= 8}
    # Every sops and kubeseal call, recorded by the tool shims (the sampler may miss short-lived ones on a busy
    # machine); their argv never holds a value. The sampler adds every other descendant it saw.
    calls = shim_calls(shim_log)
    assert sum(c.startswith("sops ") for c in calls) >= 5 and any(c.startswith("kubeseal ") for c in calls), calls
    assert watch.samples > 10
    for name, value in values.items():
        assert not [c for c in calls if value in c], f"{name} in the argv of a tool"
    for name, value in values.items():
        for proc, cmd in watch.argv.items():
            assert value not in cmd, f"{name} in the argv of {proc}"
        for proc, environ in watch.environ.items():
            assert value.encode() not in environ, f"{name} in the environment of {proc}"
        for text in logs:
            assert value not in text, f"{name} in the generator's output"
    # Logs of the servers, and every file the flow left in temporary directories (the test's own and /tmp).
    # The servers' data directories are theirs to keep secrets in (Keycloak stores the client secret).
    scanned = [p for p in tmp_path.rglob("*") if p.is_file()]
    scanned += [Path(server.log_path) for server in (kc, pg, s3) if Path(server.log_path).is_file()]
    server_dirs = [Path(server.workdir).resolve() for server in (kc, pg, s3)]
    scanned += [p for p in _tmp_files() if p not in tmp_before and not p.name.startswith("pgtest-")
                and not any(d in p.resolve().parents for d in server_dirs) and "/pgtest-" not in str(p)]
    assert len(scanned) > 20
    for path in scanned:
        try:
            data = path.read_bytes() if path.stat().st_size < 50_000_000 else b""
        except FileNotFoundError:
            continue  # removed since the walk (a concurrent process's temporary file): nothing left on disk
        for name, value in values.items():
            assert value.encode() not in data, f"{name} in plaintext in {path}"
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=e2e@example.com", "-c", "user.name=e2e", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=e2e@example.com", "-c", "user.name=e2e", "commit", "-qm", "site"], cwd=root, check=True)
    audit = generator(root, "audit", env=env)
    assert audit.code == 0 and "no plaintext found" in audit.out, audit.text


def _tmp_files() -> list[Path]:
    """Every regular file under /tmp. Other processes (a concurrent test run) create and remove directories
    there while this walks: one that vanishes mid-walk is skipped, not an error (os.walk's onerror)."""
    found = []
    for directory, _, names in os.walk("/tmp", onerror=lambda error: None):
        for name in names:
            path = Path(directory) / name
            try:
                if path.is_file() and not path.is_symlink():
                    found.append(path)
            except OSError:
                continue
    return found


def _litellm_role(claim: object) -> str | None:
    """What LiteLLM makes of the claim: the most privileged valid role in it (ui_sso.get_litellm_user_role)."""
    order = ["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
    values = claim if isinstance(claim, list) else [claim]
    found = [v for v in order if v in values]
    return found[0] if found else None


def test_broken_s3_credential_is_detected(servers, tmp_path: Path) -> None:
    """The negative control: with a wrong S3 secret, the cache checks above fail. A control proxy with the right
    secret runs beside it and gets the same requests: once the control's asynchronous cache write has landed
    (and its repeat is served from the cache), the broken proxy has had at least as long and has written nothing,
    so the emptiness is the credential's doing, not a write still on its way."""
    kc, pg, s3 = servers
    admin = boto3.client("s3", endpoint_url=s3.s3_endpoint, region_name="us-east-1",
                         aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key)

    def proxy(name: str, secret_key: str) -> Proxy:
        bucket = f"e2e-{name}"
        admin.create_bucket(Bucket=bucket)
        config = {"model_list": [{"model_name": "mock-gpt", "litellm_params": {
                      "model": "openai/gpt-4o-mini", "api_key": "x", "mock_response": "Hello"}}],
                  "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
                  "litellm_settings": {"cache": True, "cache_params": {
                      "type": "s3", "s3_bucket_name": bucket, "s3_region_name": "us-east-1",
                      "s3_endpoint_url": s3.s3_endpoint, "s3_aws_access_key_id": s3.access_key,
                      "s3_aws_secret_access_key": secret_key, "ttl": 3600}}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        args = ["--port", str(free_port()), "--config", str(tmp_path / f"{name}.yaml")]
        return Proxy(args, env, tmp_path / f"{name}.log")

    def objects(bucket: str) -> int:
        return admin.list_objects_v2(Bucket=f"e2e-{bucket}").get("KeyCount", 0)

    env = {"LITELLM_MASTER_KEY": "sk-" + "b" * 40, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with running(proxy("control", s3.secret_key), proxy("broken", "wrong-" + s3.secret_key)) as (control, broken):
        firsts, answered = {}, {}
        for p in (control, broken):
            firsts[p] = _chat(p, env["LITELLM_MASTER_KEY"])
            answered[p] = time.monotonic()
        deadline = answered[control] + scaled(30)
        while not objects("control"):
            assert time.monotonic() < deadline, f"the control wrote nothing to its bucket: {_tail(control.log_path)}"
            time.sleep(0.1)
        landed = time.monotonic() - answered[control]  # an upper bound of the control's write after its answer
        # Not a guess: the broken proxy is given twice what the control needed (at least a second), after its own
        # answer, before its bucket is looked at.
        time.sleep(max(0.0, answered[broken] + max(2 * landed, 1.0) - time.monotonic()))
        seconds = {p: _chat(p, env["LITELLM_MASTER_KEY"]) for p in (control, broken)}
    print(f"control's cache write landed within {landed:.2f} s of its answer")
    assert all(r[0] == 200 for r in (*firsts.values(), *seconds.values()))  # LiteLLM swallows the S3 error...
    assert seconds[control][2]["id"] == firsts[control][2]["id"]  # the control is served from its cache
    assert objects("broken") == 0  # ...but nothing reaches the broken proxy's bucket
    assert seconds[broken][2]["id"] != firsts[broken][2]["id"]  # and nothing is served from the cache
