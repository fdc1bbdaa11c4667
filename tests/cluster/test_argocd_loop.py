"""The GitOps loop through Argo CD's real controllers, on the same control plane as Flux's: the fleet registered
with the README's one command, the platform Application, each site's waves (namespace and SealedSecret, the
migration Job as a Sync hook, then the app), a second commit, a prune, a site removed, the platform's scaling.

Two sites of different shape go through it; a site file named by $GENERATOR_CLUSTER_SITE goes through it as a
third (Argo CD alone, its namespace suffixed ``-argocd`` so that it does not meet the Flux loop's copy).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.cluster.argocd import FIELD_MANAGER, NAMESPACE
from tests.cluster.argocd_loop import (REFRESH, app_status, application, argocd_site_yaml, explain_app, refresh,
                                       register_fleet, synced_at, wait_synced)
from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import CONVERGE_SECONDS, GitOpsRepo, held_out_site
from tests.cluster.gitserver import GitServer
from tests.cluster.kube import condition, wait_for
from tests.helpers import generator

pytestmark = pytest.mark.cluster

SITES = {
    # wave 0: HTTPRoute, platform scaling (no replicas in git), a PDB and a NetworkPolicy
    "gamma": "pdb: {enabled: true, maxUnavailable: 1}\nnetworkPolicy: {enabled: true}\n",
    # wave 1: an Ingress, replicas pinned in git, a named priority class, Redis
    "delta": ("routing: {type: ingress}\ndiscovery: {platformScaling: false}\nreplicas: 2\n"
              "priorityClassName: thinkube-platform\nredis: {enabled: true}\nrollout: {wave: 1}\n"),
}


@pytest.fixture(scope="module")
def loop(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("argocd")
    (work / "served").mkdir()
    api = cluster.api
    with GitServer(work / "served") as server:
        # a stock Thinkube: the platform Application installs the sealed-secrets controller (its pod is KWOK's;
        # the harness's controller process does its work, as in test_first_sync)
        repo = GitOpsRepo(work, server, cluster, cluster.sealing_cert(), platform="{}\n")
        sites = {name: argocd_site_yaml(name, repo.url, extra) for name, extra in SITES.items()}
        held = held_out_site("argocd", repo.url)
        if held:
            sites[held[0]] = held[1]
        for name, text in sites.items():
            repo.add_site(name, text)
        repo.render()
        revision = repo.commit("sites for Argo CD")
        # a cluster where no fleet is registered yet: test_apply.py leaves the committed tree's Applications
        # (litellm-fleet, litellm-platform, litellm-prod; their git server is unreachable, so never synced)
        cluster.kubectl("-n", NAMESPACE, "delete", "applications", "--all", "--wait=true", timeout=120)
        t0 = time.monotonic()
        register_fleet(repo)
        # The parent's sync walks its waves and ends while gamma (wave 0) cannot be Healthy yet: no Gateway
        # controller has accepted its HTTPRoute (publish_routes, in wait_synced, does that later).
        parent = wait_for(lambda: (lambda app: app if app_status(app)[2] == "Succeeded" else None)(
            application(cluster, "litellm-fleet")), CONVERGE_SECONDS, "the fleet's sync finished",
            lambda: explain_app(cluster, "litellm-fleet"))
        early = {name: application(cluster, f"litellm-{name}") for name in SITES}
        t1 = time.monotonic()
        platform = wait_for(lambda: (lambda app: app if synced_at(app, revision) else None)(
            application(cluster, "litellm-platform")), CONVERGE_SECONDS, "litellm-platform Synced and Healthy",
            lambda: explain_app(cluster, "litellm-platform"))
        namespaces = {name: yaml.safe_load(text).get("namespace", "litellm") for name, text in sites.items()}
        state = {name: wait_synced(cluster, name, namespaces[name], revision) for name in sites}
        print(f"the fleet's sync ended {t1 - t0:.1f} s after `kubectl apply -k .`; every site Synced and Healthy "
              f"{time.monotonic() - t0:.1f} s after it")
        yield {"repo": repo, "server": server, "revision": revision, "state": state, "namespaces": namespaces,
               "parent": parent, "early": early, "platform": platform, "api": api}


def _created(app: dict) -> str:
    return app["metadata"]["creationTimestamp"]


def test_the_fleet_is_registered_with_one_command_and_the_platform_goes_first(cluster: ControlPlane,
                                                                               loop: dict) -> None:
    platform = loop["platform"]
    # the operation ends before the parent compares itself again: Synced follows
    parent = wait_for(lambda: (lambda app: app if synced_at(app, loop["revision"]) else None)(
        application(cluster, "litellm-fleet")), 60, "litellm-fleet Synced", lambda: explain_app(cluster, "litellm-fleet"))
    owned = {(r["kind"], r["name"]) for r in parent["status"]["resources"]}
    assert {("AppProject", "litellm"), ("AppProject", "litellm-platform"), ("Application", "litellm-platform"),
            ("Application", "litellm-gamma"), ("Application", "litellm-delta")} <= owned, owned
    # the platform Application installed the sealed-secrets controller (Argo CD v3 keeps each resource's health
    # out of the Application's status; the Application's own health covers them)
    kinds = {(r["kind"], r["name"]) for r in platform["status"]["resources"]}
    assert {("Deployment", "sealed-secrets-controller"), ("CustomResourceDefinition", "sealedsecrets.bitnami.com"),
            ("ClusterRole", "secrets-unsealer")} <= kinds, kinds
    controller = cluster.api.get("Deployment", "sealed-secrets-controller", "kube-system")
    assert condition(controller, "Available")["status"] == "True", controller.get("status")
    # wave -1 before wave 0 before wave 1: Argo CD waits 2 s between waves, so the seconds differ
    for name in loop["state"]:
        assert _created(platform) < _created(loop["state"][name].app), name
    assert _created(loop["state"]["gamma"].app) < _created(loop["state"]["delta"].app)


def test_each_site_syncs_in_waves_and_ends_healthy(cluster: ControlPlane, loop: dict) -> None:
    for name, state in loop["state"].items():
        results = {(r["kind"], r["name"]): r for r in state.app["status"]["operationState"]["syncResult"]["resources"]}
        # the migration Job ran as a Sync hook, to completion, before wave 0 created the Deployment. The last
        # operation may be a self-heal of the HTTPRoute the first one created last (Argo CD compared before its
        # watch had seen the new object, found it missing and applied it again), which runs no hook.
        assert state.job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
        hook = results.get(("Job", "litellm-migrate"))
        assert hook is None or (hook.get("hookType"), hook.get("hookPhase"), hook["syncPhase"]) == (
            "Sync", "Succeeded", "Sync"), hook
        assert condition(state.job, "Complete")["status"] == "True", state.job.get("status")
        assert state.job["status"]["completionTime"] <= state.deployment["metadata"]["creationTimestamp"]
        # wave -2 (namespace, SealedSecret) before the hook (wave -1): Argo CD waited for the SealedSecret's
        # health (the controller unsealed it) before it created the Job
        unsealed = cluster.api.get("Secret", "litellm-secrets", loop["namespaces"][name])
        assert unsealed["metadata"]["creationTimestamp"] <= state.job["metadata"]["creationTimestamp"]
        assert all(r["status"] == "Synced" for key, r in results.items() if key[0] != "Job"), results
        available = condition(state.deployment, "Available")
        assert available and available["status"] == "True", state.deployment.get("status")
        assert state.pods and all(p["status"]["phase"] == "Running" for p in state.pods), state.pods
        assert state.namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_secret_is_unsealed_with_the_sops_values(loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    for name, state in loop["state"].items():
        assert state.secret == repo.sops_values(name), name


def test_the_waves_order_creation_only(loop: dict) -> None:
    """Argo CD has no health check for Application objects (argocd-cm defines none by default): the fleet's
    sync ended with every site's Application created while the wave-0 site had not finished its own sync (its
    operation still running, or its HTTPRoute not yet accepted, so Progressing)."""
    early = loop["early"]
    assert all(app is not None for app in early.values()), early
    assert not synced_at(early["gamma"], loop["revision"]), app_status(early["gamma"])
    finished = loop["parent"]["status"]["operationState"]["finishedAt"]
    assert _created(early["delta"]) <= finished  # wave 1 created and the parent done before wave 0 was


def test_diff_is_empty_after_the_sync_under_argocds_field_manager(cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    for name in loop["state"]:
        same = generator(repo.root, "diff", "--site", name, "--kubeconfig", str(cluster.kubeconfig), env=repo.env)
        assert same.code == 0, same.text
        explicit = generator(repo.root, "diff", "--site", name, "--field-manager", FIELD_MANAGER,
                             "--kubeconfig", str(cluster.kubeconfig), env=repo.env)
        assert explicit.code == 0, explicit.text


def test_the_platform_scaling_holds_a_second_commit_is_picked_up_and_a_removed_object_is_pruned(
        cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    api, namespace = cluster.api, loop["namespaces"]["gamma"]
    # thinkube-control's scaling button: spec.replicas is ignored (ignoreDifferences + RespectIgnoreDifferences)
    cluster.kubectl("-n", namespace, "scale", "deployment/litellm", "--replicas=3")
    refresh(cluster, "litellm-gamma")  # the controller removes the annotation once it has compared again
    wait_for(lambda: (lambda app: app_status(app)[0] == "Synced" and REFRESH not in app["metadata"].get("annotations", {}))(
        application(cluster, "litellm-gamma")), 60, "gamma compared again after the scaling, and Synced",
        lambda: explain_app(cluster, "litellm-gamma"))
    assert api.get("Deployment", "litellm", namespace)["spec"]["replicas"] == 3, "self-heal left the scaling alone"

    repo.gen("secrets", "set", "--site", "gamma", "CLIENT_SECRET", stdin="client-secret-rotated-9876543210")
    site = repo.root / "sites/gamma/site.yaml"
    site.write_text(site.read_text().replace("pdb: {enabled: true, maxUnavailable: 1}\n", "")
                    + "resources:\n  requests: {cpu: 150m, memory: 600Mi}\n")
    repo.render()
    revision = repo.commit("rotate CLIENT_SECRET, more memory, no PDB")
    refresh(cluster, "litellm-gamma")
    state = wait_synced(cluster, "gamma", namespace, revision)
    wanted = repo.sops_values("gamma")
    secret = wait_for(lambda: (lambda now: now if now == wanted else None)(
        wait_synced(cluster, "gamma", namespace, revision).secret), 60, "the Secret updated from the new commit")
    assert secret["CLIENT_SECRET"] == "client-secret-rotated-9876543210"
    container = state.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["memory"] == "600Mi"
    wait_for(lambda: api.get("PodDisruptionBudget", "litellm", namespace) is None, 60, "the PDB pruned",
             lambda: explain_app(cluster, "litellm-gamma"))
    assert api.get("NetworkPolicy", "litellm", namespace) is not None, "only the removed object goes"
    deployment = wait_for(lambda: (lambda d: d if condition(d, "Available")["status"] == "True" and
                                   d["status"].get("readyReplicas") == 3 else None)(
        api.get("Deployment", "litellm", namespace)), 120, "gamma's 3 replicas Available")
    assert deployment["spec"]["replicas"] == 3, "the platform's scaling survived the sync of a new commit"
    assert generator(repo.root, "diff", "--site", "gamma", "--kubeconfig", str(cluster.kubeconfig),
                     env=repo.env).code == 0


def test_a_site_removed_from_git_is_pruned_with_its_objects(cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]
    api, namespace = cluster.api, loop["namespaces"]["delta"]
    assert api.get("Deployment", "litellm", namespace) is not None
    repo.gen("site", "remove", "delta", "--yes")
    revision = repo.commit("remove site delta")
    refresh(cluster, "litellm-fleet")
    wait_for(lambda: application(cluster, "litellm-delta") is None, CONVERGE_SECONDS,
             "Application litellm-delta pruned by the fleet and deleted by its finalizer",
             lambda: explain_app(cluster, "litellm-fleet") + explain_app(cluster, "litellm-delta"))
    # the resources finalizer (foreground) deleted the site's objects before the Application went
    assert api.get("Deployment", "litellm", namespace) is None
    assert api.get("SealedSecret", "litellm-secrets", namespace) is None
    wait_for(lambda: api.get("Namespace", namespace) is None, CONVERGE_SECONDS, f"namespace {namespace} deleted")
    assert api.get("Deployment", "litellm", loop["namespaces"]["gamma"]) is not None, "the other site stays"
    wait_for(lambda: synced_at(application(cluster, "litellm-fleet"), revision), CONVERGE_SECONDS,
             "the fleet at the new revision", lambda: explain_app(cluster, "litellm-fleet"))



# For a platform owner who wants the fleet's waves to wait: a health check for Application objects in argocd-cm.
# Argo CD's documented one (docs/operator-manual/health.md, "Argocd App") passes the child's health through,
# and a v3.6 Application reports Healthy at its first comparison, before its own sync has created most of its
# objects: the loop saw the next wave's Application created while the child's sync was still running. This
# one waits for the child's sync to have finished and the child to be Synced, then passes its health through.
APPLICATION_HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
APPLICATION_HEALTH = """hs = {status = "Progressing", message = "waiting for the Application's sync to finish"}
if obj.status ~= nil and obj.status.health ~= nil and obj.status.sync ~= nil and obj.status.operationState ~= nil then
  if obj.status.sync.status == "Synced" and obj.status.operationState.phase == "Succeeded" then
    hs.status = obj.status.health.status
    hs.message = obj.status.health.message or ""
  end
end
return hs
"""


def test_with_a_health_check_for_applications_in_argocd_cm_the_waves_wait(cluster: ControlPlane, loop: dict) -> None:
    repo: GitOpsRepo = loop["repo"]

    def health_check(lua: str | None) -> None:
        cluster.kubectl("-n", NAMESPACE, "patch", "configmap", "argocd-cm", "--type=merge",
                        "-p", json.dumps({"data": {APPLICATION_HEALTH_KEY: lua}}))

    health_check(APPLICATION_HEALTH)
    try:
        for name, wave in (("zeta", 2), ("eta", 3)):
            repo.add_site(name, argocd_site_yaml(name, repo.url, f"rollout: {{wave: {wave}}}\n"))
        repo.render()
        revision = repo.commit("zeta in wave 2, eta in wave 3")
        refresh(cluster, "litellm-fleet")

        def parent_waits_on_zeta() -> dict | None:  # zeta's sync done, its HTTPRoute not accepted yet
            parent, zeta = application(cluster, "litellm-fleet"), application(cluster, "litellm-zeta")
            operation = ((parent or {}).get("status") or {}).get("operationState") or {}
            waiting = operation.get("phase") == "Running" and "argoproj.io/Application/litellm-zeta" in (
                operation.get("message") or "")
            zeta_done = app_status(zeta)[0] == "Synced" and app_status(zeta)[2] == "Succeeded"
            return parent if waiting and zeta_done else None

        parent = wait_for(parent_waits_on_zeta, CONVERGE_SECONDS, "the fleet waiting on zeta (wave 2), its sync done",
                          lambda: explain_app(cluster, "litellm-fleet") + explain_app(cluster, "litellm-zeta"))
        assert app_status(application(cluster, "litellm-zeta"))[1] == "Progressing"
        assert application(cluster, "litellm-eta") is None, "wave 3 waits"
        zeta = wait_synced(cluster, "zeta", "litellm-zeta", revision)  # the Gateway controller accepts the route
        eta = wait_synced(cluster, "eta", "litellm-eta", revision)
        assert _created(eta.app) >= zeta.app["status"]["health"]["lastTransitionTime"], parent["status"]
    finally:
        health_check(None)
