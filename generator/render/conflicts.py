"""Objects two sites would fight over: on one cluster, no two sites may claim an object of the same kind,
namespace and name (cluster-scoped ones, such as a site's Namespace, included), nor one the fleet layer owns.

The claims are read from what the fleet layer knows of each site (``model.FleetEntry``): every object of a
site's overlay lives in its namespace (the overlay's namespace transformer puts it there) and the Namespace
object is named after it, so one namespace on one cluster is one site's; its engine objects are named after the
site in the engines' namespaces. ``validate`` checks the built objects too (extensions included). A conflict
stops the render before anything is written (exit 2), naming both sites and the object.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.errors import SiteError
from generator.model import FleetEntry

FLEET, PLATFORM = "litellm-fleet", "litellm-platform"
FLUX_KS, FLUX_SOURCE = "Kustomization", "GitRepository"
Key = tuple[str, str, str]  # kind, namespace ("" for a cluster-scoped object), name


def _claims(name: str, site: FleetEntry) -> Iterator[tuple[Key, str]]:
    """Each object the site puts on its cluster, with the site file's field that decides it."""
    yield ("Namespace", "", site.namespace), "namespace"
    if site.gitops.flux.enabled:
        ns = site.gitops.flux.namespace
        yield (FLUX_SOURCE, ns, f"litellm-{name}"), ""
        for stage in (f"litellm-{name}-setup", f"litellm-{name}-migrate", f"litellm-{name}"):
            yield (FLUX_KS, ns, stage), ""
    if site.gitops.argocd.enabled:
        yield ("Application", site.gitops.argocd.namespace, f"litellm-{name}"), ""


def _fleet_owned(sites: dict[str, FleetEntry], suffix: str) -> set[Key]:
    """The fleet layer's own objects on the cluster: the parents and the platform's."""
    owned: set[Key] = set()
    for site in sites.values():
        if site.gitops.flux.enabled:
            ns = site.gitops.flux.namespace
            owned |= {(FLUX_SOURCE, ns, FLEET), (FLUX_KS, ns, FLEET), (FLUX_KS, ns, PLATFORM)}
        if site.gitops.argocd.enabled:
            ns = site.gitops.argocd.namespace
            owned |= {("Application", ns, FLEET + suffix), ("Application", ns, PLATFORM + suffix),
                      ("AppProject", ns, PLATFORM + suffix)}
    return owned


def _shown(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def check_conflicts(fleet: dict[str, FleetEntry], *, multi: bool = False) -> None:
    """Refuse (exit 2) two sites of one cluster that claim one object, or a site claiming a fleet object."""
    clusters: dict[str | None, dict[str, FleetEntry]] = {}
    for name, site in sorted(fleet.items()):
        clusters.setdefault(site.cluster, {})[name] = site
    for cluster, sites in clusters.items():
        where = f"cluster {cluster}" if cluster else "the cluster"
        owned = _fleet_owned(fleet, f"-{cluster}" if multi else "")
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
