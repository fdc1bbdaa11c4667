"""GitOps entry points: Flux GitRepository + Kustomization and an Argo CD Application per site,
and the root kustomization.yaml that registers every site's Application (the app-of-apps)."""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import APP, obj, yaml_file

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"


def _name(site_name: str) -> str:
    return f"litellm-{site_name}"


def render_site_entry_points(name: str, site: Site, source: str, command: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if site.gitops.flux.enabled:
        files[f"deploy/flux/{name}/source.yaml"] = yaml_file(source, command, flux_source(name, site))
        files[f"deploy/flux/{name}/litellm.yaml"] = yaml_file(source, command, flux_kustomization(name, site))
        files[f"deploy/flux/{name}/kustomization.yaml"] = yaml_file(
            source, command, {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": ["source.yaml", "litellm.yaml"]}
        )
    if site.gitops.argocd.enabled:
        files[f"deploy/argocd/{name}/application.yaml"] = yaml_file(source, command, argocd_application(name, site))
        files[f"deploy/argocd/{name}/kustomization.yaml"] = yaml_file(
            source, command, {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": ["application.yaml"]}
        )
    return files


def flux_source(name: str, site: Site) -> dict[str, Any]:
    flux = site.gitops.flux
    repo = obj("source.toolkit.fluxcd.io/v1", "GitRepository", _name(name), namespace=flux.namespace)
    spec: dict[str, Any] = {"interval": flux.interval, "url": flux.url, "ref": {"branch": flux.branch}}
    if flux.secret_ref:
        spec["secretRef"] = {"name": flux.secret_ref}
    repo["spec"] = spec
    return repo


def flux_kustomization(name: str, site: Site) -> dict[str, Any]:
    flux = site.gitops.flux
    ks = obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", _name(name), namespace=flux.namespace)
    spec: dict[str, Any] = {
        "interval": flux.sync_interval,
        "path": f"./overlays/{name}",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": _name(name)},
        "timeout": flux.timeout,
        # healthChecks rather than wait: a SealedSecret's health can keep `wait` hanging.
        "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": APP, "namespace": site.namespace}],
    }
    if site.secrets.mode == "sops":
        spec["decryption"] = {"provider": "sops", "secretRef": {"name": site.secrets.flux_decryption_secret}}
    ks["spec"] = spec
    return ks


def argocd_application(name: str, site: Site) -> dict[str, Any]:
    argo = site.gitops.argocd
    app = obj("argoproj.io/v1alpha1", "Application", _name(name), namespace=argo.namespace)
    app["spec"] = {
        "project": argo.project,
        "source": {"repoURL": argo.repo_url, "targetRevision": argo.target_revision, "path": f"overlays/{name}"},
        "destination": {"server": argo.destination.server, "namespace": site.namespace},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
    }
    return app


def render_fleet_index(argocd_sites: list[str]) -> dict[str, bytes]:
    """The root kustomization.yaml: `kubectl apply -k .` on the Argo CD cluster registers every site."""
    doc = {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "resources": [f"deploy/argocd/{name}" for name in sorted(argocd_sites)],
    }
    return {"kustomization.yaml": yaml_file("sites/*/site.yaml", "generator render --all", doc)}
