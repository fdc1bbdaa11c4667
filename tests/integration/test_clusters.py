"""Issue 27: fleets across clusters. A site names its cluster, platform.yaml names the clusters; each cluster gets
entry points that hold its platform layer and its sites only; two sites that would fight over one object on one
cluster are refused (exit 2, naming both sites and the object) before anything is written; and a repository of one
cluster renders to the same bytes as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.tools import kustomize
from tests.helpers import MINIMAL_SITE, OUTPUT_ROOTS, PROJECT, build_file_tree, copy_repo, fingerprint, generator

pytestmark = pytest.mark.tools

TWO_CLUSTERS = """\
gitCredential: external
clusters:
  prod: {}
  staging:
    argocd: {destination: {name: staging}}
    sealedSecrets: {install: false}
"""


def _site(namespace: str, extra: str = "") -> str:
    return MINIMAL_SITE + f"namespace: {namespace}\n" + extra


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(kustomize.build(path)) if d]


def _names(docs: list[dict], kind: str) -> set[str]:
    return {d["metadata"]["name"] for d in docs if d["kind"] == kind}


def _tree_bytes(root: Path) -> dict[str, str]:
    return {path: digest for path, (digest, _ino, _mtime) in fingerprint(root).items()}


# -- migration: one cluster, today's tree ---------------------------------------------------------------------------

ENTRY_POINTS = (".", "deploy/fleet/flux-entry", "deploy/fleet/flux", "deploy/fleet/argocd", "deploy/flux/prod",
                "deploy/argocd/prod", "overlays/prod", "deploy/platform/flux", "deploy/platform/argocd")


@pytest.mark.parametrize("platform", ["as committed", "one cluster named"])
def test_the_committed_tree_re_renders_byte_identical(tmp_path: Path, platform: str) -> None:
    """The committed tree (rendered before clusters existed) is what the committed sites render to now, file for
    file and object for object of each engine's entry points; naming the one cluster in platform.yaml (and the
    site's) changes nothing either."""
    repo = copy_repo(tmp_path / "repo")
    committed = _tree_bytes(repo)
    objects = {rel: kustomize.build(PROJECT / rel) for rel in ENTRY_POINTS if (PROJECT / rel / "kustomization.yaml").is_file()}
    assert set(objects) >= {".", "deploy/fleet/flux-entry", "deploy/fleet/flux", "overlays/prod"}
    if platform == "one cluster named":
        (repo / "platform.yaml").write_text((PROJECT / "platform.yaml").read_text()
                                            + "clusters:\n  thinkube:\n    argocd: {destination: {server: https://kubernetes.default.svc}}\n")
        site = repo / "sites/prod/site.yaml"
        site.write_text(site.read_text() + "cluster: thinkube\n")
    result = generator(repo, "render", "--all")
    assert result.code == 0, result.text
    assert _tree_bytes(repo) == committed, "the one-cluster tree changed"
    for rel, built in objects.items():
        assert kustomize.build(repo / rel) == built, rel
    assert not (repo / "deploy/clusters").exists()


# -- conflicts --------------------------------------------------------------------------------------------------------

def test_two_sites_sharing_a_namespace_on_one_cluster_exit_2_and_nothing_is_written(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"sites/prod/site.yaml": _site("litellm"), "sites/staging/site.yaml": _site("llm-staging")})
    assert generator(tmp_path, "render", "--all").code == 0
    before = fingerprint(tmp_path)
    (tmp_path / "sites/staging/site.yaml").write_text(_site("litellm"))  # copied from prod, namespace and all
    for args in (("render", "--all"), ("validate", "--all"), ("render", "--site", "staging")):
        result = generator(tmp_path, *args)
        assert result.code == 2, (args, result.text)
        assert result.err == ("error: sites/staging/site.yaml: namespace: site staging and site prod both put on "
                              "cluster default Namespace litellm (and every object in it); give one of them another "
                              "namespace or cluster\n"), (args, result.err)
        assert fingerprint(tmp_path) == before, args


TWO_CLUSTERS_LISTED = """\
gitCredential: external
clusters:
  - name: prod
  - name: staging
    argocd: {destination: {name: staging}}
    sealedSecrets: {install: false}
"""


@pytest.mark.parametrize("platform", [TWO_CLUSTERS, TWO_CLUSTERS_LISTED], ids=["by name", "listed"])
def test_the_same_two_sites_on_two_clusters_render_one_entry_per_cluster(tmp_path: Path, platform: str) -> None:
    build_file_tree(tmp_path, {"platform.yaml": platform,
                               "sites/prod/site.yaml": _site("litellm", "cluster: prod\n"),
                               "sites/staging/site.yaml": _site("litellm", "cluster: staging\n"),
                               "sites/canary/site.yaml": _site("llm-canary", "cluster: prod\nrollout: {wave: 1}\n")})
    result = generator(tmp_path, "render", "--all")  # validates every cluster's entries strictly
    assert result.code == 0, result.text
    assert generator(tmp_path, "validate", "--all").code == 0
    assert not (tmp_path / "kustomization.yaml").exists(), "no root app-of-apps: it would register every cluster"
    assert not (tmp_path / "deploy/fleet").exists() and not (tmp_path / "deploy/platform").exists()
    mine = {"prod": {"prod", "canary"}, "staging": {"staging"}}
    for cluster, sites in mine.items():
        base = tmp_path / "deploy/clusters" / cluster
        flux = _docs(base / "flux")
        stages = {f"litellm-{s}{stage}" for s in sites for stage in ("-setup", "-migrate", "")}
        platform = {"litellm-platform"} if cluster == "prod" else set()  # staging installs no controller
        assert _names(flux, "Kustomization") == stages | platform, cluster
        assert _names(flux, "GitRepository") == {f"litellm-{s}" for s in sites}
        argo = _docs(base / "argocd")
        apps = {d["metadata"]["name"]: d for d in argo if d["kind"] == "Application"}
        assert set(apps) == {f"litellm-{s}" for s in sites} | {f"litellm-platform-{cluster}" for _ in platform}
        for site in sites:
            assert apps[f"litellm-{site}"]["spec"]["project"] == f"litellm-{cluster}"
        project = next(d for d in argo if d["kind"] == "AppProject" and d["metadata"]["name"] == f"litellm-{cluster}")
        destination = {"name": "staging"} if cluster == "staging" else {"server": "https://kubernetes.default.svc"}
        assert project["spec"]["destinations"] == [{**destination, "namespace": _ns(tmp_path, s)} for s in sorted(sites)]
        for site in sites:
            assert apps[f"litellm-{site}"]["spec"]["destination"] == {**destination, "namespace": _ns(tmp_path, site)}
        # one command a cluster: its entry points at its own listing
        entry = _docs(base / "flux-entry")
        parent = next(d for d in entry if d["kind"] == "Kustomization")
        assert parent["spec"]["path"] == f"./deploy/clusters/{cluster}/flux" and parent["metadata"]["name"] == "litellm-fleet"
        argo_parent = _docs(base / "argocd-entry")[0]
        assert argo_parent["metadata"]["name"] == f"litellm-fleet-{cluster}"
        assert argo_parent["spec"]["source"]["path"] == f"deploy/clusters/{cluster}/argocd"
    # each cluster's platform: prod installs the controller, staging does not
    assert (tmp_path / "deploy/clusters/prod/platform/sealed-secrets/kustomization.yaml").is_file()
    assert not (tmp_path / "deploy/clusters/staging/platform").exists()
    # the waves are per cluster: canary (wave 1) waits for prod (wave 0) on prod, not for staging
    canary = next(d for d in _docs(tmp_path / "deploy/clusters/prod/flux")
                  if d["metadata"]["name"] == "litellm-canary-setup")
    assert canary["spec"]["dependsOn"] == [{"name": "litellm-prod"}, {"name": "litellm-platform"}]


def _ns(root: Path, site: str) -> str:
    return yaml.safe_load((root / f"sites/{site}/site.yaml").read_text())["namespace"]


def test_a_site_moved_to_another_cluster_leaves_the_first_one(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"platform.yaml": TWO_CLUSTERS,
                               "sites/a/site.yaml": _site("llm-a", "cluster: prod\n"),
                               "sites/b/site.yaml": _site("llm-b", "cluster: prod\n")})
    assert generator(tmp_path, "render", "--all").code == 0
    assert "litellm-b" in _names(_docs(tmp_path / "deploy/clusters/prod/argocd"), "Application")
    (tmp_path / "sites/b/site.yaml").write_text(_site("llm-b", "cluster: staging\n"))
    result = generator(tmp_path, "render", "--site", "b")
    assert result.code == 0, result.text
    assert _names(_docs(tmp_path / "deploy/clusters/prod/flux"), "Kustomization") == {
        "litellm-a-setup", "litellm-a-migrate", "litellm-a", "litellm-platform"}
    assert _names(_docs(tmp_path / "deploy/clusters/staging/flux"), "Kustomization") == {
        "litellm-b-setup", "litellm-b-migrate", "litellm-b"}
    app = yaml.safe_load((tmp_path / "deploy/argocd/b/application.yaml").read_text())
    assert app["spec"]["destination"] == {"name": "staging", "namespace": "llm-b"}
    # the last site of a cluster moves away: its entry stays, empty, so its Flux prunes what it applied
    (tmp_path / "sites/a/site.yaml").write_text(_site("llm-a", "cluster: staging\n"))
    assert generator(tmp_path, "render", "--all").code == 0
    assert _names(_docs(tmp_path / "deploy/clusters/prod/flux"), "Kustomization") == set()
    assert (tmp_path / "deploy/clusters/prod/flux-entry/kustomization.yaml").is_file()


def test_back_to_one_cluster_restores_todays_layout(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"sites/a/site.yaml": _site("llm-a"), "sites/b/site.yaml": _site("llm-b")})
    assert generator(tmp_path, "render", "--all").code == 0
    single = _tree_bytes(tmp_path)
    (tmp_path / "platform.yaml").write_text(TWO_CLUSTERS)
    for name in ("a", "b"):
        (tmp_path / f"sites/{name}/site.yaml").write_text(_site(f"llm-{name}", "cluster: prod\n"))
    assert generator(tmp_path, "render", "--all").code == 0
    assert (tmp_path / "deploy/clusters/prod").is_dir() and not (tmp_path / "deploy/fleet").exists()
    (tmp_path / "platform.yaml").write_text("gitCredential: external\n")
    for name in ("a", "b"):
        (tmp_path / f"sites/{name}/site.yaml").write_text(_site(f"llm-{name}"))
    assert generator(tmp_path, "render", "--all").code == 0
    assert _tree_bytes(tmp_path) == single and not (tmp_path / "deploy/clusters").exists()


EXTENSION = {"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                                   "resources: [reader.yaml]\n",
             "reader.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
                            "  name: litellm-reader\nrules: []\n"}


def test_a_cluster_wide_object_of_two_sites_on_one_cluster_exits_2(tmp_path: Path) -> None:
    """What only the build shows: two sites' extensions each make the same ClusterRole. One cluster: refused at
    render (nothing written) and at validate; on two clusters each has its own."""
    spec = {"sites/a/site.yaml": _site("llm-a", "extensions: resources\n"),
            "sites/b/site.yaml": _site("llm-b", "extensions: resources\n")}
    for site in ("a", "b"):
        spec.update({f"sites/{site}/extensions/{file}": text for file, text in EXTENSION.items()})
    build_file_tree(tmp_path, spec)
    result = generator(tmp_path, "render", "--all")
    assert result.code == 2, result.text
    assert result.err.splitlines()[-1] + "\n" == ("error: overlays/b: site b and site a both put ClusterRole litellm-reader on the cluster; "
                          "give one of them another namespace or cluster (sites/<site>/site.yaml: namespace, "
                          "cluster)\n"), result.err
    assert not (tmp_path / "overlays").exists()
    assert generator(tmp_path, "render", "--all", "--no-validate").code == 0
    validated = generator(tmp_path, "validate", "--all")
    assert validated.code == 2 and "site b and site a both put ClusterRole litellm-reader" in validated.err
    (tmp_path / "platform.yaml").write_text(TWO_CLUSTERS)
    (tmp_path / "sites/a/site.yaml").write_text(_site("llm-a", "extensions: resources\ncluster: prod\n"))
    (tmp_path / "sites/b/site.yaml").write_text(_site("llm-b", "extensions: resources\ncluster: staging\n"))
    result = generator(tmp_path, "render", "--all")
    assert result.code == 0, result.text
    assert generator(tmp_path, "validate", "--all").code == 0


@pytest.mark.parametrize(("platform", "sites", "message"), [
    (TWO_CLUSTERS, {"a": "cluster: nowhere\n"},
     "error: sites/a/site.yaml:5: cluster: cluster 'nowhere' is not one platform.yaml names (clusters: prod, staging); "
     "add it under clusters: in platform.yaml, or fix the name\n"),
    (TWO_CLUSTERS, {"a": ""},
     "error: sites/a/site.yaml:1: cluster: platform.yaml names several clusters: say which one runs the site "
     "(clusters: prod, staging)\n"),
    ("gitCredential: external\n", {"a": "cluster: prod\n"},
     "error: sites/a/site.yaml:5: cluster: cluster 'prod' is not one platform.yaml names (clusters: default); "
     "add it under clusters: in platform.yaml, or fix the name\n"),
    (TWO_CLUSTERS, {"a": "cluster: staging\ngitops:\n  argocd: {destination: {server: https://10.0.0.1:6443}}\n"},
     None),
    ("gitCredential: external\n", {"fleet": ""},
     "error: sites/fleet/site.yaml: site fleet's GitRepository flux-system/litellm-fleet is the fleet layer's own "
     "object on cluster default: rename the site\n"),
    ("gitCredential: external\n", {"a": "namespace: llm-a\n", "a-migrate": "namespace: llm-am\n"},
     "error: sites/a-migrate/site.yaml: site a-migrate and site a both put on cluster default Kustomization "
     "flux-system/litellm-a-migrate; rename one of the sites\n"),
])
def test_a_site_that_does_not_fit_its_clusters_exits_2(tmp_path: Path, platform: str, sites: dict[str, str],
                                                      message: str | None) -> None:
    build_file_tree(tmp_path, {"platform.yaml": platform,
                               **{f"sites/{n}/site.yaml": MINIMAL_SITE + extra for n, extra in sites.items()}})
    result = generator(tmp_path, "render", "--all")
    assert result.code == 2, result.text
    if message is None:  # the two cases whose message names a field of a nested block
        assert result.err.startswith("error: sites/a") and result.err.count("\n") == 1, result.err
    else:
        assert result.err == message
    assert not any((tmp_path / rel).exists() for rel in OUTPUT_ROOTS)


def test_site_new_copied_from_prod_takes_a_namespace_of_its_own_on_the_same_cluster(tmp_path: Path) -> None:
    """The issue's new user: a staging site copied from prod. On prod's cluster it gets a namespace of its own
    (prod's would be refused); on another cluster it keeps prod's."""
    from tests.keys import age_key, sealing_pair

    key = age_key()
    cert, _ = sealing_pair(tmp_path / "keys")
    root = tmp_path / "repo"
    build_file_tree(root, {"platform.yaml": TWO_CLUSTERS, "sites/.keep": ""})
    env = {"SOPS_AGE_KEY": key.identity}

    def new(name: str, *args: str) -> dict:
        made = generator(root, "site", "new", name, "--domain", f"{name}.example.org", "--age-recipient",
                         key.recipient, "--cert", str(cert), *args, env=env)
        assert made.code == 0, made.text
        return yaml.safe_load((root / f"sites/{name}/site.yaml").read_text())

    assert new("prod", "--cluster", "prod")["namespace"] == "litellm"
    assert new("staging", "--from", "prod")["namespace"] == "litellm-staging"  # prod's cluster, as copied
    elsewhere = new("eu", "--from", "prod", "--cluster", "staging")
    assert (elsewhere["namespace"], elsewhere["cluster"]) == ("litellm", "staging")
    fresh = new("lab", "--cluster", "prod")  # from the template: its default namespace is prod's
    assert (fresh["namespace"], fresh["cluster"]) == ("litellm-lab", "prod")
    assert generator(root, "validate", "--all", env=env).code == 0
    assert {d["metadata"]["name"] for d in _docs(root / "deploy/clusters/staging/flux")
            if d["kind"] == "GitRepository"} == {"litellm-eu"}
