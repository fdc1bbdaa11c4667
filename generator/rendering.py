"""`generator render`: load sites, render them (pure), then stage, validate and swap."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from generator.layout import BASE_DIR, FLEET_DIR, ROOT_KUSTOMIZATION, Repo, site_output_dirs
from generator.loader import load_site
from generator.progress import Progress
from generator.model import Site
from generator.render import render_base, render_fleet, render_site
from generator.secrets.keys import check_licensed
from generator.secrets.sealing import overlay_secret
from generator.writer import CREATED, DELETED, UPDATED, Plan, Scope, apply, locked, plan


@dataclass(frozen=True)
class RenderRequest:
    sites: tuple[str, ...]  # empty: every site
    check: bool = False
    dry_run: bool = False
    validate: bool = True
    verbose: bool = False


def desired_tree(repo: Repo, sites: dict[str, Site], *, everything: bool, seal: bool = True,
                 notes: list[str] | None = None, stale: list[str] | None = None) -> tuple[Scope, dict[str, bytes]]:
    """What the rendered tree should hold for these sites, and the part of the tree that covers."""
    files: dict[str, bytes] = dict(render_base())
    dirs: list[str] = [BASE_DIR]
    progress = Progress(len(sites), "rendered")
    for name, site in sites.items():
        secret = overlay_secret(repo, name, site, seal=seal)
        if secret.stale and stale is not None:
            stale.append(secret.stale)
        if notes is not None:
            notes.extend(f"warning: {w}" for w in secret.warnings)
            if secret.resealed:
                notes.append(f"sealed {len(secret.resealed)} key(s) of site {name} anew ({', '.join(secret.resealed)}); "
                             f"{len(secret.reused)} kept byte-identical")
        files.update(render_site(name, site, extra_resources=secret.files))
        dirs.extend(site_output_dirs(name))
        progress.advance(name)
    progress.close()
    if everything:
        dirs.extend(_orphans(repo, set(sites)))
        fleet = dict(sites)
    else:  # the fleet layer covers every site: the others are read too (an invalid one stops the render)
        fleet = {**{n: load_site(repo, n) for n in repo.site_names() if n not in sites}, **sites}
    files.update(render_fleet(fleet))
    return Scope(tuple(sorted({*dirs, FLEET_DIR})), (ROOT_KUSTOMIZATION,)), files


def _orphans(repo: Repo, live: set[str]) -> list[str]:
    """Output directories of sites that no longer exist: an --all render removes them."""
    found = []
    for parent in ("overlays", "deploy/flux", "deploy/argocd"):
        base = repo.root / parent
        if base.is_dir():
            found += [f"{parent}/{d.name}" for d in base.iterdir() if d.is_dir() and d.name not in live]
    return found


def run_render(repo: Repo, request: RenderRequest, out: TextIO = sys.stdout) -> int:
    names = list(request.sites) or repo.site_names()
    if not names:
        print("no sites: create sites/<name>/site.yaml first", file=out)
        return 2
    sites = {name: load_site(repo, name) for name in names}  # any invalid site stops here; nothing written
    for name, site in sites.items():
        check_licensed(repo, name, site)
    notes: list[str] = []
    stale: list[str] = []
    writing = not (request.check or request.dry_run)
    scope, desired = desired_tree(repo, sites, everything=not request.sites, seal=writing, notes=notes, stale=stale)
    for note in notes:
        print(note, file=sys.stderr)
    current_plan = plan(repo.root, scope, desired)
    if request.check:
        return _report_check(current_plan, out, stale)
    if request.dry_run:
        _report(current_plan, out, verbose=request.verbose, prefix="would be ")
        for reason in stale:
            print(f"would be resealed: {reason}", file=out)
        return 0
    validator = None
    if request.validate:
        from generator.validate import validate_tree

        validator = partial(validate_tree, sites=names, fleet=not request.sites)

    with locked(repo.work_dir):
        current_plan = plan(repo.root, scope, desired)  # re-plan under the lock: another render may have run
        apply(repo.root, repo.work_dir, scope, current_plan, validate=validator)
    _report(current_plan, out, verbose=request.verbose)
    return 0


def _report(the_plan: Plan, out: TextIO, *, verbose: bool, prefix: str = "") -> None:
    for change in the_plan.changes:
        if change.status in {CREATED, UPDATED, DELETED} or verbose:
            print(f"{prefix}{change.status:<9} {change.path}", file=out)
    counts = the_plan.counts()
    summary = ", ".join(f"{counts[k]} {prefix}{k}" for k in (CREATED, UPDATED, DELETED)) + f", {counts['unchanged']} unchanged"
    print(summary if the_plan.pending() else f"nothing to do: {counts['unchanged']} files up to date", file=out)


def _report_check(the_plan: Plan, out: TextIO, stale_secrets: list[str]) -> int:
    for reason in stale_secrets:
        print(f"stale: {reason}; run 'generator render' (needs the age key and kubeseal)", file=out)
    if not the_plan.pending() and not stale_secrets:
        print(f"up to date: {the_plan.counts()['unchanged']} files match their inputs", file=out)
        return 0
    out.write(the_plan.diff())
    if the_plan.pending():
        count = len(the_plan.pending())
        print(f"stale: {count} file(s) differ from what the site files produce; run 'generator render' and commit", file=out)
    return 1
