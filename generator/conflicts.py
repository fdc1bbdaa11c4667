"""Objects two sites would fight over: on one cluster, no two sites may claim an object of the same kind,
namespace and name (cluster-scoped ones, such as a site's Namespace, included), nor one the fleet layer owns.

The claims are read from what the fleet layer knows of each site (``model.FleetEntry``, or its JSON as the render
cache records it: ``validate`` checks without building the site model): every object of a
site's overlay lives in its namespace (the overlay's namespace transformer puts it there) and the Namespace
object is named after it, so one namespace on one cluster is one site's; its engine objects are named after the
site in the engines' namespaces. ``validate`` checks the built objects too (extensions included). A conflict
stops the render before anything is written (exit 2), naming both sites and the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from generator.errors import SiteError

FLEET, PLATFORM = "litellm-fleet", "litellm-platform"
FLUX_KS, FLUX_SOURCE = "Kustomization", "GitRepository"
Key = tuple[str, str, str]  # kind, namespace ("" for a cluster-scoped object), name


@dataclass(frozen=True)
class Claimant:
    """What the check reads of a site: its namespace and cluster, and each engine's namespace (None: off)."""

    namespace: str
    cluster: str | None
    flux: str | None
    argocd: str | None

    @classmethod
    def of(cls, entry: Any) -> "Claimant":  # noqa: ANN401 - a model.FleetEntry (not imported: pydantic's cost)
        gitops = entry.gitops
        return cls(entry.namespace, entry.cluster, gitops.flux.namespace if gitops.flux.enabled else None,
                   gitops.argocd.namespace if gitops.argocd.enabled else None)

    @classmethod
    def from_record(cls, entry: dict[str, Any]) -> "Claimant":
        """From a FleetEntry's JSON as the render cache keeps it (camelCase, every field written out)."""
        flux, argo = entry["gitops"]["flux"], entry["gitops"]["argocd"]
        return cls(entry["namespace"], entry.get("cluster"), flux["namespace"] if flux["enabled"] else None,
                   argo["namespace"] if argo["enabled"] else None)


def _claims(name: str, site: Claimant) -> Iterator[tuple[Key, str]]:
    """Each object the site puts on its cluster, with the site file's field that decides it."""
    yield ("Namespace", "", site.namespace), "namespace"
    if site.flux:
        yield (FLUX_SOURCE, site.flux, f"litellm-{name}"), ""
        for stage in (f"litellm-{name}-setup", f"litellm-{name}-migrate", f"litellm-{name}"):
            yield (FLUX_KS, site.flux, stage), ""
    if site.argocd:
        yield ("Application", site.argocd, f"litellm-{name}"), ""


def _fleet_owned(sites: dict[str, Claimant], suffix: str) -> set[Key]:
    """The fleet layer's own objects on the cluster: the parents and the platform's."""
    owned: set[Key] = set()
    for site in sites.values():
        if site.flux:
            owned |= {(FLUX_SOURCE, site.flux, FLEET), (FLUX_KS, site.flux, FLEET), (FLUX_KS, site.flux, PLATFORM)}
        if site.argocd:
            owned |= {("Application", site.argocd, FLEET + suffix), ("Application", site.argocd, PLATFORM + suffix),
                      ("AppProject", site.argocd, PLATFORM + suffix)}
    return owned


def _shown(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def check_conflicts(fleet: dict[str, Any], *, multi: bool = False) -> None:
    """Refuse (exit 2) two sites of one cluster that claim one object, or a site claiming a fleet object.
    ``fleet``: each site's model.FleetEntry or Claimant."""
    claimants = {n: s if isinstance(s, Claimant) else Claimant.of(s) for n, s in fleet.items()}
    clusters: dict[str | None, dict[str, Claimant]] = {}
    for name, site in sorted(claimants.items()):
        clusters.setdefault(site.cluster, {})[name] = site
    for cluster, sites in clusters.items():
        where = f"cluster {cluster}" if cluster else "the cluster"
        owned = _fleet_owned(claimants, f"-{cluster}" if multi else "")
        claimed: dict[Key, str] = {}
        for name, site in sites.items():
            for key, field in _claims(name, site):
                if key in owned:
                    raise SiteError(f"sites/{name}/site.yaml", f"site {name}'s {_shown(key)} is the fleet layer's own "
                                    f"object on {where}: rename the site")
                other = claimed.setdefault(key, name)
                if other == name:
                    continue
                what = (f"{_shown(key)} (and every object in it); give one of them another namespace or cluster"
                        if field == "namespace" else f"{_shown(key)}; rename one of the sites")
                raise SiteError(f"sites/{name}/site.yaml", f"site {name} and site {other} both put on {where} {what}",
                                field=field)
