"""The fleet: what registers every site with each engine, owns the sites' entry points, and orders them.

Argo CD: a parent Application (``deploy/fleet/argocd-entry``, also the root kustomization.yaml's one resource:
``kubectl apply -k .``) syncs ``deploy/fleet/argocd/``: the AppProject(s) of the sites and every site's
Application, each annotated with its rollout wave as an Argo CD sync wave. The parent owns them: a site
deleted from git is pruned, and its Application's resources finalizer deletes its objects.

Flux: a parent GitRepository + Kustomization (``kubectl apply -k deploy/fleet/flux-entry``) applies
``deploy/fleet/flux/``: every site's source and Kustomizations, with each site's first stage made to depend
on the last stage of every site of the wave before. Pruning removes a deleted site the same way.

The waves are added here, by patches, so a site's own entry points depend on its site file alone.

With several clusters (platform.yaml ``clusters``) each cluster gets these layers of its own under
``deploy/clusters/<name>/`` (``ClusterLayer``): its platform and only its sites, with the waves among them. Flux
objects keep their names (each cluster's own Flux applies its entry); the Argo CD parents and projects carry the
cluster's name (one hub's Argo CD may hold every cluster's), and send their objects to the cluster's destination.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from generator.redact import shown_url
from generator.errors import SiteError
from generator.layout import ClusterDirs
from generator.model import FleetEntry
from generator.model.gitops import ArgoDestination
from generator.render.common import obj, yaml_file
from generator.render.gitops import ARGO_FINALIZER, STAGE_LABEL, SYNC_WAVE, WAVE_LABEL
from generator.yamlio import dump

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
FLEET = "litellm-fleet"
PLATFORM = "litellm-platform"
SOURCE, COMMAND = "sites/*/site.yaml", "generator render --all"
IN_CLUSTER = {"server": "https://kubernetes.default.svc"}  # where Argo CD itself runs: its Applications live there


@dataclass(frozen=True)
class ClusterLayer:
    """One cluster's part of the fleet layer."""

    name: str
    dirs: ClusterDirs = ClusterDirs()
    platform: frozenset[str] = frozenset()  # the engines with a platform folder to apply before every site
    platform_namespaces: tuple[str, ...] = ()
    destination: ArgoDestination = field(default_factory=ArgoDestination)
    suffix: str = ""  # on the Argo CD parents' and platform's names: "-<cluster>" with several clusters

    @property
    def argo_destination(self) -> dict[str, str]:
        return self.destination.spec()


def _name(site: str) -> str:
    return f"litellm-{site}"


def _out(*docs: Any) -> bytes:
    return yaml_file(SOURCE, COMMAND, *docs)


def render_fleet(sites: dict[str, FleetEntry], platform: set[str] = frozenset(), platform_namespaces: tuple[str, ...] = ()
                 ) -> dict[str, bytes]:
    """Every file of the fleet layer (and the root kustomization.yaml) of a repository with one cluster."""
    return render_clusters(sites, [ClusterLayer("", platform=frozenset(platform),
                                                platform_namespaces=platform_namespaces)])


def render_clusters(sites: dict[str, FleetEntry], clusters: list[ClusterLayer]) -> dict[str, bytes]:
    """Every file of the fleet layer. One cluster: today's deploy/fleet/ and the root kustomization.yaml (the
    Argo CD app-of-apps). Several: each cluster's entry points under deploy/clusters/<name>/, holding only the
    sites that name it; an engine any site enables has an entry on every cluster, so a cluster whose last site
    moved away still prunes it. No root kustomization then: ``kubectl apply -k .`` would register every
    cluster's sites with one Argo CD."""
    argo = {n: s for n, s in sorted(sites.items()) if s.gitops.argocd.enabled}
    flux = {n: s for n, s in sorted(sites.items()) if s.gitops.flux.enabled}
    files: dict[str, bytes] = {}
    root: list[str] = []
    single = len(clusters) == 1
    for cluster in clusters:
        def mine(of: dict[str, FleetEntry]) -> dict[str, FleetEntry]:
            return of if single else {n: s for n, s in of.items() if s.cluster == cluster.name}
        if argo:
            files.update(_argocd_fleet(argo, mine(argo), cluster))
            root.append(cluster.dirs.argo_entry)
        if flux:
            files.update(_flux_fleet(flux, mine(flux), cluster))
    if single:
        files["kustomization.yaml"] = _out({"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": root})
    return files


def _shared(sites: dict[str, FleetEntry], what: str, value: Any, field: str) -> Any:  # noqa: ANN401
    """A setting the parent object takes from the sites: they must agree on it."""
    values = {name: value(site) for name, site in sites.items()}
    first = next(iter(values))
    for name, found in values.items():
        if found != values[first]:
            raise SiteError(f"sites/{name}/site.yaml", f"{what} {_shown(found)} differs from {_shown(values[first])} of site "
                            f"{first}: the fleet's parent object reads one repository", field=field)
    return values[first]


def _shown(value: Any) -> str:  # noqa: ANN401 - a URL without the password a pasted one may carry
    return repr(shown_url(value) if isinstance(value, str) else value)


def _listed(directory: str, entry: str) -> str:
    """A site's entry point as the listing names it (../../argocd/<site> from deploy/fleet/argocd)."""
    return os.path.relpath(entry, directory)


def _argocd_fleet(fleet: dict[str, FleetEntry], sites: dict[str, FleetEntry], cluster: ClusterLayer
                  ) -> dict[str, bytes]:
    repo = _shared(fleet, "repoUrl", lambda s: s.gitops.argocd.repo_url, "gitops.argocd.repoUrl")
    revision = _shared(fleet, "targetRevision", lambda s: s.gitops.argocd.target_revision,
                       "gitops.argocd.targetRevision")
    namespace = _shared(fleet, "namespace", lambda s: s.gitops.argocd.namespace, "gitops.argocd.namespace")
    listing = cluster.dirs.argo_listing
    projects = sorted({s.gitops.argocd.project for s in sites.values()} - {"default"})
    resources = [f"project-{p}.yaml" for p in projects] + [_listed(listing, f"deploy/argocd/{n}") for n in sites]
    files = {f"{listing}/project-{p}.yaml": _out(app_project(p, namespace, repo, {
        n: s for n, s in sites.items() if s.gitops.argocd.project == p})) for p in projects}
    if "argocd" in cluster.platform:
        resources.insert(0, "platform.yaml")
        files[f"{listing}/platform.yaml"] = _out(*_argocd_platform(repo, revision, namespace, cluster))
    files[f"{listing}/kustomization.yaml"] = _out({"apiVersion": KUSTOMIZE_API, "kind": "Kustomization",
                                                   "resources": resources})
    parent = obj("argoproj.io/v1alpha1", "Application", FLEET + cluster.suffix, namespace=namespace)
    parent["metadata"]["finalizers"] = [ARGO_FINALIZER]
    parent["spec"] = {
        "project": "default",
        "source": {"repoURL": repo, "targetRevision": revision, "path": listing},
        "destination": {**IN_CLUSTER, "namespace": namespace},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
    }
    files.update(_entry(cluster.dirs.argo_entry, parent))
    return files


def _argocd_platform(repo: str, revision: str, namespace: str, cluster: ClusterLayer) -> list[dict[str, Any]]:
    """The platform's project and Application: the controller (cluster-wide kinds included) and Argo CD's own
    repository credential, synced at wave -1, before every site (waves 0 and up)."""
    name = PLATFORM + cluster.suffix
    project = obj("argoproj.io/v1alpha1", "AppProject", name, namespace=namespace, annotations={SYNC_WAVE: "-2"})
    project["spec"] = {
        "description": "What the LiteLLM sites need from the platform: the sealed-secrets controller, git access",
        "sourceRepos": [repo],
        "destinations": [{**cluster.argo_destination, "namespace": ns}
                         for ns in (*cluster.platform_namespaces, namespace)],
        "clusterResourceWhitelist": [{"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition"},
                                     {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"},
                                     {"group": "rbac.authorization.k8s.io", "kind": "ClusterRoleBinding"}],
    }
    app = obj("argoproj.io/v1alpha1", "Application", name, namespace=namespace, annotations={SYNC_WAVE: "-1"})
    app["metadata"]["finalizers"] = [ARGO_FINALIZER]
    app["spec"] = {
        "project": name,
        "source": {"repoURL": repo, "targetRevision": revision, "path": f"{cluster.dirs.platform}/argocd"},
        "destination": {**cluster.argo_destination, "namespace": namespace},
        # never pruned: deleting the controller or the CRD would delete every site's Secret with it
        "syncPolicy": {"automated": {"prune": False, "selfHeal": True}, "syncOptions": ["ServerSideApply=true"]},
    }
    return [project, app]


def app_project(name: str, namespace: str, repo: str, sites: dict[str, FleetEntry]) -> dict[str, Any]:
    """The sites' own project: this repository only, their namespaces only, and of the cluster-wide kinds
    only the Namespace each overlay creates."""
    project = obj("argoproj.io/v1alpha1", "AppProject", name, namespace=namespace,
                  annotations={SYNC_WAVE: "-1"})  # before the Applications that name it
    project["spec"] = {
        "description": "LiteLLM sites rendered by the LiteLLM GitOps generator",
        "sourceRepos": [repo],
        "destinations": [{**s.gitops.argocd.destination.spec(), "namespace": s.namespace}
                         for _, s in sorted(sites.items())],
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
    }
    return project


def _flux_fleet(fleet: dict[str, FleetEntry], sites: dict[str, FleetEntry], cluster: ClusterLayer
                ) -> dict[str, bytes]:
    url = _shared(fleet, "url", lambda s: s.gitops.flux.url, "gitops.flux.url")
    branch = _shared(fleet, "branch", lambda s: s.gitops.flux.branch, "gitops.flux.branch")
    namespace = _shared(fleet, "namespace", lambda s: s.gitops.flux.namespace, "gitops.flux.namespace")
    secret = _shared(fleet, "secretRef", lambda s: s.gitops.flux.secret_ref, "gitops.flux.secretRef")
    platform = "flux" in cluster.platform
    listing = cluster.dirs.flux_listing
    patches = []
    for wave in sorted({site.rollout.wave for site in sites.values()}):
        before = previous_wave(sites, wave)
        if before or platform:
            # the wave's first stages wait for the app stage of every site of the wave before (healthy: its
            # Deployment Available), on top of their own chain setup -> migrate -> app, and for the platform.
            # One patch a wave, selected by label: one a site costs kustomize quadratic time in a fleet.
            depends = [{"name": _name(n)} for n in before] + ([{"name": PLATFORM}] if platform else [])
            patches.append({"target": {"group": "kustomize.toolkit.fluxcd.io", "kind": "Kustomization",
                                       "labelSelector": f"{STAGE_LABEL}=setup,{WAVE_LABEL}={wave}"},
                            "patch": dump([{"op": "add", "path": "/spec/dependsOn", "value": depends}])})
    doc: dict[str, Any] = {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization",
                           "resources": (["platform.yaml"] if platform else [])
                           + [_listed(listing, f"deploy/flux/{n}") for n in sites]}
    if patches:
        doc["patches"] = patches
    source = obj("source.toolkit.fluxcd.io/v1", "GitRepository", FLEET, namespace=namespace)
    source["spec"] = {"interval": "1m", "url": url, "ref": {"branch": branch}, **(
        {"secretRef": {"name": secret}} if secret else {})}
    parent = obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", FLEET, namespace=namespace)
    parent["spec"] = {"interval": "10m", "path": f"./{listing}", "prune": True,
                      "sourceRef": {"kind": "GitRepository", "name": FLEET}, "timeout": "5m"}
    files = {f"{listing}/kustomization.yaml": _out(doc), **_entry(cluster.dirs.flux_entry, source, parent)}
    if platform:  # the controller and Flux's git credential, Ready (wait) before any site's first stage
        first = obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", PLATFORM, namespace=namespace)
        first["spec"] = {"interval": "10m", "path": f"./{cluster.dirs.platform}/flux", "prune": False, "wait": True,
                         "sourceRef": {"kind": "GitRepository", "name": FLEET}, "timeout": "5m"}
        files[f"{listing}/platform.yaml"] = _out(first)
    return files


def _entry(directory: str, *docs: dict[str, Any]) -> dict[str, bytes]:
    return {f"{directory}/fleet.yaml": _out(*docs),
            f"{directory}/kustomization.yaml": _out({"apiVersion": KUSTOMIZE_API, "kind": "Kustomization",
                                                     "resources": ["fleet.yaml"]})}


def previous_wave(sites: dict[str, FleetEntry], wave: int) -> list[str]:
    """The sites of the nearest lower wave (none for the first)."""
    lower = [s.rollout.wave for s in sites.values() if s.rollout.wave < wave]
    if not lower:
        return []
    return [n for n, s in sites.items() if s.rollout.wave == max(lower)]
