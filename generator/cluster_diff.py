"""``generator diff``: a site's committed objects against the live cluster, by server-side dry-run.

The API server itself merges each object as the GitOps engine would apply it (same field manager,
admission and defaulting included), and kubectl prints the difference. Objects the engine would prune
(Flux: live objects labelled by one of the site's Kustomizations that the tree no longer holds) are listed
after the diff. Exit codes are kubectl diff's: 0 same, 1 differs; 2 bad input, 3 the cluster or kubectl failed.
"""

from __future__ import annotations

import sys
from typing import TextIO

import yaml

from generator import proc
from generator.errors import ClusterError, UsageError
from generator.layout import Repo
from generator.loader import load_site
from generator.model import Site
from generator.rendering import desired_tree
from generator.tools import kubectl, kustomize
from generator.tools.kubectl import DIFFERENT, SAME, Cluster
from generator.writer import plan

FLUX_MANAGER, ARGOCD_MANAGER = "kustomize-controller", "argocd-controller"
# every kind the generator renders into an overlay, as kubectl names them
RENDERED_KINDS = ("namespaces", "configmaps", "services", "deployments.apps", "jobs.batch",
                  "poddisruptionbudgets.policy", "horizontalpodautoscalers.autoscaling",
                  "networkpolicies.networking.k8s.io", "ingresses.networking.k8s.io",
                  "httproutes.gateway.networking.k8s.io", "sealedsecrets.bitnami.com")
Key = tuple[str, str, str]  # kind, namespace, name


def run_diff(repo: Repo, name: str, cluster: Cluster, *, field_manager: str | None = None,
             out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    site = load_site(repo, name)  # a bad site stops here (exit 2)
    overlay = repo.root / "overlays" / name
    if not (overlay / "kustomization.yaml").is_file():
        raise UsageError(f"overlays/{name} is not rendered yet: run 'generator render --site {name}'")
    if _stale(repo, name, site):
        print(f"warning: overlays/{name} does not match sites/{name}/site.yaml; this diffs the tree on disk "
              f"(what the engine applies once committed): run 'generator render --site {name}' to update it", file=err)
    manager = field_manager or (FLUX_MANAGER if site.gitops.flux.enabled else ARGOCD_MANAGER)
    stages = _flux_stages(repo, name) if site.gitops.flux.enabled else []
    if stages:  # each stage as kustomize-controller applies it: built from its path, labelled with its name
        objects, replaced = [], []
        for ks in stages:
            built = _objects(kustomize.build(repo.root / ks["spec"]["path"]))
            for obj in built:
                labels = obj.setdefault("metadata", {}).setdefault("labels", {})
                labels.update({"kustomize.toolkit.fluxcd.io/name": ks["metadata"]["name"],
                               "kustomize.toolkit.fluxcd.io/namespace": ks["metadata"].get("namespace", "flux-system")})
            objects += built
            if ks["spec"].get("force"):
                replaced += [o for o in built if o.get("kind") == "Job"]
    else:
        objects, replaced = _objects(kustomize.build(overlay)), []

    if not _namespace_exists(cluster, site.namespace):
        print(f"namespace {site.namespace} does not exist: all {len(objects)} object(s) of the site are new", file=out)
        for kind, ns, obj_name in sorted(_key(o) for o in objects):
            print(f"+ {kind} {ns + '/' if ns else ''}{obj_name}", file=out)
        return DIFFERENT

    differs = False
    applied = [o for o in objects if not any(o is r for r in replaced)]
    result = kubectl.diff(cluster, _dump(applied), field_manager=manager)
    _check(result)
    out.write(result.text)
    differs |= result.returncode == DIFFERENT
    for job in replaced:  # a Job's template is immutable: Flux (force: true) deletes and recreates it
        result = kubectl.diff(cluster, _dump([job]), field_manager=manager)
        if result.returncode > DIFFERENT and "field is immutable" in result.err_text:
            kind, ns, obj_name = _key(job)
            print(f"~ {kind} {ns}/{obj_name}: changed where it is immutable; Flux (force: true) replaces it", file=out)
            differs = True
            continue
        _check(result)
        out.write(result.text)
        differs |= result.returncode == DIFFERENT
    pruned = _flux_prunes(stages, cluster, {_key(o) for o in objects})
    for kind, ns, obj_name in pruned:
        print(f"- {kind} {ns}/{obj_name}: Flux would prune it (the tree no longer holds it)", file=out)
    return DIFFERENT if differs or pruned else SAME


def _check(result: proc.Result) -> None:
    if result.returncode not in (SAME, DIFFERENT):
        raise ClusterError(f"kubectl diff against the cluster failed (exit {result.returncode}): "
                           f"{proc.tail(result.err_text or result.text, 3)}")


def _objects(manifests: bytes) -> list[dict]:
    return [d for d in yaml.safe_load_all(manifests) if isinstance(d, dict)]


def _dump(objects: list[dict]) -> bytes:
    return yaml.safe_dump_all(objects, sort_keys=False).encode()


def _flux_stages(repo: Repo, name: str) -> list[dict]:
    entry = repo.root / "deploy" / "flux" / name / "litellm.yaml"
    if not entry.is_file():
        return []
    return [d for d in _objects(entry.read_bytes()) if d.get("kind") == "Kustomization"]


def _stale(repo: Repo, name: str, site: Site) -> bool:
    """Whether the overlay on disk (what is diffed) differs from what the site file renders."""
    scope, desired = desired_tree(repo, {name: site}, everything=False, seal=False)
    return any(c.path.startswith(f"overlays/{name}/") for c in plan(repo.root, scope, desired).pending())


def _key(obj: dict) -> Key:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


def _namespace_exists(cluster: Cluster, namespace: str) -> bool:
    result = kubectl.get(cluster, "namespace", namespace)
    if result.returncode == 0:
        return True
    if "NotFound" in result.err_text:
        return False
    raise ClusterError(f"cannot read namespace {namespace} from the cluster: {proc.tail(result.err_text, 2)}")


def _flux_prunes(stages: list[dict], cluster: Cluster, rendered: set[Key]) -> list[Key]:
    found: list[Key] = []
    kinds = list(RENDERED_KINDS)
    for ks in stages:
        meta = ks["metadata"]
        selector = (f"kustomize.toolkit.fluxcd.io/name={meta['name']},"
                    f"kustomize.toolkit.fluxcd.io/namespace={meta.get('namespace', 'flux-system')}")
        while kinds:
            result = kubectl.get(cluster, ",".join(kinds), "--all-namespaces", "-l", selector)
            if result.returncode == 0:
                found += [key for key in map(_key, kubectl.items(result)) if key not in rendered]
                break
            missing = [kind for kind in kinds if f'resource type "{kind}"' in result.err_text]
            if not missing:
                raise ClusterError(f"cannot list the objects of {meta['name']}: {proc.tail(result.err_text, 2)}")
            kinds = [kind for kind in kinds if kind not in missing]  # a kind the cluster does not serve holds nothing
    return sorted(set(found))
