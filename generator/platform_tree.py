"""The platform part of a render: the ``deploy/platform/`` files (one cluster's, or each of several clusters'
``deploy/clusters/<name>/platform/``), with the engines' sealed git credential."""

from __future__ import annotations

from generator.layout import ClusterDirs, Repo
from generator.model import FleetEntry
from generator.platform import ENGINE_CERT, GIT_SOPS_FILE, PLATFORM_DIR, PlatformSettings
from generator.render.platform import render_platform
from generator.secrets.credential import Engine, engines_cert, sealed_credential
from generator.secrets.sealing import NeedsSealing, committed_bytes
from generator.secrets.store import credential_store


def cluster_cert(cluster: str) -> str:
    """The certificate of one of several clusters' sealed-secrets controller, for its engines' credential."""
    return f"{PLATFORM_DIR}/clusters/{cluster}/sealing-cert.pem"


def platform_files(repo: Repo, fleet: dict[str, FleetEntry], settings: PlatformSettings, *, seal: bool,
                   stale: list[str] | None, cluster: str | None = None, dirs: ClusterDirs = ClusterDirs()
                   ) -> dict[str, bytes]:
    """The platform folder of ``cluster`` (None: the one cluster of the repository), for its sites in ``fleet``;
    the engines are those any site of the repository enables, so every cluster's entries have the same shape."""
    engines: dict[str, Engine] = {}
    argo = [s for s in fleet.values() if s.gitops.argocd.enabled]
    flux = [s for s in fleet.values() if s.gitops.flux.enabled]
    if argo:
        engines["argocd"] = Engine("argocd", argo[0].gitops.argocd.namespace, argo[0].gitops.argocd.repo_url)
    if flux:
        engines["flux"] = Engine("flux", flux[0].gitops.flux.namespace, flux[0].gitops.flux.url)
    mine = fleet if cluster is None else {n: s for n, s in fleet.items() if s.cluster == cluster}
    credentials: dict[str, bytes] = {}
    sealing = {n: repo.site_dir(n) / "sealing-cert.pem" for n, s in mine.items() if s.secrets.mode == "sealed"}
    own = ENGINE_CERT if cluster is None else cluster_cert(cluster)
    if settings.git_credential == "sealed" and credential_store(repo).exists() and engines and (
            cluster is None or sealing or (repo.root / own).is_file()):  # a cluster without sites needs none
        cert = engines_cert(repo, sealing, own=own)
        # a hub's Argo CD keeps its repository credential where it runs: only a cluster's own Argo CD gets it
        remote = cluster is not None and settings.cluster(cluster).argocd.destination.spec() != {
            "server": "https://kubernetes.default.svc"}
        for engine in engines.values():
            if engine.name == "argocd" and remote:
                continue
            existing = repo.root / dirs.platform / engine.name / "credential.yaml"
            try:
                credentials[engine.name] = sealed_credential(repo, engine, cert, existing, seal=seal)
            except NeedsSealing as exc:
                if stale is not None:
                    stale.append(f"{exc} ({GIT_SOPS_FILE}, {own})")
                if existing.is_file():
                    credentials[engine.name] = committed_bytes(existing)
    sealed = any(s.secrets.mode == "sealed" for s in mine.values())
    return render_platform(settings.sealed_secrets_of(cluster), sealed=sealed, engines=set(engines),
                           credentials=credentials, directory=dirs.platform)
