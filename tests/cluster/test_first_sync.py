"""Issue 14 against a bare control plane: a stock Thinkube has neither the sealed-secrets controller nor its CRD.

The README's "First sync on a stock Thinkube", step by step: doctor names what is missing; the rendered
platform folder applies (CRD, RBAC, Service, Deployment); the real controller then runs (the harness's binary,
as the Deployment would); a site sealed for another certificate is a mismatch; once sealed for the
controller's, and once the platform's sealed git credentials are applied and unsealed into the Secrets
Flux and Argo CD read, doctor is green. Read-only: doctor never changes the cluster.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import site_yaml
from tests.cluster.kube import wait_for
from tests.helpers import build_file_tree, generator
from tests.keys import age_key, sealing_pair

pytestmark = pytest.mark.cluster
URL = "https://git.example.com/platform/litellm-gitops.git"


def _rules(recipient: str) -> str:
    return ("creation_rules:\n  - path_regex: (sites/[^/]+/secrets|platform/git)\\.sops\\.yaml$\n"
            f"    age: {recipient}\n")


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path_factory.mktemp("bare-control-plane"), bare=True) as control_plane:
        yield control_plane


def _doctor(root: Path, cluster: ControlPlane, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    """doctor's verdict per check; the text lines are checked to match the JSON."""
    text = generator(root, "doctor", "--cluster", "--kubeconfig", str(cluster.kubeconfig), env=env)
    result = generator(root, "doctor", "--cluster", "--json", "--kubeconfig", str(cluster.kubeconfig), env=env)
    assert result.code in (0, 1) and text.code == result.code, result.text + text.text
    print(f"$ generator doctor --cluster\n{text.out}")  # pytest -s shows what an operator sees at each step
    checks = json.loads(result.out)
    assert [line.split()[0] for line in text.out.splitlines()[:-1]] == [c["status"] for c in checks]
    return result.code, {c["what"]: c["status"] for c in checks}


def test_first_sync_on_a_stock_thinkube(bare: ControlPlane, tmp_path: Path) -> None:
    root, key = tmp_path / "repo", age_key()
    build_file_tree(root, {"sites/first/site.yaml": site_yaml("first", URL), ".sops.yaml": _rules(key.recipient),
                           "platform.yaml": "gitCredential: sealed\n"})
    other_cert, _ = sealing_pair(tmp_path / "elsewhere")  # a certificate from another cluster
    shutil.copy(other_cert, root / "sites/first/sealing-cert.pem")
    env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent"}
    for args, stdin in ((("secrets", "init", "--site", "first"), None),
                        (("secrets", "git-credential", "--token-stdin", "--username", "flux"), "a-gitea-token"),
                        (("render", "--all"), None)):
        done = generator(root, *args, stdin=stdin, env=env)
        assert done.code == 0, done.text

    # 1. a stock cluster: no SealedSecret kind, no controller
    code, lines = _doctor(root, bare, env)
    assert code == 1
    assert lines["kind SealedSecret (bitnami.com/v1alpha1)"] == "missing"
    assert lines["sealed-secrets controller (kube-system/sealed-secrets-controller)"] == "missing"
    assert bare.kubectl.run("get", "crd", "sealedsecrets.bitnami.com").returncode != 0  # doctor changed nothing

    # 2. the platform folder applies as rendered, then the controller runs (here: the harness's real binary)
    bare.kubectl("apply", "--server-side", "-k", str(root / "deploy/platform/sealed-secrets"))
    bare.kubectl("wait", "--for=condition=Established", "crd/sealedsecrets.bitnami.com", "--timeout=60s")
    bare.kubectl("-n", "kube-system", "wait", "--for=condition=Available", "deployment/sealed-secrets-controller",
                 "--timeout=120s")
    bare.start_sealed_secrets()
    code, lines = _doctor(root, bare, env)
    assert lines["kind SealedSecret (bitnami.com/v1alpha1)"] == "ok"
    assert lines["sealed-secrets controller (kube-system/sealed-secrets-controller)"] == "ok"
    # 3. the site was sealed for another cluster's certificate: every SealedSecret would fail
    assert lines["site first: sites/first/sealing-cert.pem against the controller's keys"] == "mismatch" and code == 1

    # 4. sealed for this controller; the platform's credentials applied and unsealed into each engine's Secret
    (root / "sites/first/sealing-cert.pem").write_bytes(bare.sealing_cert())
    done = generator(root, "render", "--all", env=env)
    assert done.code == 0, done.text
    for engine in ("flux", "argocd"):
        bare.kubectl("apply", "--server-side", "-k", str(root / f"deploy/platform/{engine}"))
    flux = wait_for(lambda: _secret(bare, "flux-system", "litellm-gitops-git"), 60, "Flux's git Secret unsealed")
    assert _plain(flux) == {"username": "flux", "password": "a-gitea-token"}
    argo = wait_for(lambda: _secret(bare, "argocd", "litellm-gitops-repo"), 60, "Argo CD's repository Secret unsealed")
    assert argo["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert _plain(argo) == {"type": "git", "url": URL, "username": "flux", "password": "a-gitea-token"}

    # 5. what Thinkube's core provides anyway: the gateway, the Envoy proxies' namespace
    platform = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                for ns in ("gateway-system", "envoy-gateway-system")]
    platform.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                     "metadata": {"name": "thinkube-gateway", "namespace": "gateway-system"},
                     "spec": {"gatewayClassName": "envoy", "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS"}]}})
    bare.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(platform))
    code, lines = _doctor(root, bare, env)
    assert code == 0, lines
    assert lines["site first: sites/first/sealing-cert.pem against the controller's keys"] == "ok"


def _secret(cluster: ControlPlane, namespace: str, name: str) -> dict | None:
    done = cluster.kubectl.run("-n", namespace, "get", "secret", name, "-o", "yaml")
    return yaml.safe_load(done.stdout) if done.returncode == 0 else None


def _plain(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
