"""The GitOps loop on a real control plane: Flux fetches the commit over smart HTTP, applies each site's three
stages in order, the sealed-secrets controller unseals the Secret, and the Deployment goes Available.

Two sites of different shape go through it; a site file named by $GENERATOR_CLUSTER_SITE (any site, its
gitops URLs pointed at the local git server) goes through the same loop as a third, in its own rollout wave:
the order the waves must apply in is read from the sites' files, whatever waves they name.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import (CONVERGE_SECONDS, GitOpsRepo, held_out_site, site_yaml, stage_names,
                                  wait_converged)
from tests.cluster.gitserver import GitServer
from tests.cluster.kube import condition, wait_for
from tests.helpers import generator

pytestmark = pytest.mark.cluster

SITES = {
    # the defaults of a Thinkube site: HTTPRoute, discovery with platform scaling, plus a PDB and a NetworkPolicy
    "alpha": "pdb: {enabled: true, maxUnavailable: 1}\nnetworkPolicy: {enabled: true}\n",
    # the other shapes: an Ingress, replicas pinned in git, a priority class named explicitly, an HPA
    "beta": ("routing: {type: ingress}\ndiscovery: {platformScaling: false}\nreplicas: 2\n"
             "priorityClassName: thinkube-platform\nhpa: {enabled: true, minReplicas: 2, maxReplicas: 4}\n"
             "redis: {enabled: true}\nrollout: {wave: 1}\n"),
}


def _wave(site_file: Path) -> int:
    """The site's rollout wave as its file says (the schema's default, 0, when it says none)."""
    return ((yaml.safe_load(site_file.read_text()) or {}).get("rollout") or {}).get("wave", 0)


def _wave_before(waves: dict[str, int], wave: int) -> list[str]:
    """The sites a site of ``wave`` waits for: every site of the nearest lower wave (none for the first)."""
    lower = {w for w in waves.values() if w < wave}
    return sorted(name for name, w in waves.items() if lower and w == max(lower))


@pytest.fixture(scope="module")
def loop(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("gitops")
    (work / "served").mkdir()
    with GitServer(work / "served") as server:
        repo = GitOpsRepo(work, server, cluster, cluster.sealing_cert())
        sites = {name: site_yaml(name, repo.url, extra) for name, extra in SITES.items()}
        held = held_out_site("flux", repo.url)
        if held:
            sites[held[0]] = held[1]
        t0 = time.monotonic()
        for name, text in sites.items():
            repo.add_site(name, text)
        t1 = time.monotonic()
        repo.render()
        revision = repo.commit("two sites")
        t2 = time.monotonic()
        repo.apply_fleet()  # one command registers the fleet: the parent applies every site, in waves
        namespaces = {name: yaml.safe_load(text).get("namespace", "litellm") for name, text in sites.items()}
        state = {name: wait_converged(cluster, name, namespaces[name], revision) for name in sites}
        print(f"sites made in {t1 - t0:.1f} s, rendered, validated and committed in {t2 - t1:.1f} s; "
              f"every site converged {time.monotonic() - t2:.1f} s after the fleet's entry point was applied")
        waves = {name: _wave(repo.root / f"sites/{name}/site.yaml") for name in sites}  # as committed
        yield {"repo": repo, "server": server, "revision": revision, "state": state, "namespaces": namespaces,
               "waves": waves}


def test_flux_fetches_the_commit_over_smart_http(loop: dict) -> None:
    for name, state in loop["state"].items():
        assert loop["revision"] in state.source["status"]["artifact"]["revision"], name
        assert condition(state.source)["status"] == "True"
    assert any("git-upload-pack" in line for line in loop["server"].requests), loop["server"].requests[:5]


def test_each_stage_applies_in_order_and_ends_healthy(loop: dict) -> None:
    for name, state in loop["state"].items():
        for ks_name, ks in state.stages.items():
            assert condition(ks)["status"] == "True", (ks_name, condition(ks))
        app = state.stages[f"litellm-{name}"]
        assert condition(app, "Healthy")["status"] == "True", condition(app, "Healthy")
        migrate = state.stages[f"litellm-{name}-migrate"]
        assert condition(migrate, "Healthy")["status"] == "True", condition(migrate, "Healthy")
        # the migration Job ran to completion before the app stage created the Deployment
        assert condition(state.job, "Complete")["status"] == "True", state.job.get("status")
        assert state.job["status"]["completionTime"] <= state.deployment["metadata"]["creationTimestamp"]
        available = condition(state.deployment, "Available")
        assert available and available["status"] == "True", state.deployment.get("status")


def test_the_secret_is_unsealed_with_the_sops_values(loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    for name, state in loop["state"].items():
        assert state.secret == repo.sops_values(name), name
        assert set(state.secret) >= {"LITELLM_MASTER_KEY", "DATABASE_URL", "CLIENT_SECRET"}


def test_pod_security_restricted_is_enforced_and_the_pods_are_admitted(cluster: ControlPlane, loop: dict) -> None:
    for name, state in loop["state"].items():
        namespace = loop["namespaces"][name]
        assert state.namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert state.pods and all(p["status"]["phase"] == "Running" for p in state.pods), state.pods
        # enforcement is live: a pod that breaks `restricted` is refused in the same namespace
        bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace},
               "spec": {"containers": [{"name": "c", "image": "registry.example.com/x:1"}]}}
        refused = cluster.kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(bad))
        assert refused.returncode != 0 and b'violates PodSecurity "restricted' in refused.stderr, refused.stderr


def test_pods_get_the_platform_priority(loop: dict) -> None:
    """No priorityClassName by default: the pods take Thinkube's cluster default (thinkube-workload)."""
    alpha = loop["state"]["alpha"].pods[0]["spec"]
    assert (alpha.get("priorityClassName"), alpha.get("priority")) == ("thinkube-workload", 10_000)
    beta = loop["state"]["beta"].pods[0]["spec"]
    assert (beta.get("priorityClassName"), beta.get("priority")) == ("thinkube-platform", 100_000)


def test_diff_is_empty_after_the_sync_and_shows_a_local_change(cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    same = generator(repo.root, "diff", "--site", "alpha", "--kubeconfig", str(cluster.kubeconfig), env=repo.env)
    assert same.code == 0, same.text
    site = repo.root / "sites/alpha/site.yaml"
    original = site.read_text()
    try:
        site.write_text(original + "resources:\n  requests: {cpu: 250m, memory: 640Mi}\n")
        repo.gen("render", "--site", "alpha")
        changed = generator(repo.root, "diff", "--site", "alpha", "--kubeconfig", str(cluster.kubeconfig), env=repo.env)
        assert changed.code == 1, changed.text
        assert "+          memory: 640Mi" in changed.out or "memory: 640Mi" in changed.out, changed.out
        assert "Job litellm-alpha/litellm-migrate" in changed.out, changed.out  # immutable: Flux replaces it
    finally:
        site.write_text(original)
        repo.gen("render", "--site", "alpha")
    assert generator(repo.root, "diff", "--site", "alpha", "--kubeconfig", str(cluster.kubeconfig),
                     env=repo.env).code == 0


def test_diff_reports_an_unreachable_cluster_as_an_error(cluster: ControlPlane, loop: dict, tmp_path: Path) -> None:
    repo: GitOpsRepo = loop["repo"]
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    result = generator(repo.root, "diff", "--site", "alpha", "--kubeconfig", str(broken), env=repo.env)
    assert result.code == 3 and result.err.startswith("error: ") and result.err.count("\n") == 1, result.text


def test_a_second_commit_is_picked_up_and_a_removed_object_is_pruned(cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    api = cluster.api
    before = repo.sealed("alpha")["spec"]["encryptedData"]
    repo.gen("secrets", "set", "--site", "alpha", "CLIENT_SECRET", stdin="client-secret-rotated-9876543210")
    site = repo.root / "sites/alpha/site.yaml"
    site.write_text(site.read_text().replace("pdb: {enabled: true, maxUnavailable: 1}\n", "")
                    + "resources:\n  requests: {cpu: 150m, memory: 600Mi}\n")
    repo.render()
    after = repo.sealed("alpha")["spec"]["encryptedData"]
    assert {k for k in after if after[k] != before.get(k)} == {"CLIENT_SECRET"}, "only that key is resealed"
    assert set(after) == set(before)
    assert api.get("PodDisruptionBudget", "litellm", "litellm-alpha") is not None
    diff = generator(repo.root, "diff", "--site", "alpha", "--kubeconfig", str(cluster.kubeconfig), env=repo.env)
    assert diff.code == 1 and "PodDisruptionBudget litellm-alpha/litellm: Flux would prune it" in diff.out, diff.text

    revision = repo.commit("rotate CLIENT_SECRET, more memory, no PDB")
    repo.reconcile_now("alpha")
    state = wait_converged(cluster, "alpha", "litellm-alpha", revision)
    wanted = repo.sops_values("alpha")
    secret = wait_for(lambda: (lambda now: now if now == wanted else None)(
        wait_converged(cluster, "alpha", "litellm-alpha", revision).secret), 60, "the Secret updated from the new commit")
    assert secret["CLIENT_SECRET"] == "client-secret-rotated-9876543210"
    container = state.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["memory"] == "600Mi"
    wait_for(lambda: api.get("PodDisruptionBudget", "litellm", "litellm-alpha") is None, 60, "the PDB pruned")
    assert api.get("NetworkPolicy", "litellm", "litellm-alpha") is not None, "only the removed object goes"
    available = condition(api.get("Deployment", "litellm", "litellm-alpha"), "Available")
    assert available["status"] == "True"
    for ks in stage_names("alpha"):
        assert revision in api.get("Kustomization", ks, "flux-system")["status"]["lastAppliedRevision"]


def test_the_committed_history_holds_no_plaintext(loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    log = subprocess.run(["git", "log", "-p", "--all"], cwd=repo.root, capture_output=True, text=True, check=True).stdout
    for name in loop["state"]:
        for key, value in repo.sops_values(name).items():
            assert value not in log, f"{name}/{key} in plaintext in git history"


def test_the_waves_apply_in_order(cluster: ControlPlane, loop: dict) -> None:
    """Each site starts once every site of the wave before is healthy: its first stage depends on their app
    stages (alpha, wave 0, on none; beta, wave 1, on alpha; a held-out site by the wave its file names)."""
    api = cluster.api
    waves: dict[str, int] = loop["waves"]
    assert waves["alpha"] == 0 and waves["beta"] == 1, waves  # at least two waves: an order to check
    for name, wave in sorted(waves.items()):
        before = _wave_before(waves, wave)
        setup = api.get("Kustomization", f"litellm-{name}-setup", "flux-system")["spec"]
        depends = sorted(setup.get("dependsOn", []), key=lambda d: d["name"])
        assert depends == [{"name": f"litellm-{b}"} for b in before], (name, wave, waves, setup)
        # as the first sync left them (later tests reconcile alpha again)
        started = condition(loop["state"][name].stages[f"litellm-{name}-setup"])["lastTransitionTime"]
        for b in before:
            ready = condition(loop["state"][b].stages[f"litellm-{b}"])["lastTransitionTime"]
            assert started >= ready, f"{name} (wave {wave}) ready at {started}, before {b} (wave {waves[b]}) at {ready}"
    # the fleet's parent owns the sites' entry points
    parent = api.get("Kustomization", "litellm-fleet", "flux-system")
    assert condition(parent)["status"] == "True", condition(parent)
    inventory = {entry["id"] for entry in parent["status"]["inventory"]["entries"]}
    for name in waves:
        assert f"flux-system_litellm-{name}-setup_kustomize.toolkit.fluxcd.io_Kustomization" in inventory, inventory


def test_a_site_removed_from_git_is_pruned_from_the_cluster(cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    api = cluster.api
    namespace = loop["namespaces"]["beta"]
    assert api.get("Deployment", "litellm", namespace) is not None
    repo.gen("site", "remove", "beta", "--yes")
    revision = repo.commit("remove site beta")
    repo.reconcile_now("fleet")
    for ks in stage_names("beta"):
        wait_for(lambda ks=ks: api.get("Kustomization", ks, "flux-system") is None, CONVERGE_SECONDS,
                 f"Kustomization {ks} pruned by the fleet", lambda: cluster.logs("kustomize-controller", 3000))
    # deleting a Kustomization that prunes deletes what it applied: the site's objects go with it
    wait_for(lambda: api.get("Deployment", "litellm", namespace) is None, CONVERGE_SECONDS, "beta's Deployment deleted",
             lambda: cluster.logs("kustomize-controller", 3000))
    assert api.get("GitRepository", "litellm-beta", "flux-system") is None
    assert api.get("Deployment", "litellm", loop["namespaces"]["alpha"]) is not None, "the other site stays"
    parent = api.get("Kustomization", "litellm-fleet", "flux-system")
    assert revision in parent["status"]["lastAppliedRevision"]
