"""The fleet: what registers every site with each engine, owns the sites' entry points, and orders them.

Argo CD: a parent Application (``deploy/fleet/argocd-entry``, also the root kustomization.yaml's one resource:
``kubectl apply -k .``) syncs ``deploy/fleet/argocd/``: the AppProject(s) of the sites and every site's
Application, each annotated with its rollout wave as an Argo CD sync wave. The parent owns them: a site
deleted from git is pruned, and its Application's resources finalizer deletes its objects.

Flux: a parent GitRepository + Kustomization (``kubectl apply -k deploy/fleet/flux-entry``) applies
``deploy/fleet/flux/``: every site's source and Kustomizations, with each site's first stage made to depend
on the last stage of every site of the wave before. Pruning removes a deleted site the same way.

The waves are added here, by patches, so a site's own entry points depend on its site file alone.
"""

from __future__ import annotations

from typing import Any

from generator.redact import shown_url
from generator.errors import SiteError
from generator.layout import ARGO_ENTRY, ARGO_FLEET_DIR, FLUX_ENTRY, FLUX_FLEET_DIR
from generator.model import FleetEntry
from generator.render.common import obj, yaml_file
from generator.render.gitops import ARGO_FINALIZER, STAGE_LABEL, SYNC_WAVE, WAVE_LABEL
from generator.yamlio import dump

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
FLEET = "litellm-fleet"
PLATFORM = "litellm-platform"
SOURCE, COMMAND = "sites/*/site.yaml", "generator render --all"


def _name(site: str) -> str:
    return f"litellm-{site}"


def _out(*docs: Any) -> bytes:
    return yaml_file(SOURCE, COMMAND, *docs)


def render_fleet(sites: dict[str, FleetEntry], platform: set[str] = frozenset(), platform_namespaces: tuple[str, ...] = ()
                 ) -> dict[str, bytes]:
    """Every file of the fleet layer (and the root kustomization.yaml), for all the repository's sites.
    ``platform``: the engines with a platform folder to apply before every site (render/platform.py), into
    ``platform_namespaces``."""
    argo = {n: s for n, s in sorted(sites.items()) if s.gitops.argocd.enabled}
    flux = {n: s for n, s in sorted(sites.items()) if s.gitops.flux.enabled}
    files: dict[str, bytes] = {}
    root: list[str] = []
    if argo:
        files.update(_argocd_fleet(argo, "argocd" in platform, platform_namespaces))
        root.append(ARGO_ENTRY)
    if flux:
        files.update(_flux_fleet(flux, "flux" in platform))
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


def _argocd_fleet(sites: dict[str, FleetEntry], platform: bool, platform_namespaces: tuple[str, ...]) -> dict[str, bytes]:
    repo = _shared(sites, "repoUrl", lambda s: s.gitops.argocd.repo_url, "gitops.argocd.repoUrl")
    revision = _shared(sites, "targetRevision", lambda s: s.gitops.argocd.target_revision,
                       "gitops.argocd.targetRevision")
    namespace = _shared(sites, "namespace", lambda s: s.gitops.argocd.namespace, "gitops.argocd.namespace")
    projects = sorted({s.gitops.argocd.project for s in sites.values()} - {"default"})
    resources = [f"project-{p}.yaml" for p in projects] + [f"../../argocd/{n}" for n in sites]  # each with its wave
    files = {f"{ARGO_FLEET_DIR}/project-{p}.yaml": _out(app_project(p, namespace, repo, {
        n: s for n, s in sites.items() if s.gitops.argocd.project == p})) for p in projects}
    if platform:
        resources.insert(0, "platform.yaml")
        files[f"{ARGO_FLEET_DIR}/platform.yaml"] = _out(*_argocd_platform(repo, revision, namespace, platform_namespaces))
    files[f"{ARGO_FLEET_DIR}/kustomization.yaml"] = _out({"apiVersion": KUSTOMIZE_API, "kind": "Kustomization",
                                                         "resources": resources})
    parent = obj("argoproj.io/v1alpha1", "Application", FLEET, namespace=namespace)
    parent["metadata"]["finalizers"] = [ARGO_FINALIZER]
    parent["spec"] = {
        "project": "default",
        "source": {"repoURL": repo, "targetRevision": revision, "path": ARGO_FLEET_DIR},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
    }
    files.update(_entry(ARGO_ENTRY, parent))
    return files


def _argocd_platform(repo: str, revision: str, namespace: str, targets: tuple[str, ...]) -> list[dict[str, Any]]:
    """The platform's project and Application: the controller (cluster-wide kinds included) and Argo CD's own
    repository credential, synced at wave -1, before every site (waves 0 and up)."""
    project = obj("argoproj.io/v1alpha1", "AppProject", PLATFORM, namespace=namespace, annotations={SYNC_WAVE: "-2"})
    project["spec"] = {
        "description": "What the LiteLLM sites need from the platform: the sealed-secrets controller, git access",
        "sourceRepos": [repo],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": ns} for ns in (*targets, namespace)],
        "clusterResourceWhitelist": [{"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition"},
                                     {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"},
                                     {"group": "rbac.authorization.k8s.io", "kind": "ClusterRoleBinding"}],
    }
    app = obj("argoproj.io/v1alpha1", "Application", PLATFORM, namespace=namespace, annotations={SYNC_WAVE: "-1"})
    app["metadata"]["finalizers"] = [ARGO_FINALIZER]
    app["spec"] = {
        "project": PLATFORM,
        "source": {"repoURL": repo, "targetRevision": revision, "path": "deploy/platform/argocd"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
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
        "destinations": [{"server": s.gitops.argocd.destination.server, "namespace": s.namespace}
                         for _, s in sorted(sites.items())],
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
    }
    return project


def _flux_fleet(sites: dict[str, FleetEntry], platform: bool) -> dict[str, bytes]:
    url = _shared(sites, "url", lambda s: s.gitops.flux.url, "gitops.flux.url")
    branch = _shared(sites, "branch", lambda s: s.gitops.flux.branch, "gitops.flux.branch")
    namespace = _shared(sites, "namespace", lambda s: s.gitops.flux.namespace, "gitops.flux.namespace")
    secret = _shared(sites, "secretRef", lambda s: s.gitops.flux.secret_ref, "gitops.flux.secretRef")
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
                           "resources": (["platform.yaml"] if platform else []) + [f"../../flux/{n}" for n in sites]}
    if patches:
        doc["patches"] = patches
    source = obj("source.toolkit.fluxcd.io/v1", "GitRepository", FLEET, namespace=namespace)
    source["spec"] = {"interval": "1m", "url": url, "ref": {"branch": branch}, **(
        {"secretRef": {"name": secret}} if secret else {})}
    parent = obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", FLEET, namespace=namespace)
    parent["spec"] = {"interval": "10m", "path": f"./{FLUX_FLEET_DIR}", "prune": True,
                      "sourceRef": {"kind": "GitRepository", "name": FLEET}, "timeout": "5m"}
    files = {f"{FLUX_FLEET_DIR}/kustomization.yaml": _out(doc), **_entry(FLUX_ENTRY, source, parent)}
    if platform:  # the controller and Flux's git credential, Ready (wait) before any site's first stage
        first = obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", PLATFORM, namespace=namespace)
        first["spec"] = {"interval": "10m", "path": "./deploy/platform/flux", "prune": False, "wait": True,
                         "sourceRef": {"kind": "GitRepository", "name": FLEET}, "timeout": "5m"}
        files[f"{FLUX_FLEET_DIR}/platform.yaml"] = _out(first)
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
