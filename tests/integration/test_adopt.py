"""Issue 24: `generator adopt` takes over the LiteLLM Thinkube's playbooks deployed, from a saved dump.

The dump is written as ``kubectl get -o yaml`` saves what the playbooks make (tests/thinkube_original.py, from
thinkube df35039d): the adopted sops file decrypts to the original values, the site file carries the host, the
namespace and the ingress class, its render validates strictly; what is left behind is named with its line;
hostile or partial dumps are exit 2 with one line and nothing written; an adopted site never gets a salt key.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from generator.adopt.mapping import SETTINGS_KEYS
from generator.secrets.keys import ADOPTED_KEY, FINGERPRINT_KEY
from generator.tools import find
from tests import thinkube_original as original
from tests.helpers import empty_repository, file_digests, generator, sops_decrypt

pytestmark = pytest.mark.tools


@pytest.fixture
def world(tmp_path: Path):
    return empty_repository(tmp_path)


def _adopt(world, dump: Path, *extra: str, site: str = "home"):  # noqa: ANN001, ANN202
    root, key, cert, env = world
    return generator(root, "adopt", "--site", site, "--from-manifests", str(dump), "--age-recipient", key.recipient,
                     "--cert", str(cert), *extra, env=env)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_a_playbook_install_is_adopted_with_its_values(world, tmp_path: Path) -> None:  # noqa: ANN001
    root, key, _, env = world
    values = original.values()
    dump = tmp_path / "litellm.yaml"
    dump.write_text(original.dump(original.objects("home.example.net", values)))
    adopted = _adopt(world, dump)
    # the playbook's placeholder model reads a key the pod never had: left behind, named with its line
    assert adopted.code == 1, adopted.text
    model_line = _line_of(dump.read_text(), 'model_name: "test-model"')
    assert f"left      {dump}:{model_line}: model test-model: reads os.environ/OPENAI_API_KEY" in adopted.out, adopted.out
    for value in values.values():
        if len(value) > 12:
            assert value not in adopted.text, "a secret value was printed"
    stored = sops_decrypt(root / "sites/home/secrets.sops.yaml", key.identity)
    secrets = {k: v for k, v in values.items() if k not in SETTINGS_KEYS}  # the settings go to the site file
    assert {k: v for k, v in stored.items() if k not in ("sops", FINGERPRINT_KEY, ADOPTED_KEY)} == secrets
    assert ADOPTED_KEY in stored
    site = yaml.safe_load((root / "sites/home/site.yaml").read_text())
    assert (site["domain"], site["hostname"], site["namespace"]) == (
        "home.example.net", "litellm.home.example.net", "litellm")
    assert "routing" not in site and "image" not in site, site  # the defaults: HTTPRoute, registry.<domain>
    assert site["keepNamespace"] is True, "the namespace holds the original's PVC"
    assert "postgres" not in site, "the admin login stays the admin's: bootstrap gives LiteLLM its own role"
    assert "DATABASE_URL logs in as another role than postgres.role (litellm)" in adopted.out
    assert "kubectl -n litellm annotate secret litellm-secrets sealedsecrets.bitnami.com/managed=true" in adopted.out
    assert "kubectl -n litellm delete configmap litellm-config" in adopted.out
    assert "kubectl -n litellm delete deployment litellm --cascade=orphan" in adopted.out
    assert "PersistentVolumeClaim litellm/litellm-data-pvc (5Gi)" in adopted.out
    rendered = generator(root, "render", "--site", "home", env=env)
    assert rendered.code == 0, rendered.text
    assert generator(root, "validate", "--all", env=env).code == 0
    namespace = yaml.safe_load((root / "overlays/home/setup/namespace.yaml").read_text())
    assert namespace["metadata"]["annotations"] == {"argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
                                                    "kustomize.toolkit.fluxcd.io/prune": "disabled"}
    deployment = (root / "overlays/home/app/deployment-patch.yaml").read_text()
    assert "registry.home.example.net/library/litellm-non_root:v1.108.7" in deployment
    sealed = yaml.safe_load((root / "overlays/home/setup/sealed-secret.yaml").read_text())
    assert set(sealed["spec"]["encryptedData"]) == set(secrets), "every secret of the original is sealed, nothing else"
    pod = yaml.safe_load(deployment)["spec"]["template"]["spec"]["containers"][0]["env"]
    plain = {e["name"]: e.get("value") for e in pod}  # the settings moved out of the Secret, byte for byte
    assert {k: plain[k] for k in ("S3_BUCKET_NAME", "S3_REGION_NAME", "S3_ENDPOINT_URL")} == {
        k: values[k] for k in ("S3_BUCKET_NAME", "S3_REGION_NAME", "S3_ENDPOINT_URL")}
    assert plain["UI_USERNAME"] == values["ADMIN_USERNAME"]
    audit = generator(root, "audit", env=env)  # no secret in plaintext anywhere in the tree
    assert audit.code == 0, audit.text


def test_an_ingress_install_in_its_own_namespace_keeps_host_namespace_and_class(world, tmp_path: Path) -> None:  # noqa: ANN001
    root, _, _, env = world
    dump = tmp_path / "ai.json"  # kubectl get -o json: no block scalars, lines of config.yaml itself
    objs = original.objects("lab.example.org", original.values("admin"), namespace="ai", route="ingress",
                            realm="lab")
    dump.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objs[1:]}, default_flow_style=True,
                                   width=100000))
    adopted = _adopt(world, dump, site="lab")
    assert adopted.code == 1, adopted.text
    assert "(ConfigMap ai/litellm-config, config.yaml:" in adopted.out, adopted.out
    site = yaml.safe_load((root / "sites/lab/site.yaml").read_text())
    assert (site["hostname"], site["namespace"]) == ("litellm.lab.example.org", "ai")
    assert site["routing"] == {"type": "ingress", "ingress": {"className": "nginx", "tlsSecretName": "ai-tls-secret"}}
    assert site["keycloak"]["realm"] == "lab"
    assert "postgres" not in site and "ui" not in site, "admin is the default UI user"
    assert "Secret ai/ai-tls-secret: the playbook's copy of the wildcard certificate, which the Ingress serves" \
        in adopted.out
    assert generator(root, "render", "--site", "lab", env=env).code == 0
    assert generator(root, "validate", "--site", "lab", env=env).code == 0


def test_an_upgraded_install_lists_the_old_ingress_with_its_command(world, tmp_path: Path) -> None:  # noqa: ANN001
    dump = tmp_path / "both.yaml"
    dump.write_text(original.dump(original.objects("home.example.net", original.values(), route="both")))
    adopted = _adopt(world, dump, "--dry-run")
    assert adopted.code == 1, adopted.text
    assert "Ingress litellm/litellm: replaced by the HTTPRoute litellm-route" in adopted.out
    assert "kubectl -n litellm delete ingress litellm" in adopted.out
    assert not (world[0] / "sites/home").exists(), "a dry run writes nothing"

    as_json = _adopt(world, dump, "--dry-run", "-o", "json")  # the same report, as rows: stdout holds them alone
    assert as_json.code == 1, as_json.text
    rows = json.loads(as_json.out)
    assert {"status": "after", "where": "", "what": next(r["what"] for r in rows if "Ingress litellm/litellm" in r["what"]),
            "command": "kubectl -n litellm delete ingress litellm"} in rows, rows
    assert {r["status"] for r in rows} >= {"before", "after", "left"} and "dry run: would write" in as_json.err
    assert len(rows) == sum(1 for line in adopted.out.splitlines() if not line.startswith((" ", "dry run:"))
                            and "item(s) of the original" not in line), (rows, adopted.out)


def _hostile(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A dump broken one way, and what the error line must name."""
    values = original.values()
    objs = original.objects("home.example.net", values)
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    secret, config = by[("Secret", "litellm-secrets")], by[("ConfigMap", "litellm-config")]
    path = tmp_path / f"{case}.yaml"
    if case == "missing-secret":
        objs.remove(secret)
        expect = "no Secret litellm/litellm-secrets"
    elif case == "not-base64":
        secret["data"]["LITELLM_SALT_KEY"] = "not*base64!"
        expect = "Secret litellm/litellm-secrets data.LITELLM_SALT_KEY: is not base64"
    elif case == "binary-value":
        secret["data"]["CLIENT_SECRET"] = base64.b64encode(b"\xff\xfe\x00").decode()
        expect = "data.CLIENT_SECRET: is not UTF-8 text"
    elif case == "no-salt-key":
        del secret["data"]["LITELLM_SALT_KEY"]
        expect = "has no LITELLM_SALT_KEY"
    elif case == "config-not-yaml":
        config["data"]["config.yaml"] = "general_settings:\n  master_key: [unclosed\n"
        expect = "config.yaml of ConfigMap litellm/litellm-config: YAML syntax error"
    elif case == "config-not-mapping":
        config["data"]["config.yaml"] = "- just\n- a list\n"
        expect = "expected LiteLLM's config (a mapping), found a list"
    elif case == "no-containers":
        by[("Deployment", "litellm")]["spec"]["template"]["spec"]["containers"] = []
        expect = "Deployment litellm/litellm spec.template.spec.containers: no containers"
    if case == "not-yaml":
        path.write_text("apiVersion: v1\nkind: List\nitems: [\n")
        return path, f"{path}:4: YAML syntax error"
    if case == "huge":
        path.write_bytes(b"# " + b"x" * 4_100_000 + b"\n")
        return path, "larger than the limit"
    if case == "alias-bomb":
        path.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)))
        return path, "alias bomb"
    if case == "items-not-list":
        path.write_text("apiVersion: v1\nkind: List\nitems: {a: 1}\n")
        return path, f"{path}:3: items: expected a list"
    path.write_text(original.dump(objs))
    return path, expect


HOSTILE = ["missing-secret", "not-base64", "binary-value", "no-salt-key", "config-not-yaml", "config-not-mapping",
           "no-containers", "not-yaml", "huge", "alias-bomb", "items-not-list"]


@pytest.mark.parametrize("case", HOSTILE)
def test_bad_or_partial_input_is_one_line_exit_2_and_nothing_written(world, tmp_path: Path, case: str) -> None:  # noqa: ANN001
    root = world[0]
    before = file_digests(root)
    path, expect = _hostile(tmp_path, case)
    result = _adopt(world, path)
    assert result.code == 2, (case, result.text)
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, (case, result.err)
    assert str(path) in result.err and expect in result.err, (case, result.err)
    assert "Traceback" not in result.text
    assert file_digests(root) == before, f"{case}: something was written"


def test_an_adopted_site_never_gets_a_generated_salt_key(world, tmp_path: Path) -> None:  # noqa: ANN001
    root, key, _, env = world
    values = original.values()
    dump = tmp_path / "litellm.yaml"
    dump.write_text(original.dump(original.objects("home.example.net", values)))
    assert _adopt(world, dump).code == 1
    secrets_file = root / "sites/home/secrets.sops.yaml"
    init = generator(root, "secrets", "init", "--site", "home", env=env)
    assert init.code == 0, init.text
    assert sops_decrypt(secrets_file, key.identity)["LITELLM_SALT_KEY"] == values["LITELLM_SALT_KEY"]
    rotate = generator(root, "secrets", "rotate", "--site", "home", "LITELLM_SALT_KEY", "--force", env=env)
    assert rotate.code == 2 and "adopted from a running install" in rotate.err, rotate.text
    assert generator(root, "secrets", "rotate", "--site", "home", "LITELLM_MASTER_KEY", env=env).code == 0
    subprocess.run([str(find("sops")), "unset", str(secrets_file), '["LITELLM_SALT_KEY"]'], check=True, cwd=root,
                   env={**os.environ, **env, "SOPS_DISABLE_VERSION_CHECK": "1"}, capture_output=True)
    before = secrets_file.read_bytes()
    again = generator(root, "secrets", "init", "--site", "home", env=env)
    assert again.code == 2 and "never makes one here" in again.err, again.text
    assert secrets_file.read_bytes() == before
    assert "LITELLM_SALT_KEY" not in sops_decrypt(secrets_file, key.identity)
    restored = generator(root, "secrets", "set", "--site", "home", "LITELLM_SALT_KEY", stdin=values["LITELLM_SALT_KEY"],
                         env=env)
    assert restored.code == 0, restored.text


def test_adopt_refuses_an_existing_site_and_a_dump_with_a_cluster(world, tmp_path: Path) -> None:  # noqa: ANN001
    root = world[0]
    dump = tmp_path / "litellm.yaml"
    dump.write_text(original.dump(original.objects("home.example.net", original.values())))
    (root / "sites/home").mkdir()
    (root / "sites/home/site.yaml").write_text("domain: example.com\n")
    taken = _adopt(world, dump)
    assert taken.code == 2 and "sites/home exists" in taken.err, taken.text
    both = generator(root, "adopt", "--site", "x", "--from-manifests", str(dump), "--context", "c")
    assert both.code == 2, both.text


def test_a_value_the_model_refuses_is_left_behind_and_a_dump_without_namespaces_reads(world, tmp_path: Path) -> None:  # noqa: ANN001
    root, key, _, _ = world
    values = {**original.values("tk-admin"), "S3_REGION_NAME": "US East"}  # a region name the model refuses
    objs = original.objects("home.example.net", values)
    for obj in objs:
        obj["metadata"].pop("namespace", None)  # kubectl get -o yaml of a manifest applied without one
    dump = tmp_path / "no-namespace.yaml"
    dump.write_text(original.dump(objs))
    adopted = _adopt(world, dump)
    assert adopted.code == 1, adopted.text
    assert re.search(r"^left .*s3\.region: .*left at the default$", adopted.out, re.M), adopted.out
    site = yaml.safe_load((root / "sites/home/site.yaml").read_text())
    assert site["namespace"] == "litellm" and "s3" not in site and site["ui"]["username"] == "tk-admin"
    assert sops_decrypt(root / "sites/home/secrets.sops.yaml", key.identity)["DATABASE_URL"] == values["DATABASE_URL"]


def test_a_cluster_that_cannot_be_read_is_exit_3_and_nothing_written(world, tmp_path: Path) -> None:  # noqa: ANN001
    root, key, cert, env = world
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "gone",
              "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}]}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    before = file_digests(root)
    result = generator(root, "adopt", "--site", "home", "--kubeconfig", str(kubeconfig), "--age-recipient",
                       key.recipient, "--cert", str(cert), env=env)
    assert result.code == 3 and result.err.startswith("error: kubectl get secret litellm-secrets"), result.text
    assert result.err.count("\n") == 1 and file_digests(root) == before
