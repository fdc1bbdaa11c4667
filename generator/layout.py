"""Where things live in a GitOps repository managed by the generator."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from generator.redact import shown_text
from generator.errors import UsageError

KNOWN_SHOWN = 10  # sites an unknown-name error lists (a fleet has hundreds)
SITE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


@dataclass(frozen=True)
class Repo:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> "Repo":
        """The nearest directory at or above ``start`` (default: $GENERATOR_REPO or cwd) holding ``sites/``."""
        env_root = os.environ.get("GENERATOR_REPO")
        here = Path(start or env_root or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / "sites").is_dir():
                return cls(candidate)
        raise UsageError(f"{here}: not inside a generator repository (no sites/ directory here or above)")

    @property
    def sites_dir(self) -> Path:
        return self.root / "sites"

    @property
    def work_dir(self) -> Path:
        """Scratch space for staging and the lock; ignored by git."""
        return self.root / ".generator"

    def site_dir(self, site: str) -> Path:
        return self.sites_dir / site

    def site_file(self, site: str) -> Path:
        return self.site_dir(site) / "site.yaml"

    def site_names(self) -> list[str]:
        """Every directory of sites/ that holds a site.yaml (plain strings: a fleet has hundreds)."""
        try:
            with os.scandir(self.sites_dir) as entries:
                return sorted(e.name for e in entries if os.path.isfile(os.path.join(e.path, "site.yaml")))
        except (NotADirectoryError, FileNotFoundError):
            return []

    def check_site_name(self, site: str) -> None:
        if not SITE_NAME.match(site):
            raise UsageError(f"site name {shown_text(site)} is invalid: use lowercase letters, digits and '-' (at most 40)")
        if not os.path.isfile(os.path.join(self.root, "sites", site, "site.yaml")):
            names = self.site_names()
            more = f" and {len(names) - KNOWN_SHOWN} more" if len(names) > KNOWN_SHOWN else ""
            known = ", ".join(names[:KNOWN_SHOWN]) + more or "none"
            where = self.rel(self.site_file(site)) if shown_text(site) == repr(site) else "sites/"
            raise UsageError(f"{where}: unknown site {shown_text(site)} (known sites: {known})")

    def rel(self, path: Path) -> str:
        """The path as the user knows it, relative to the repository (a symlink is not followed)."""
        for candidate in (Path(os.path.abspath(path)), path.resolve()):
            try:
                return str(candidate.relative_to(self.root))
            except ValueError:
                continue
        return str(path)


# Output roots, relative to the repository root. A site owns its three directories whole;
# the base and the root kustomization are shared by every site.
BASE_DIR = "base"
ROOT_KUSTOMIZATION = "kustomization.yaml"
FLEET_DIR = "deploy/fleet"  # the fleet layer (render/fleet.py): every site's registration and waves
ARGO_FLEET_DIR, FLUX_FLEET_DIR = f"{FLEET_DIR}/argocd", f"{FLEET_DIR}/flux"
ARGO_ENTRY, FLUX_ENTRY = f"{FLEET_DIR}/argocd-entry", f"{FLEET_DIR}/flux-entry"  # the parents: applied by hand, once
PLATFORM_OUTPUT_DIR = "deploy/platform"  # what a stock Thinkube lacks (render/platform.py)
# with several clusters (platform.yaml `clusters`), each has the fleet and platform layers above of its own
CLUSTERS_DIR = "deploy/clusters"


@dataclass(frozen=True)
class ClusterDirs:
    """Where one cluster's fleet and platform layers live: today's deploy/fleet and deploy/platform for the one
    cluster of a repository, deploy/clusters/<name>/ for each of several."""

    fleet: str = FLEET_DIR
    platform: str = PLATFORM_OUTPUT_DIR

    @classmethod
    def of(cls, cluster: str, *, multi: bool) -> "ClusterDirs":
        return cls(f"{CLUSTERS_DIR}/{cluster}", f"{CLUSTERS_DIR}/{cluster}/platform") if multi else cls()

    @property
    def argo_listing(self) -> str:
        return f"{self.fleet}/argocd"

    @property
    def flux_listing(self) -> str:
        return f"{self.fleet}/flux"

    @property
    def argo_entry(self) -> str:
        return f"{self.fleet}/argocd-entry"

    @property
    def flux_entry(self) -> str:
        return f"{self.fleet}/flux-entry"


def site_output_dirs(site: str) -> tuple[str, ...]:
    return (f"overlays/{site}", f"deploy/flux/{site}", f"deploy/argocd/{site}")
