"""`generator status`: the fleet at a glance, one row per site. Reads only; needs no age key and no network.

Reading (site file, sops key names, the committed SealedSecret) is kept apart from the pure summary and
formatting, so one broken site becomes one error row instead of stopping the whole status.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Literal, TextIO

from generator.errors import GeneratorError
from generator.layout import Repo
from generator.loader import load_site
from generator.model import PROXY_ADMIN_KEY, S3_SECRET_KEYS, Image, Site
from generator.output import Format, emit
from generator.secrets.keys import FILLED_BY_BOOTSTRAP
from generator.secrets.commands import sealed_doc
from generator.secrets.store import SecretsFile

BootstrapState = Literal["done", "partial", "not run"]
SHORT_DIGEST = len("sha256:") + 12
COLUMNS = ("SITE", "HOSTNAME", "IMAGE", "ROUTING", "SECRETS", "BOOTSTRAP", "ENGINES", "WAVE")


@dataclass(frozen=True)
class Secrets:
    present: list[str] = field(default_factory=list)  # required keys the sops file holds
    sealed: list[str] = field(default_factory=list)  # required keys the committed SealedSecret holds
    missing: list[str] = field(default_factory=list)  # required keys the sops file lacks


@dataclass(frozen=True)
class SiteStatus:
    """One row. Field order is the JSON key order; every field but ``site`` is None on an error row."""

    site: str
    hostname: str | None = None
    image: str | None = None
    routing: str | None = None
    secrets: Secrets | None = None
    bootstrap: BootstrapState | None = None
    engines: list[str] | None = None
    wave: int | None = None
    error: str | None = None


def run_status(repo: Repo, output: Format = "table", out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print every site's row (-o table, json or yaml); 1 when a site could not be read, else 0."""
    rows = [read_status(repo, name) for name in repo.site_names()]
    emit([asdict(row) for row in sorted(rows, key=lambda row: row.site)], output, lambda: format_table(rows), out)
    if not rows:
        print(f"no sites: {repo.rel(repo.sites_dir)}/ holds no <name>/site.yaml", file=err)
    failed = sum(1 for row in rows if row.error)
    if failed:
        print(f"{failed} of {len(rows)} site(s) could not be read (see the error {'column' if output in ('table', None) else 'field'})",
              file=err)
    return 1 if failed else 0


def read_status(repo: Repo, name: str) -> SiteStatus:
    try:
        site = load_site(repo, name)
        return summarise(name, site, SecretsFile(repo, name).key_names(), sealed_key_names(repo, name))
    except GeneratorError as exc:
        return SiteStatus(name, error=" ".join(exc.message.split()))


def sealed_key_names(repo: Repo, name: str) -> list[str]:
    """The keys of the committed SealedSecret's spec.encryptedData (none when it is absent)."""
    spec = sealed_doc(repo, name).get("spec")
    data = spec.get("encryptedData") if isinstance(spec, dict) else None
    return [str(key) for key in data] if isinstance(data, dict) else []


def summarise(name: str, site: Site, sops_keys: list[str], sealed_keys: list[str]) -> SiteStatus:
    required = site.secret_keys()
    present = [key for key in required if key in sops_keys]
    secrets = Secrets(present=present, sealed=[key for key in required if key in sealed_keys],
                      missing=[key for key in required if key not in sops_keys])
    engines = [engine for engine, on in (("flux", site.gitops.flux.enabled), ("argocd", site.gitops.argocd.enabled))
               if on]
    return SiteStatus(name, hostname=site.host, image=image_label(site.image), routing=site.routing.type,
                      secrets=secrets, bootstrap=bootstrap_state(site, present), engines=engines,
                      wave=site.rollout.wave)


def image_label(image: Image) -> str:
    """The tag, the digest shortened to sha256:<12 hex>, or both as tag@digest."""
    short = image.digest[:SHORT_DIGEST] if image.digest else None
    return "@".join(part for part in (image.tag, short) if part)


def bootstrap_state(site: Site, present: list[str]) -> BootstrapState:
    """From the keys 'generator bootstrap' stores in sops (the S3 pair only when the cache is on)."""
    needed = [key for key in FILLED_BY_BOOTSTRAP if (site.cache.enabled or key not in S3_SECRET_KEYS)
              and (site.keycloak.proxy_admin or key != PROXY_ADMIN_KEY)]
    found = sum(1 for key in needed if key in present)
    return "done" if found == len(needed) else "partial" if found else "not run"


def format_table(rows: list[SiteStatus]) -> str:
    with_error = any(row.error for row in rows)
    header = (*COLUMNS, "ERROR") if with_error else COLUMNS
    lines = [header, *(_cells(row, with_error) for row in sorted(rows, key=lambda row: row.site))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(line, widths)), line[-1]]).rstrip()
                     for line in lines)


def _cells(row: SiteStatus, with_error: bool) -> tuple[str, ...]:
    secrets = (f"{len(row.secrets.present)} present, {len(row.secrets.sealed)} sealed, "
               f"{len(row.secrets.missing)} missing") if row.secrets else None
    engines = (",".join(row.engines) or "none") if row.engines is not None else None
    cells = (row.site, row.hostname, row.image, row.routing, secrets, row.bootstrap, engines,
             None if row.wave is None else str(row.wave))
    shown = tuple(cell if cell is not None else "-" for cell in cells)
    return (*shown, row.error or "") if with_error else shown
