"""``generator adopt --site NAME``: read the original install, check what it maps to, then write the site.

Everything that can fail on the input is done before the first write: reading (the input gate, base64, the
config's YAML), mapping, and building the site model from the file about to be written. Then the site file (the
``adopted.yaml.j2`` template: only what differs from the defaults, commented), the ``.sops.yaml`` rule, the
sealing certificate and the sops file holding the original's values; a failure there undoes every step.
Exit 0 when everything was carried, 1 when something was left behind (listed with its file and line), 2 for bad
input (nothing written), 3 when the cluster cannot be read.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined

from generator.adopt.mapping import adopt_objects, required_s3
from generator.adopt.originals import SECRET, Originals, read_cluster, read_dump
from generator.adopt.result import Adoption, nested
from generator.adopt.takeover import takeover_steps
from generator.errors import SiteError, UsageError
from generator.layout import SITE_NAME, Repo
from generator.model import Site
from generator.output import Format, emit
from generator.tools.kubectl import Cluster
from generator.yamlio import dump

ORDER = ("domain", "hostname", "namespace", "keepNamespace", "image", "resources", "priorityClassName", "pod", "routing", "keycloak",
         "ui", "postgres", "s3", "cache", "generalSettings", "models", "router", "passThroughEndpoints", "extraEnv",
         "discovery")


@dataclass(frozen=True)
class AdoptRequest:
    site: str
    manifests: Path | None = None  # a saved dump; else the cluster
    cluster: Cluster | None = None
    namespace: str | None = None
    recipients: tuple[str, ...] = ()
    cert: Path | None = None
    dry_run: bool = False
    output: Format = "table"  # -o: the report as a table, or its rows as JSON or YAML (the other lines on stderr)


@dataclass(frozen=True)
class Section:
    whys: list[str]
    text: str


def read_originals(request: AdoptRequest) -> Originals:
    if request.manifests is not None:
        return read_dump(request.manifests, request.namespace)
    return read_cluster(request.cluster or Cluster(), request.namespace or "litellm")


def site_text(repo: Repo, name: str, adoption: Adoption, source: str) -> str:
    from generator.scaffold import NewSite, _fleet_git  # site new's choice of repository, shared on purpose

    by_key: dict[str, list] = {}
    for setting in adoption.settings:
        by_key.setdefault(setting.path[0], []).append(setting)
    keys = sorted(by_key, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
    sections = [Section(list(dict.fromkeys(s.why for s in by_key[key])), dump(nested(by_key[key])).rstrip("\n"))
                for key in keys]
    env = Environment(loader=PackageLoader("generator", "templates/site"), undefined=StrictUndefined,
                      keep_trailing_newline=True, autoescape=False)
    git = _fleet_git(repo, NewSite(name, str(nested(adoption.settings).get("domain", "example.com"))))
    return env.get_template("adopted.yaml.j2").render(name=name, source=source, sections=sections, **git)


def _checked(repo: Repo, name: str, adoption: Adoption, source: str, shown: str) -> tuple[str, Site]:
    """The site file about to be written and its model. A setting the model refuses (an original's value outside
    what the model takes) is left behind with the model's reason, the rest is kept."""
    from pydantic import ValidationError

    from generator.loader import site_from_text

    try:
        text = site_text(repo, name, adoption, source)
        return text, site_from_text(text, shown)
    except SiteError:
        pass
    base = {"domain": nested(adoption.settings).get("domain")}
    for setting in list(adoption.settings):
        try:
            Site.model_validate({**base, **nested([setting])})
        except ValidationError as exc:
            adoption.settings.remove(setting)
            problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
            adoption.leave(setting.why, f"{'.'.join(setting.path)}: {problem}; left at the default")
    text = site_text(repo, name, adoption, source)
    return text, site_from_text(text, shown)  # what still fails is a rule across settings: exit 2 naming it


def run_adopt(repo: Repo, request: AdoptRequest, out: TextIO = sys.stdout) -> int:
    if not SITE_NAME.match(request.site):
        raise UsageError(f"site name {request.site!r} is invalid: use lowercase letters, digits and '-' (at most 40)")
    target = repo.site_file(request.site)
    if target.parent.exists():
        raise UsageError(f"{repo.rel(target.parent)} exists: adopt makes a new site (remove it first: "
                         f"generator site remove {request.site})")
    originals = read_originals(request)
    adoption = adopt_objects(originals)
    shown = repo.rel(target)
    text, site = _checked(repo, request.site, adoption, originals.shown, shown)
    if site.cache.enabled and required_s3(adoption):
        secret = originals.secret
        raise SiteError(secret.shown, f"has no {', '.join(required_s3(adoption))}: the cache needs the original's "
                        "S3 credentials", field=f"{secret.ident} data", line=secret.line("data"))
    steps = takeover_steps(originals, site)
    notes = out if request.output == "table" else sys.stderr  # with -o json|yaml, stdout holds the rows alone
    report = _report(adoption, steps)
    if request.output != "table":
        emit(report_rows(adoption, steps), request.output, lambda: report, out)
    elif report:
        print(report, file=out)
    if request.dry_run:
        print(f"dry run: would write {shown} and sites/{request.site}/secrets.sops.yaml "
              f"({len(adoption.secrets)} keys of {SECRET})", file=notes)
        return 1 if adoption.left else 0
    _write(repo, request, text, adoption, originals, notes)
    print(f"next: run the 'before' commands, generator render --site {request.site}, review and commit; "
          "run the 'after' commands once the first sync is healthy", file=notes)
    return 1 if adoption.left else 0


def report_rows(adoption: Adoption, steps: list) -> list[dict[str, str]]:
    """The report's rows, in the table's order: what changed, what each object needs (and the command), what was
    left behind."""
    return ([{"status": "changed", "where": n.where, "what": n.what, "command": ""} for n in adoption.changed]
            + [{"status": s.when, "where": "", "what": s.what, "command": s.command} for s in steps]
            + [{"status": "left", "where": n.where, "what": n.what, "command": ""} for n in adoption.left])


def _report(adoption: Adoption, steps: list) -> str:
    lines = []
    for note in adoption.changed:
        lines.append(f"changed   {note.where}: {note.what}")
    for step in steps:
        lines.append(step.line())
    for note in adoption.left:
        lines.append(f"left      {note.where}: {note.what}")
    if adoption.left:
        lines.append(f"{len(adoption.left)} item(s) of the original are not in the site: carry them by hand or "
                     "accept their loss")
    return "\n".join(lines)


def _write(repo: Repo, request: AdoptRequest, text: str, adoption: Adoption, originals: Originals,
           out: TextIO) -> None:
    from generator.scaffold import NewSite, sops_rule
    from generator.secrets.commands import cert_import
    from generator.secrets.store import SecretsFile

    target = repo.site_file(request.site)
    sops_config = repo.root / ".sops.yaml"
    before = sops_config.read_bytes() if sops_config.is_file() else None
    try:
        # the rule first: without --age-recipient it only checks that one matches, before anything is written
        sops_rule(repo, NewSite(request.site, "example.com", recipients=request.recipients), out)
        target.parent.mkdir(parents=True)
        target.write_text(text)
        print(f"created   {repo.rel(target)} ({len(adoption.settings)} settings differ from the defaults)", file=out)
        if request.cert is not None:
            cert_import(repo, request.site, request.cert, out)
        store = SecretsFile(repo, request.site)
        keys = store.adopt(adoption.secrets, f"{originals.shown}: Secret {originals.namespace}/{SECRET}")
        print(f"created   {store.rel} (the original's {', '.join(keys)})", file=out)
    except BaseException:
        shutil.rmtree(target.parent, ignore_errors=True)
        if before is not None:
            sops_config.write_bytes(before)
        raise
