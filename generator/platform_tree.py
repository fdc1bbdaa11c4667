"""The platform part of a render: the ``deploy/platform/`` files, with the engines' sealed git credential."""

from __future__ import annotations

from generator.layout import Repo
from generator.model import FleetEntry
from generator.platform import ENGINE_CERT, GIT_SOPS_FILE, PlatformSettings
from generator.render.platform import ENGINE_DIRS, render_platform
from generator.secrets.credential import Engine, engines_cert, sealed_credential
from generator.secrets.sealing import NeedsSealing, committed_bytes
from generator.secrets.store import credential_store


def platform_files(repo: Repo, fleet: dict[str, FleetEntry], settings: PlatformSettings, *, seal: bool,
                   stale: list[str] | None) -> dict[str, bytes]:
    engines: dict[str, Engine] = {}
    argo = [s for s in fleet.values() if s.gitops.argocd.enabled]
    flux = [s for s in fleet.values() if s.gitops.flux.enabled]
    if argo:
        engines["argocd"] = Engine("argocd", argo[0].gitops.argocd.namespace, argo[0].gitops.argocd.repo_url)
    if flux:
        engines["flux"] = Engine("flux", flux[0].gitops.flux.namespace, flux[0].gitops.flux.url)
    credentials: dict[str, bytes] = {}
    if settings.git_credential == "sealed" and credential_store(repo).exists() and engines:
        certs = {n: repo.site_dir(n) / "sealing-cert.pem" for n, s in fleet.items() if s.secrets.mode == "sealed"}
        cert = engines_cert(repo, certs)
        for engine in engines.values():
            existing = repo.root / ENGINE_DIRS[engine.name] / "credential.yaml"
            try:
                credentials[engine.name] = sealed_credential(repo, engine, cert, existing, seal=seal)
            except NeedsSealing as exc:
                if stale is not None:
                    stale.append(f"{exc} ({GIT_SOPS_FILE}, {ENGINE_CERT})")
                if existing.is_file():
                    credentials[engine.name] = committed_bytes(existing)
    sealed = any(s.secrets.mode == "sealed" for s in fleet.values())
    return render_platform(settings, sealed=sealed, engines=set(engines), credentials=credentials)
