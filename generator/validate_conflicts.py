"""The built objects two sites would fight over: ``validate`` reads every overlay's objects (extensions included)
and refuses, exit 2, two sites of one cluster with an object of the same kind, namespace and name (a cluster-scoped
one, such as the Namespace, by kind and name). The render refuses what the site files already show
(render/conflicts.py); this catches what only the build shows, such as an extension's ClusterRole."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from generator.errors import UsageError
from generator.layout import CLUSTERS_DIR


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
