"""Issue 27 on two real control planes: one repository, three sites on two clusters, each cluster's own Flux.

Cluster ``one`` is the session's control plane; cluster ``two`` is started here (its own etcd, API server,
controllers, KWOK node, sealed-secrets controller and Flux, no Argo CD) and stopped at the end. Each cluster's Flux
is registered with that cluster's one command (``kubectl apply -k deploy/clusters/<name>/flux-entry``) and
converges its own sites only, with its own platform layer: ``two`` installs the sealed-secrets controller from the
tree (its CRD and Deployment, Ready before any site starts), ``one`` says another team runs it (the harness's).
A site moved from ``one`` to ``two`` (its secret resealed for ``two``'s controller) is pruned from ``one`` and
created on ``two``; a change that would put two sites into one namespace of one cluster is refused by render,
so nothing reaches git or either cluster.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import CONVERGE_SECONDS, GitOpsRepo, site_yaml, stage_names, wait_converged
from tests.cluster.gitserver import GitServer
from tests.cluster.kube import condition, wait_for
from tests.helpers import generator

pytestmark = pytest.mark.cluster

PLATFORM = """\
clusters:
  one:
    sealedSecrets: {install: false}
  two: {}
"""
PLACED = {"uno": "one", "mover": "one", "dos": "two"}  # names no other cluster test uses on the session's cluster


def _site(name: str, url: str, cluster: str, wave: int = 0) -> str:
    return site_yaml(name, url, f"cluster: {cluster}\nrollout: {{wave: {wave}}}\n")


def _register(repo: GitOpsRepo, cluster: ControlPlane, name: str) -> None:
    """The one command that registers one cluster's fleet with its own Flux."""
    cluster.kubectl("apply", "--server-side", "--validate=strict", "-k",
                    str(repo.root / f"deploy/clusters/{name}/flux-entry"))


def _reconcile_fleet(cluster: ControlPlane) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    cluster.kubectl("-n", "flux-system", "annotate", "--overwrite", "gitrepository/litellm-fleet",
                    f"reconcile.fluxcd.io/requestedAt={stamp}")


def _kustomizations(cluster: ControlPlane) -> set[str]:
    return {k["metadata"]["name"] for k in cluster.api.list("Kustomization", "flux-system")}


def _fleet_applied(cluster: ControlPlane, revision: str) -> dict | None:
    parent = cluster.api.get("Kustomization", "litellm-fleet", "flux-system")
    ready = (condition(parent) or {}).get("status") == "True"
    return parent if ready and revision in ((parent or {}).get("status") or {}).get("lastAppliedRevision", "") else None


@pytest.fixture(scope="module")
def fleet(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("clusters")
    (work / "served").mkdir()
    started = time.monotonic()
    with ControlPlane(tmp_path_factory.mktemp("control-plane-two"), argocd=False) as two, \
            GitServer(work / "served") as server:
        print(f"cluster two up in {time.monotonic() - started:.1f} s")
        clusters = {"one": cluster, "two": two}
        repo = GitOpsRepo(work, server, cluster, cluster.sealing_cert(), platform=PLATFORM)
        certs = {"one": repo.cert, "two": work / "two-cert.pem"}
        certs["two"].write_bytes(two.sealing_cert())
        for wave, (name, where) in enumerate(PLACED.items()):
            repo.add_site(name, _site(name, repo.url, where, wave % 2), cert=certs[where])
        repo.render()
        revision = repo.commit("three sites on two clusters")
        t0 = time.monotonic()
        for name, control_plane in clusters.items():
            _register(repo, control_plane, name)
        state = {name: wait_converged(clusters[where], name, f"litellm-{name}", revision)
                 for name, where in PLACED.items()}
        print(f"three sites on two clusters converged {time.monotonic() - t0:.1f} s after the two entries were applied")
        try:
            yield {"repo": repo, "clusters": clusters, "certs": certs, "revision": revision, "state": state}
        finally:
            # the session's cluster goes back as it was: the fleet's parent prunes what it applied
            cluster.kubectl("-n", "flux-system", "delete", "kustomization/litellm-fleet", "gitrepository/litellm-fleet",
                            "--ignore-not-found", "--wait=false")
            wait_for(lambda: not ({"litellm-fleet", *(s for n in PLACED for s in stage_names(n))}
                                  & _kustomizations(cluster)), CONVERGE_SECONDS, "cluster one's fleet removed")


def test_each_cluster_converges_only_its_own_sites(fleet: dict) -> None:
    clusters: dict[str, ControlPlane] = fleet["clusters"]
    repo: GitOpsRepo = fleet["repo"]
    for name, where in PLACED.items():
        state = fleet["state"][name]
        assert condition(state.deployment, "Available")["status"] == "True", (name, state.deployment.get("status"))
        assert state.secret == repo.sops_values(name), f"{name}: unsealed by cluster {where}'s controller"
        for other, control_plane in clusters.items():
            if other == where:
                continue
            assert control_plane.api.get("Namespace", f"litellm-{name}") is None, f"{name} reached cluster {other}"
            assert not set(stage_names(name)) & _kustomizations(control_plane), (name, other)
    for name, control_plane in clusters.items():
        parent = _fleet_applied(control_plane, fleet["revision"])
        assert parent is not None, name
        inventory = {e["id"].split("_")[1] for e in parent["status"]["inventory"]["entries"]
                     if e["id"].endswith("_Kustomization")}
        mine = {s for n, where in PLACED.items() if where == name for s in stage_names(n)}
        assert inventory == mine | ({"litellm-platform"} if name == "two" else set()), (name, inventory)


def test_each_cluster_gets_its_own_platform_layer(fleet: dict) -> None:
    """Two installs the controller from the tree, and every site's first stage waited for it; one does not
    (another team's controller: the harness's)."""
    one, two = fleet["clusters"]["one"], fleet["clusters"]["two"]
    platform = two.api.get("Kustomization", "litellm-platform", "flux-system")
    assert condition(platform)["status"] == "True" and platform["spec"]["path"] == "./deploy/clusters/two/platform/flux"
    deployment = two.api.get("Deployment", "sealed-secrets-controller", "kube-system")
    assert condition(deployment, "Available")["status"] == "True"
    assert deployment["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "litellm-platform"
    setup = two.api.get("Kustomization", "litellm-dos-setup", "flux-system")
    assert {"name": "litellm-platform"} in setup["spec"]["dependsOn"]
    assert condition(setup)["lastTransitionTime"] >= condition(platform)["lastTransitionTime"]
    assert one.api.get("Kustomization", "litellm-platform", "flux-system") is None
    assert "dependsOn" not in one.api.get("Kustomization", "litellm-uno-setup", "flux-system")["spec"]
    # the waves are each cluster's: mover (wave 1) waits for uno (wave 0) on one; dos waits for no site of one
    mover = one.api.get("Kustomization", "litellm-mover-setup", "flux-system")
    assert mover["spec"]["dependsOn"] == [{"name": "litellm-uno"}]
    assert setup["spec"]["dependsOn"] == [{"name": "litellm-platform"}]


def test_a_conflict_is_refused_before_anything_is_applied(fleet: dict) -> None:
    repo: GitOpsRepo = fleet["repo"]
    site = repo.root / "sites/uno/site.yaml"
    original = site.read_text()
    head = _head(repo)
    try:
        site.write_text(original.replace("namespace: litellm-uno", "namespace: litellm-mover"))
        result = generator(repo.root, "render", "--all", env=repo.env)
        assert result.code == 2, result.text
        assert result.err.splitlines()[-1] == (
            "error: sites/uno/site.yaml: namespace: site uno and site mover both put on cluster one Namespace "
            "litellm-mover (and every object in it); give one of them another namespace or cluster")
        assert generator(repo.root, "render", "--all", "--check", env=repo.env).code == 2
    finally:
        site.write_text(original)
    assert generator(repo.root, "render", "--all", "--check", env=repo.env).code == 0, "the tree was not touched"
    assert _head(repo) == head
    for name, control_plane in fleet["clusters"].items():
        assert _fleet_applied(control_plane, fleet["revision"]) is not None, name


def _head(repo: GitOpsRepo) -> str:
    import subprocess

    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo.root, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_site_moved_to_the_other_cluster_is_pruned_from_the_first_and_created_on_the_second(fleet: dict) -> None:
    repo: GitOpsRepo = fleet["repo"]
    one, two = fleet["clusters"]["one"], fleet["clusters"]["two"]
    assert one.api.get("Deployment", "litellm", "litellm-mover") is not None
    site = repo.root / "sites/mover/site.yaml"
    site.write_text(site.read_text().replace("cluster: one", "cluster: two"))
    repo.gen("cert", "import", "--site", "mover", str(fleet["certs"]["two"]))  # two's controller unseals it
    repo.render()
    revision = repo.commit("move mover to cluster two")
    t0 = time.monotonic()
    for control_plane in (one, two):
        _reconcile_fleet(control_plane)
    moved = wait_converged(two, "mover", "litellm-mover", revision)
    assert moved.secret == repo.sops_values("mover"), "unsealed by two's controller"
    assert condition(moved.deployment, "Available")["status"] == "True"
    for ks in stage_names("mover"):
        wait_for(lambda ks=ks: one.api.get("Kustomization", ks, "flux-system") is None, CONVERGE_SECONDS,
                 f"{ks} pruned from cluster one", lambda: one.logs("kustomize-controller", 3000))
    wait_for(lambda: one.api.get("Deployment", "litellm", "litellm-mover") is None, CONVERGE_SECONDS,
             "mover's Deployment deleted from cluster one", lambda: one.logs("kustomize-controller", 3000))
    assert one.api.get("GitRepository", "litellm-mover", "flux-system") is None
    print(f"mover left cluster one and converged on cluster two {time.monotonic() - t0:.1f} s after the commit")
    for name in ("uno",):
        assert one.api.get("Deployment", "litellm", f"litellm-{name}") is not None, "the other site of one stays"
    assert two.api.get("Deployment", "litellm", "litellm-dos") is not None
    assert _fleet_applied(one, revision) is not None and _fleet_applied(two, revision) is not None


# -- a hub: one Argo CD (the session's, on cluster one) sends each cluster's sites to it by destination --------------

HUB_PLATFORM = """\
clusters:
  one:
    sealedSecrets: {install: false}
  two:
    argocd: {destination: {name: two}}
    sealedSecrets: {install: false}
"""
HUB_SITES = {"hubone": "one", "hubtwo": "two"}


def _cluster_secret(two: ControlPlane) -> dict:
    """What `argocd cluster add` leaves in the hub: cluster two's address and credentials, never in the tree."""
    import base64
    import json

    assert two.pki is not None
    read = lambda path: base64.b64encode(path.read_bytes()).decode()  # noqa: E731
    config = {"tlsClientConfig": {"caData": read(two.pki.ca), "certData": read(two.pki.cert("admin")),
                                  "keyData": read(two.pki.key("admin"))}}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "cluster-two", "namespace": "argocd",
                         "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "type": "Opaque", "stringData": {"name": "two", "server": two.server, "config": json.dumps(config)}}


@pytest.fixture(scope="module")
def hub(fleet: dict, cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    import yaml

    from tests.cluster.argocd_loop import application, argocd_site_yaml, explain_app, publish_routes, synced_at

    two: ControlPlane = fleet["clusters"]["two"]
    work = tmp_path_factory.mktemp("hub")
    (work / "served").mkdir()
    with GitServer(work / "served") as server:
        repo = GitOpsRepo(work, server, cluster, cluster.sealing_cert(), platform=HUB_PLATFORM)
        for name, where in HUB_SITES.items():
            repo.add_site(name, argocd_site_yaml(name, repo.url, f"cluster: {where}\n"), cert=fleet["certs"][where])
        repo.render()
        revision = repo.commit("one site a cluster, through one hub")
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(_cluster_secret(two)))
        t0 = time.monotonic()
        for name in ("one", "two"):  # both entries registered with the hub's Argo CD
            cluster.kubectl("apply", "-k", str(repo.root / f"deploy/clusters/{name}/argocd-entry"))
        targets = {"hubone": cluster, "hubtwo": two}

        def synced(name: str) -> dict | None:
            publish_routes(targets[name], f"litellm-{name}")  # the Gateway controller's part, on that cluster
            app = application(cluster, f"litellm-{name}")
            return app if synced_at(app, revision) else None

        apps = {name: wait_for(lambda name=name: synced(name), CONVERGE_SECONDS, f"litellm-{name} Synced and Healthy",
                               lambda name=name: explain_app(cluster, f"litellm-{name}")) for name in HUB_SITES}
        print(f"the hub synced one site into each cluster {time.monotonic() - t0:.1f} s after both entries were applied")
        try:
            yield {"repo": repo, "apps": apps, "targets": targets}
        finally:
            cluster.kubectl("-n", "argocd", "delete", "application", "litellm-fleet-one", "litellm-fleet-two",
                            "--ignore-not-found", "--wait=false")
            wait_for(lambda: all(application(cluster, f"litellm-{n}") is None for n in HUB_SITES), CONVERGE_SECONDS,
                     "the hub's Applications removed")
            cluster.kubectl("-n", "argocd", "delete", "secret", "cluster-two", "--ignore-not-found")


def test_a_hub_argocd_sends_each_clusters_sites_by_destination(hub: dict, fleet: dict) -> None:
    """One Argo CD holds both clusters' entries; the tree names cluster two only (destination name: two), its
    credentials are the hub's cluster Secret. Each site lands on its cluster only."""
    repo: GitOpsRepo = hub["repo"]
    one, two = fleet["clusters"]["one"], fleet["clusters"]["two"]
    assert hub["apps"]["hubtwo"]["spec"]["destination"] == {"name": "two", "namespace": "litellm-hubtwo"}
    assert hub["apps"]["hubone"]["spec"]["project"] == "litellm-one"
    assert hub["apps"]["hubtwo"]["spec"]["project"] == "litellm-two"
    for name, where in HUB_SITES.items():
        here, other = (one, two) if where == "one" else (two, one)
        deployment = here.api.get("Deployment", "litellm", f"litellm-{name}")
        assert condition(deployment, "Available")["status"] == "True", name
        secret = here.api.get("Secret", "litellm-secrets", f"litellm-{name}")
        assert secret is not None, f"{name}: unsealed by cluster {where}'s controller"
        assert other.api.get("Namespace", f"litellm-{name}") is None, f"{name} reached the other cluster"
    tree = "\n".join(p.read_text() for p in repo.root.rglob("*.yaml") if ".git" not in p.parts)
    assert fleet["clusters"]["two"].server not in tree and "certData" not in tree, "no cluster credential in the tree"
