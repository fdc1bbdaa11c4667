"""Issue 14, offline: the platform folder (the sealed-secrets controller, ordered before every site by each
engine), the engines' git credential sealed in the tree, and the ssh:// check."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from generator.tools import find, kustomize
from tests.helpers import MINIMAL_SITE, build_file_tree, fingerprint, generator
from tests.keys import age_key, sealing_pair

pytestmark = pytest.mark.tools
SSH_SITE = MINIMAL_SITE.replace("secretRef: flux-system", "branch: main")  # no Secret of the operator's own
HOSTS = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBGZ2l0LmV4YW1wbGUuY29tIGhvc3Qga2V5IGZvciB0ZXN0cw\n"


def _rules(recipient: str) -> str:
    return ("creation_rules:\n  - path_regex: (sites/[^/]+/secrets|platform/git)\\.sops\\.yaml$\n"
            f"    age: {recipient}\n")


@pytest.fixture
def repo(tmp_path: Path) -> dict:
    root = tmp_path / "repo"
    key = age_key()
    build_file_tree(root, {"sites/one/site.yaml": SSH_SITE + "namespace: llm-one\n",
                           "sites/two/site.yaml": SSH_SITE + "namespace: llm-two\nrollout: {wave: 1}\n",
                           ".sops.yaml": _rules(key.recipient), "platform.yaml": "gitCredential: sealed\n"})
    cert, private = sealing_pair(tmp_path / "keys")
    for name in ("one", "two"):
        shutil.copy(cert, root / f"sites/{name}/sealing-cert.pem")
    env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent"}
    for name in ("one", "two"):
        assert generator(root, "secrets", "init", "--site", name, env=env).code == 0
    return {"root": root, "env": env, "private": private, "tmp": tmp_path}


def _ssh_credential(repo: dict) -> None:
    deploy_key = subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-f", str(repo["tmp"] / "deploy")],
                                capture_output=True)
    assert deploy_key.returncode == 0, deploy_key.stderr
    (repo["tmp"] / "hosts").write_text(HOSTS)
    made = generator(repo["root"], "secrets", "git-credential", "--ssh-key", str(repo["tmp"] / "deploy"),
                     "--known-hosts", str(repo["tmp"] / "hosts"), env=repo["env"])
    assert made.code == 0, made.text
    assert "created   GIT_SSH_KEY" in made.out


def _unseal(doc: dict, private: Path) -> dict:
    done = subprocess.run([str(find("kubeseal")), "--recovery-unseal", "--recovery-private-key", str(private),
                           "--format", "json"], input=yaml.safe_dump(doc).encode(), capture_output=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ssh_without_a_credential_is_refused_with_the_line(repo: dict) -> None:
    result = generator(repo["root"], "render", "--all", env=repo["env"])
    assert result.code == 2, result.text
    assert "sites/one/site.yaml:3: gitops.flux.secretRef: the ssh:// source ssh://git@git.example.com/platform/" \
           "litellm-gitops.git needs a credential and the repository holds none: source-controller answers " \
           "\"invalid 'ssh' auth option: 'identity' is required\"" in result.err
    (repo["root"] / "sites/one/site.yaml").write_text(MINIMAL_SITE)  # Flux: the operator's own Secret
    (repo["root"] / "sites/two/site.yaml").write_text(MINIMAL_SITE + "namespace: llm-two\n")
    result = generator(repo["root"], "render", "--all", env=repo["env"])
    assert result.code == 2 and "sites/one/site.yaml:4: gitops.argocd.repoUrl: the ssh:// source" in result.err
    assert not (repo["root"] / "overlays").exists()


def test_the_sealed_credential_unseals_into_each_engines_secret(repo: dict) -> None:
    _ssh_credential(repo)
    rendered = generator(repo["root"], "render", "--all", env=repo["env"])  # strict validation included
    assert rendered.code == 0, rendered.text
    root = repo["root"]
    flux = yaml.safe_load((root / "deploy/platform/flux/credential.yaml").read_text())
    argo = yaml.safe_load((root / "deploy/platform/argocd/credential.yaml").read_text())
    flux_secret, argo_secret = _unseal(flux, repo["private"]), _unseal(argo, repo["private"])
    assert flux_secret["metadata"]["namespace"] == "flux-system" and set(flux_secret["data"]) == {"identity", "known_hosts"}
    assert "OPENSSH PRIVATE KEY" in __import__("base64").b64decode(flux_secret["data"]["identity"]).decode()
    assert argo_secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert argo_secret["metadata"]["namespace"] == "argocd" and "sshPrivateKey" in argo_secret["data"]
    assert argo["spec"]["template"]["data"] == {"type": "git", "url": "ssh://git@git.example.com/platform/litellm-gitops.git"}
    # the sites' Flux sources read the sealed credential's Secret
    source = yaml.safe_load((root / "deploy/flux/one/source.yaml").read_text())
    assert source["spec"]["secretRef"] == {"name": "litellm-gitops-git"}

    before = fingerprint(root)
    keyless = generator(root, "render", "--all", env={"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent"})
    assert keyless.code == 0, keyless.text
    assert fingerprint(root) == before  # zero churn, no key needed
    shutil.rmtree(root / ".generator")
    one = generator(root, "render", "--site", "one", env={"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent"})
    assert one.code == 0 and fingerprint(root) == before, one.text  # site two, unrecorded, read as its render sees it
    shutil.rmtree(root / ".generator")
    again = generator(root, "render", "--all", env={"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent"})
    assert again.code == 0 and fingerprint(root) == before, again.text  # without the cache too


def test_each_engine_applies_the_platform_before_every_site(repo: dict) -> None:
    _ssh_credential(repo)
    assert generator(repo["root"], "render", "--all", env=repo["env"]).code == 0
    root = repo["root"]
    argo = [d for d in yaml.safe_load_all(kustomize.build(root / "deploy/fleet/argocd")) if d]
    waves = {(d["kind"], d["metadata"]["name"]): int(d["metadata"].get("annotations", {}).get(
        "argocd.argoproj.io/sync-wave", "0")) for d in argo}
    platform = waves[("Application", "litellm-platform")]
    assert platform < min(w for (kind, name), w in waves.items() if kind == "Application" and name != "litellm-platform")
    app = next(d for d in argo if d["metadata"]["name"] == "litellm-platform" and d["kind"] == "Application")
    assert app["spec"]["project"] == "litellm-platform" and app["spec"]["source"]["path"] == "deploy/platform/argocd"
    platform_objects = [d for d in yaml.safe_load_all(kustomize.build(root / "deploy/platform/argocd")) if d]
    kinds = {d["kind"] for d in platform_objects}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "SealedSecret"} <= kinds
    deployment = next(d for d in platform_objects if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/bitnami/sealed-secrets-controller:0.27.1"

    flux = [d for d in yaml.safe_load_all(kustomize.build(root / "deploy/fleet/flux")) if d]
    depends = {d["metadata"]["name"]: {x["name"] for x in d["spec"].get("dependsOn", [])}
               for d in flux if d["kind"] == "Kustomization"}
    assert depends["litellm-platform"] == set()
    assert "litellm-platform" in depends["litellm-one-setup"] and "litellm-platform" in depends["litellm-two-setup"]
    assert "litellm-one" in depends["litellm-two-setup"]  # the waves still hold


def test_install_false_leaves_the_controller_out(repo: dict) -> None:
    _ssh_credential(repo)
    (repo["root"] / "platform.yaml").write_text("sealedSecrets: {install: false}\n")
    assert generator(repo["root"], "render", "--all", env=repo["env"]).code == 0
    assert not (repo["root"] / "deploy/platform/sealed-secrets").exists()
    resources = yaml.safe_load((repo["root"] / "deploy/platform/flux/kustomization.yaml").read_text())["resources"]
    assert resources == ["credential.yaml"]
    assert generator(repo["root"], "validate", "--all", env=repo["env"]).code == 0


def test_external_credential_and_hostile_settings(repo: dict) -> None:
    root = repo["root"]
    (root / "platform.yaml").write_text("gitCredential: external\n")
    assert generator(root, "render", "--all", env=repo["env"]).code == 0
    assert not (root / "deploy/platform/flux/credential.yaml").exists()
    (root / "platform.yaml").write_text("sealedSecrets:\n  instal: false\n")
    result = generator(root, "render", "--all", env=repo["env"])
    assert result.code == 2 and "platform.yaml:2: sealedSecrets.instal: unknown key" in result.err
    assert "did you mean 'install'?" in result.err
    (root / "platform.yaml").write_text("gitCredential: [sealed\n")
    result = generator(root, "render", "--all", env=repo["env"])
    assert result.code == 2 and result.err.startswith("error: platform.yaml:") and "Traceback" not in result.err
