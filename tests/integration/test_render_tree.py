"""Rendering to disk: check mode, no-op re-render, stale file removal, atomic failure, concurrency,
and strict offline validation with the real kubectl (kustomize) and kubeconform."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from tests.helpers import MINIMAL_SITE, PROJECT, build_file_tree, fingerprint, generator


def test_committed_tree_is_current_and_valid() -> None:
    check = generator(PROJECT, "render", "--all", "--check")
    assert check.code == 0, check.text
    assert "up to date" in check.out
    valid = generator(PROJECT, "validate", "--all")
    assert valid.code == 0, valid.text
    # the overlay, two entry points, the root, the fleet layer (Argo CD, Flux) and the Flux fleet entry
    # the overlay, the fleet's entry points (which build every site's) and the platform's
    assert "valid: 8 kustomization(s)" in valid.out


def test_rerender_writes_nothing(repo: Path) -> None:
    before = fingerprint(repo)
    result = generator(repo, "render", "--site", "prod")
    assert result.code == 0, result.text
    assert "nothing to do" in result.out
    assert fingerprint(repo) == before  # same bytes, same inodes, same mtimes


def test_check_prints_a_unified_diff_and_exits_1(repo: Path) -> None:
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text().replace("replicas: 1", "replicas: 1\nui: {username: operator}"))
    before = fingerprint(repo)
    result = generator(repo, "render", "--site", "prod", "--check")
    assert result.code == 1
    assert "--- a/overlays/prod/app/deployment-patch.yaml\n+++ b/overlays/prod/app/deployment-patch.yaml" in result.out
    assert "-              value: admin\n+              value: operator" in result.out
    assert "stale: 1 file(s) differ" in result.out
    assert fingerprint(repo) == before


def test_changed_site_rewrites_only_changed_files(repo: Path) -> None:
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text().replace("replicas: 1", "replicas: 1\nui: {username: operator}"))
    before = fingerprint(repo)
    result = generator(repo, "render", "--site", "prod")
    assert result.code == 0, result.text
    assert "updated   overlays/prod/app/deployment-patch.yaml" in result.out
    after = fingerprint(repo)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"overlays/prod/app/deployment-patch.yaml"}


def test_files_no_longer_produced_are_removed(repo: Path) -> None:
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text().replace("pdb: {enabled: true, maxUnavailable: 1}", "pdb: {enabled: false}"))
    (repo / "overlays/prod/stray.yaml").write_text("kind: Leftover\n")
    result = generator(repo, "render", "--site", "prod")
    assert result.code == 0, result.text
    assert not (repo / "overlays/prod/app/pdb.yaml").exists()
    assert not (repo / "overlays/prod/stray.yaml").exists()
    assert "deleted   overlays/prod/app/pdb.yaml" in result.out


def test_deleted_site_outputs_are_pruned_by_render_all(repo: Path) -> None:
    build_file_tree(repo, {"sites/dev/site.yaml": MINIMAL_SITE + "namespace: litellm-dev\n"})  # prod has litellm
    assert generator(repo, "render", "--all").code == 0
    assert (repo / "overlays/dev/kustomization.yaml").is_file()
    fleet = yaml.safe_load((repo / "deploy/fleet/argocd/kustomization.yaml").read_text())
    assert fleet["resources"] == ["platform.yaml", "project-litellm.yaml", "../../argocd/dev", "../../argocd/prod"]
    shutil.rmtree(repo / "sites/dev")
    result = generator(repo, "render", "--all")
    assert result.code == 0, result.text
    for rel in ("overlays/dev", "deploy/flux/dev", "deploy/argocd/dev"):
        assert not (repo / rel).exists()
    # the parent Application and Kustomization no longer list it: both engines prune the site
    fleet = yaml.safe_load((repo / "deploy/fleet/argocd/kustomization.yaml").read_text())
    assert fleet["resources"] == ["platform.yaml", "project-litellm.yaml", "../../argocd/prod"]
    assert yaml.safe_load((repo / "deploy/fleet/flux/kustomization.yaml").read_text())["resources"] == ["platform.yaml", "../../flux/prod"]
    assert yaml.safe_load((repo / "kustomization.yaml").read_text())["resources"] == ["deploy/fleet/argocd-entry"]


def test_dry_run_lists_changes_and_writes_nothing(repo: Path) -> None:
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text().replace("replicas: 1", "replicas: 1\nui: {username: operator}"))
    before = fingerprint(repo)
    result = generator(repo, "render", "--site", "prod", "--dry-run")
    assert result.code == 0
    assert "would be updated   overlays/prod/app/deployment-patch.yaml" in result.out
    assert fingerprint(repo) == before


def test_read_only_output_leaves_previous_tree(repo: Path) -> None:
    """A read-only checkout (a full disk behaves alike): one clear error, previous tree intact, rerun converges."""
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text().replace("replicas: 1", "replicas: 1\nui: {username: operator}"))
    before = fingerprint(repo)
    (repo / ".generator").mkdir(exist_ok=True)
    # A private mount namespace with overlays/ bind-mounted read-only: root cannot write there either.
    script = (f"mount --bind {repo}/overlays {repo}/overlays && mount -o remount,ro,bind {repo}/overlays && "
              f"exec {sys.executable} -m generator render --site prod")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "is not writable; the previous tree is unchanged" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert fingerprint(repo) == before
    rerun = generator(repo, "render", "--site", "prod")
    assert rerun.code == 0 and "updated   overlays/prod/app/deployment-patch.yaml" in rerun.out


def test_validation_failure_leaves_previous_tree(repo: Path) -> None:
    """Stage, validate, swap: a staged tree that fails kubeconform is never swapped in."""
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text().replace("replicas: 1", "replicas: 1\nui: {username: operator}"))
    before = fingerprint(repo)
    bad_schema_dir = repo.parent / "schemas"
    shutil.copytree(PROJECT / ".tools/schemas", bad_schema_dir)
    (bad_schema_dir / "k8s/deployment-apps-v1.json").unlink()  # Deployment now has no schema: must fail
    result = generator(repo, "render", "--site", "prod", env={"GENERATOR_SCHEMAS": str(bad_schema_dir)})
    assert result.code == 1, result.text
    assert "Deployment/litellm: could not find schema for Deployment" in result.err
    assert fingerprint(repo) == before


def test_two_renders_at_once_do_not_corrupt_the_tree(repo: Path) -> None:
    site = repo / "sites/prod/site.yaml"
    original = site.read_text()
    results = []

    def render(replicas: int) -> None:
        results.append(generator(repo, "render", "--site", "prod", "--no-validate"))

    for round_ in range(3):
        site.write_text(original.replace("replicas: 1", f"replicas: 1\nui: {{username: operator{round_}}}"))
        threads = [threading.Thread(target=render, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert all(r.code == 0 for r in results), [r.text for r in results]
    assert generator(repo, "render", "--site", "prod", "--check").code == 0
    assert not list((repo / ".generator").glob("stage-*"))
    assert generator(repo, "validate", "--site", "prod").code == 0


def test_validate_rejects_unknown_kind_and_misspelled_field(repo: Path) -> None:
    kustomization = repo / "overlays/prod/kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    doc["resources"].append("extra.yaml")
    kustomization.write_text(yaml.safe_dump(doc))

    (repo / "overlays/prod/extra.yaml").write_text("apiVersion: example.com/v1\nkind: Frobnicator\nmetadata:\n  name: x\n")
    result = generator(repo, "validate", "--site", "prod")
    assert result.code == 1
    assert "overlays/prod: Frobnicator/x: could not find schema for Frobnicator" in result.err

    (repo / "overlays/prod/extra.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz:\n    - port: 80\n")
    result = generator(repo, "validate", "--site", "prod")
    assert result.code == 1
    assert "Service/x:" in result.err and "additional properties 'portz' not allowed" in result.err

    (repo / "overlays/prod/extra.yaml").write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: x\n"
        "spec:\n  interval: 1m\n  prune: true\n  prunee: true\n  sourceRef: {kind: GitRepository, name: x}\n")
    result = generator(repo, "validate", "--site", "prod")
    assert result.code == 1 and "additional properties 'prunee' not allowed" in result.err


def test_every_optional_object_validates(bare_repo: Path) -> None:
    build_file_tree(bare_repo, {"sites/stored/site.yaml": MINIMAL_SITE + "namespace: llm-stored\npersistence: {enabled: true, storageClass: fast}\n",
                                "sites/full/site.yaml": MINIMAL_SITE + """\
pdb: {enabled: true}
hpa: {enabled: true, minReplicas: 2, maxReplicas: 5}
redis: {enabled: true}
metrics: {enabled: true, serviceMonitor: {enabled: true}}
callbacks: {langfuse: {}}
networkPolicy: {enabled: true, egress: {enabled: true, external: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]}}
routing:
  type: ingress
  ingress: {tlsSecretName: litellm-tls}
models:
  - {name: gpt-4o, model: openai/gpt-4o, apiKeySecret: OPENAI_API_KEY, rpm: 100}
passThroughEndpoints:
  - path: /langfuse
    target: https://langfuse.example.org
    headers: {Authorization: {secretKey: LANGFUSE_AUTH}}
extraEnv: {LITELLM_LOG: INFO}
image: {digest: "sha256:%s", tag: null}
""" % ("a" * 64)})
    result = generator(bare_repo, "render", "--all")
    assert result.code == 0, result.text
    result = generator(bare_repo, "validate", "--all")
    assert result.code == 0, result.text


def test_doctor_reports_every_pinned_tool() -> None:
    result = generator(PROJECT, "doctor")
    assert result.code == 0, result.text
    for tool in ("kubectl", "kubeconform", "kubeseal", "sops", "schemas"):
        assert any(line.startswith("ok") and f" {tool} " in line for line in result.out.splitlines()), result.out


def test_missing_tool_is_named_with_how_to_install(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = generator(repo, "validate", "--site", "prod",
                       env={"GENERATOR_TOOLS_PATH": str(empty)})
    assert result.code == 1
    assert result.err.startswith("error: kubectl not found: run 'make setup'")
