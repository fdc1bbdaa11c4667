"""The built objects two sites would fight over: ``validate`` reads every overlay's objects (extensions included)
and refuses, exit 2, two sites of one cluster with an object of the same kind, namespace and name (a cluster-scoped
one, such as the Namespace, by kind and name). The render refuses what the site files already show
(render/conflicts.py); this catches what only the build shows, such as an extension's ClusterRole."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from generator.conflicts import Claimant, check_conflicts
from generator.errors import UsageError
from generator.layout import CLUSTERS_DIR, Repo


def check_site_files(repo: Repo) -> None:
    """What ``validate --all`` checks of the site files before it builds (generator/conflicts.py, exit 2): read
    from the render cache's records, without the site model; a site changed since its render is read from its
    file, as the render would read it."""
    from generator.render_cache import RenderCache

    cache = RenderCache(repo)
    claimants: dict[str, Claimant] = {}
    stale: list[str] = []
    for name in repo.site_names():
        found = _recorded(cache.fleet_entry(name))
        if found is None:
            stale.append(name)
        else:
            claimants[name] = found
    if stale:  # the site model, only for the sites changed since their render
        from generator.errors import GeneratorError
        from generator.loader import load_platform, load_site_for_engines

        try:
            settings = load_platform(repo)
        except GeneratorError:
            return  # the render names it; validate checks the rendered tree
        for name in stale:
            try:
                claimants[name] = Claimant.of(load_site_for_engines(repo, name, settings).fleet_entry())
            except GeneratorError:
                continue  # an invalid site file is the render's to name; its rendered objects are compared below
    check_conflicts(claimants, multi=_several_clusters(repo))


def _recorded(entry: str | None) -> Claimant | None:
    import json

    try:
        return Claimant.from_record(json.loads(entry)) if entry else None
    except (ValueError, KeyError, TypeError):
        return None  # a record of another shape: read from the site file


def _several_clusters(repo: Repo) -> bool:
    """platform.yaml names more than one cluster (read plainly: a broken file is the render's to name)."""
    from generator.inputs import read_input, safe_load_limited

    path = repo.root / "platform.yaml"
    try:
        doc = safe_load_limited(read_input(path, "platform.yaml", root=repo.root), "platform.yaml") if path.is_file() else {}
    except UsageError:
        return False
    clusters = doc.get("clusters") if isinstance(doc, dict) else None
    return isinstance(clusters, dict) and len(clusters) > 1


def objects_of(docs: list[dict]) -> list[list[str]]:
    """Each object as [kind, namespace ("" when cluster-scoped), name]."""
    found = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        found.append([str(doc.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", ""))])
    return found


def site_clusters(root: Path, listings: list[str]) -> dict[str, str]:
    """Which cluster lists each site's entry points (deploy/clusters/<name>/...); none: the one cluster."""
    clusters: dict[str, str] = {}
    for listing in listings:
        if not listing.startswith(f"{CLUSTERS_DIR}/"):
            continue
        cluster = listing.split("/")[2]
        try:
            doc = yaml.safe_load((root / listing / "kustomization.yaml").read_bytes())
        except (OSError, yaml.YAMLError):
            continue  # its own build names the problem
        for resource in (doc or {}).get("resources", []) if isinstance(doc, dict) else []:
            if isinstance(resource, str) and resource.startswith("../"):
                clusters[os.path.basename(os.path.normpath(resource))] = cluster
    return clusters


def check_objects(objects: dict[str, list[list[str]]], clusters: dict[str, str]) -> None:
    """``objects``: by build label; the overlays' (overlays/<site>) are compared, cluster by cluster."""
    owners: dict[tuple[str, str, str, str], str] = {}
    for label in sorted(objects):
        if not label.startswith("overlays/"):
            continue
        site = label.split("/")[1]
        cluster = clusters.get(site, "")
        for kind, namespace, name in objects[label]:
            other = owners.setdefault((cluster, kind, namespace, name), site)
            if other != site:
                shown = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
                where = f"cluster {cluster}" if cluster else "the cluster"
                raise UsageError(f"{label}: site {site} and site {other} both put {shown} on {where}; give one of "
                                 "them another namespace or cluster (sites/<site>/site.yaml: namespace, cluster)")
