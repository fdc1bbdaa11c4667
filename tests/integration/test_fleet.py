"""Issue 12: the fleet layer. Rollout waves order the sites for both engines, the fleet's parents own every
site's entry points (a site removed from git is pruned), and the tree validates strictly (the controllers'
CRD schemas: Flux Kustomization, Argo CD Application and AppProject)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.errors import ValidationFailed
from generator.tools import kustomize
from tests.helpers import MINIMAL_SITE, build_file_tree, generator

pytestmark = pytest.mark.tools
WAVES = {"canary": 0, "eu": 1, "us": 1, "late": 3}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(kustomize.build(path)) if d]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    build_file_tree(root, {f"sites/{name}/site.yaml": MINIMAL_SITE + f"namespace: llm-{name}\nrollout: {{wave: {wave}}}\n"
                           for name, wave in WAVES.items()})
    result = generator(root, "render", "--all")  # validates strictly, the fleet layer included
    assert result.code == 0, result.text
    validated = generator(root, "validate", "--all")
    assert validated.code == 0, validated.text
    return root


def _levels(depends: dict[str, set[str]]) -> dict[str, int]:
    """Each Kustomization's depth in the dependsOn graph: the order Flux applies them in."""
    levels: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in levels:
            levels[name] = 1 + max((level(d) for d in depends[name]), default=-1)
        return levels[name]

    for name in depends:
        level(name)
    return levels


def test_flux_applies_the_waves_in_order(fleet: Path) -> None:
    docs = _docs(fleet / "deploy/fleet/flux")
    kustomizations = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Kustomization"}
    depends = {name: {dep["name"] for dep in k["spec"].get("dependsOn", [])} for name, k in kustomizations.items()}
    levels = _levels(depends)
    # a site's apply starts with its setup stage: compare the sites by that
    start = {site: levels[f"litellm-{site}-setup"] for site in WAVES}
    ordered = sorted(WAVES, key=lambda s: (start[s], s))
    assert [WAVES[s] for s in ordered] == sorted(WAVES.values()), start
    assert start["eu"] == start["us"] > start["canary"] and start["late"] > start["eu"]
    # each wave waits for the app stage (a Ready Deployment) of every site of the wave before, and every site
    # for the platform (the sealed-secrets controller, deploy/platform/flux), nothing else
    assert depends["litellm-eu-setup"] == depends["litellm-us-setup"] == {"litellm-canary", "litellm-platform"}
    assert depends["litellm-late-setup"] == {"litellm-eu", "litellm-us", "litellm-platform"}  # wave 2 is empty: 3 follows 1
    assert depends["litellm-canary-setup"] == {"litellm-platform"} and depends["litellm-platform"] == set()
    # the site's own entry point (registered alone) carries no wave: it depends on its site file only
    alone = {d["metadata"]["name"]: d for d in _docs(fleet / "deploy/flux/eu") if d["kind"] == "Kustomization"}
    assert "dependsOn" not in alone["litellm-eu-setup"]["spec"]


def test_argocd_applies_the_waves_in_order_and_owns_every_application(fleet: Path) -> None:
    docs = _docs(fleet / "deploy/fleet/argocd")
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    assert apps.pop("litellm-platform")["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    assert set(apps) == {f"litellm-{s}" for s in WAVES}
    for site, wave in WAVES.items():
        app = apps[f"litellm-{site}"]
        assert app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == str(wave)
        assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io/foreground"]
        assert app["spec"]["project"] == "litellm"
    project = next(d for d in docs if d["kind"] == "AppProject")
    assert project["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"  # before the Applications
    assert project["spec"]["sourceRepos"] == [apps["litellm-eu"]["spec"]["source"]["repoURL"]]
    assert sorted(d["namespace"] for d in project["spec"]["destinations"]) == sorted(f"llm-{s}" for s in WAVES)
    assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    # the root kustomization registers one parent Application, which syncs the fleet directory with pruning
    (parent,) = _docs(fleet)
    assert parent["kind"] == "Application" and parent["spec"]["source"]["path"] == "deploy/fleet/argocd"
    assert parent["spec"]["syncPolicy"]["automated"]["prune"] is True
    flux_parent = {d["kind"]: d for d in _docs(fleet / "deploy/fleet/flux-entry")}
    assert flux_parent["Kustomization"]["spec"]["path"] == "./deploy/fleet/flux"
    assert flux_parent["Kustomization"]["spec"]["prune"] is True


def test_sites_of_one_fleet_must_share_the_repository(tmp_path: Path) -> None:
    other = MINIMAL_SITE.replace('repoUrl: "ssh://git@git.example.com/platform/litellm-gitops.git"',
                                 'repoUrl: "https://mirror.example.com/gitops.git"')
    build_file_tree(tmp_path, {"sites/a/site.yaml": MINIMAL_SITE, "sites/b/site.yaml": other})
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = generator(tmp_path, "render", "--all")
    assert result.code == 2, result.text
    assert result.err.strip().startswith("error: sites/b/site.yaml: gitops.argocd.repoUrl:"), result.err
    assert "differs" in result.err and sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_wave_is_bounded(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"sites/a/site.yaml": MINIMAL_SITE + "rollout: {wave: -1}\n"})
    result = generator(tmp_path, "render", "--all")
    assert result.code == 2 and "rollout.wave" in result.err, result.text


def _canonical(output: bytes) -> list[str]:
    return sorted(yaml.safe_dump(d, sort_keys=True) for d in yaml.safe_load_all(output) if d)


@pytest.mark.parametrize("directory", ["deploy/fleet/flux", "deploy/fleet/argocd"])
def test_a_fleet_built_in_shards_is_the_fleet_built_whole(fleet: Path, directory: str) -> None:
    """kustomize's time grows with the square of a build's objects, so validate builds a fleet's listing in
    shards of sites (kustomize.build_listing): here a site a shard, every wave patch in each, against the
    whole build."""
    whole = kustomize.build(fleet / directory)
    sharded = kustomize.build_listing(fleet / directory, shard=1)
    assert _canonical(sharded) == _canonical(whole) and len(_canonical(whole)) > len(WAVES)


def test_an_object_two_shards_hold_is_refused_as_kustomize_refuses_it(tmp_path: Path) -> None:
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n  namespace: ns\n"
    listing = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../a\n  - ../b\n"
    build_file_tree(tmp_path, {"a/kustomization.yaml": "resources: [cm.yaml]\n", "a/cm.yaml": config,
                               "b/kustomization.yaml": "resources: [cm.yaml]\n", "b/cm.yaml": config,
                               "fleet/kustomization.yaml": listing})
    with pytest.raises(ValidationFailed, match="already registered id"):
        kustomize.build(tmp_path / "fleet")
    with pytest.raises(ValidationFailed, match="already registered id: ConfigMap.v1 ns/same"):
        kustomize.build_listing(tmp_path / "fleet", shard=1)
