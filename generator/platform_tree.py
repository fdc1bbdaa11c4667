"""The platform part of a render: what each site may assume of git access, and the ``deploy/platform/`` files."""

from __future__ import annotations

from generator.errors import SiteError
from generator.layout import Repo
from generator.loader import read_mapping
from generator.model import FleetEntry, Site
from generator.platform import ENGINE_CERT, GIT_SOPS_FILE, PlatformSettings
from generator.render.platform import ENGINE_DIRS, render_platform
from generator.secrets.credential import FLUX_SECRET, Engine, credential_store, engines_cert, sealed_credential
from generator.secrets.sealing import NeedsSealing
from generator.yamlio import line_of


def with_git_access(repo: Repo, name: str, site: Site, settings: PlatformSettings) -> Site:
    """The site as the engines will read its repository: a Flux GitRepository without a secretRef takes the
    sealed credential's Secret. An ssh:// repository with no credential at all is refused (exit 2)."""
    sealed = settings.git_credential == "sealed" and credential_store(repo).exists()
    flux, argo = site.gitops.flux, site.gitops.argocd
    if sealed and flux.enabled and flux.secret_ref is None:
        site = site.model_copy(update={"gitops": site.gitops.model_copy(update={
            "flux": flux.model_copy(update={"secret_ref": FLUX_SECRET})})})
    if settings.git_credential == "external" or sealed:
        return site
    way_out = ("run 'generator secrets git-credential --ssh-key FILE --known-hosts FILE' (sealed into deploy/platform/)"
               "{also}, or set gitCredential: external in platform.yaml (or use an https:// URL)")
    refusals = [
        (flux.enabled and flux.secret_ref is None, flux.url, ("gitops", "flux", "secretRef"),
         "source-controller answers \"invalid 'ssh' auth option: 'identity' is required\" and never fetches",
         ", name a Secret of your own in gitops.flux.secretRef"),
        (argo.enabled, argo.repo_url, ("gitops", "argocd", "repoUrl"), "Argo CD cannot read it", ""),
    ]
    for refused, url, field, why, also in refusals:
        if refused and url.startswith("ssh://"):
            shown = repo.rel(repo.site_file(name))
            tree = read_mapping(repo.site_file(name), shown, empty="file is empty", what="settings", root=repo.root)
            raise SiteError(shown, f"the ssh:// source {url} needs a credential and the repository holds none: {why}; "
                            + way_out.format(also=also), field=".".join(field), line=line_of(tree, field))
    return site


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
                    credentials[engine.name] = existing.read_bytes()
    sealed = any(s.secrets.mode == "sealed" for s in fleet.values())
    return render_platform(settings, sealed=sealed, engines=set(engines), credentials=credentials)
