"""GitOps entry points of one site: a Flux GitRepository + Kustomizations and an Argo CD Application
(render/fleet.py registers them all and orders them)."""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import APP, obj, yaml_file
from generator.render.migration import JOB_NAME

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
# Argo CD's foreground form (pkg/apis/application/v1alpha1): the bare resources-finalizer.argocd.argoproj.io
# works too, but the API server warns on a finalizer name without a path
ARGO_FINALIZER = "resources-finalizer.argocd.argoproj.io/foreground"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
STAGE_LABEL, WAVE_LABEL = "litellm-gitops.io/stage", "litellm-gitops.io/wave"


def _name(site_name: str) -> str:
    return f"litellm-{site_name}"


def render_site_entry_points(name: str, site: Site, source: str, command: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if site.gitops.flux.enabled:
        files[f"deploy/flux/{name}/source.yaml"] = yaml_file(source, command, flux_source(name, site))
        files[f"deploy/flux/{name}/litellm.yaml"] = yaml_file(source, command, *flux_kustomizations(name, site))
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


def flux_kustomizations(name: str, site: Site) -> list[dict[str, Any]]:
    """One Flux Kustomization per overlay stage, chained with dependsOn: the namespace and the Secret,
    then the migration Job (healthy once it has completed), then the app (healthy once it is Available)."""
    flux = site.gitops.flux
    setup = _flux_stage(name, site, "setup", f"{_name(name)}-setup", depends_on=None, timeout=flux.timeout)
    if site.secrets.mode == "sops":
        setup["spec"]["decryption"] = {"provider": "sops", "secretRef": {"name": site.secrets.flux_decryption_secret}}
    migrate = _flux_stage(name, site, "migrate", f"{_name(name)}-migrate", depends_on=f"{_name(name)}-setup",
                          timeout=f"{site.migration.deadline_seconds + 60}s")
    # A Job's pod template is immutable: a new image replaces the Job, and so reruns the migration.
    migrate["spec"]["force"] = True
    migrate["spec"]["healthChecks"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": JOB_NAME,
                                        "namespace": site.namespace}]
    app = _flux_stage(name, site, "app", _name(name), depends_on=f"{_name(name)}-migrate", timeout=flux.timeout)
    # healthChecks rather than wait: a SealedSecret's health can keep `wait` hanging.
    app["spec"]["healthChecks"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": APP,
                                    "namespace": site.namespace}]
    return [setup, migrate, app]


def _flux_stage(name: str, site: Site, stage: str, ks_name: str, *, depends_on: str | None,
                timeout: str) -> dict[str, Any]:
    flux = site.gitops.flux
    # the fleet selects each wave's first stages by these labels (one patch a wave, render/fleet.py)
    ks = obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ks_name, namespace=flux.namespace,
             labels={STAGE_LABEL: stage, WAVE_LABEL: str(site.rollout.wave)})
    spec: dict[str, Any] = {}
    if depends_on:
        spec["dependsOn"] = [{"name": depends_on}]
    spec.update({
        "interval": flux.sync_interval,
        "path": f"./overlays/{name}/{stage}",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": _name(name)},
        "timeout": timeout,
    })
    ks["spec"] = spec
    return ks


def argocd_application(name: str, site: Site) -> dict[str, Any]:
    argo = site.gitops.argocd
    # the wave orders it in the fleet's parent Application; registered alone, the annotation does nothing
    app = obj("argoproj.io/v1alpha1", "Application", _name(name), namespace=argo.namespace,
              annotations={SYNC_WAVE: str(site.rollout.wave)})
    # deleting the Application (a site removed from git, pruned by the fleet) deletes the site's objects first
    app["metadata"]["finalizers"] = [ARGO_FINALIZER]
    sync_options = ["CreateNamespace=true"]
    spec: dict[str, Any] = {
        "project": argo.project,
        "source": {"repoURL": argo.repo_url, "targetRevision": argo.target_revision, "path": f"overlays/{name}"},
        "destination": {**argo.destination.spec(), "namespace": site.namespace},
    }
    if site.platform_owns_replicas or site.hpa.enabled:
        # The tree has no spec.replicas; this also keeps self-heal off a count that thinkube-control
        # or the HPA set, and a sync from writing one back (RespectIgnoreDifferences).
        spec["ignoreDifferences"] = [{"group": "apps", "kind": "Deployment", "name": APP,
                                      "namespace": site.namespace, "jsonPointers": ["/spec/replicas"]}]
        sync_options.append("RespectIgnoreDifferences=true")
    spec["syncPolicy"] = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": sync_options}
    app["spec"] = spec
    return app
