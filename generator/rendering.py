"""`generator render`: survey what changed, load and check it (the loader), seal each site's secret and render
its files (pure), render the fleet and platform layers, then report a check or a dry run, or stage, validate and
swap the tree (the writer) and record it (the render cache). ``run_render`` reads in that order."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from generator.conflicts import check_conflicts
from generator.errors import GeneratorError
from generator.inputs import reading_once
from generator.layout import BASE_DIR, CLUSTERS_DIR, FLEET_DIR, ROOT_KUSTOMIZATION, ClusterDirs, Repo, site_output_dirs
from generator.loader import load_platform, load_site_for_engines, load_site_to_render, place_site, with_git_access
from generator.model import FleetEntry, Site
from generator.platform import PlatformSettings, platform_namespaces
from generator.platform_tree import platform_files
from generator.progress import Progress
from generator.render import render_base, render_site
from generator.render.fleet import ClusterLayer, render_clusters
from generator.render.platform import PLATFORM_DIR, platform_engines
from generator.render_cache import RenderCache, Survey, orphans, survey
from generator.secrets.sealing import overlay_secret
from generator.writer import CREATED, DELETED, UPDATED, Plan, Scope, apply, locked, plan


@dataclass(frozen=True)
class RenderRequest:
    sites: tuple[str, ...]  # empty: every site
    check: bool = False
    dry_run: bool = False
    validate: bool = True
    verbose: bool = False


@dataclass
class SiteRender:
    """What rendering one site produced: its model, its files and what sealing its secret did."""

    name: str
    site: Site
    files: dict[str, bytes]
    warnings: list[str] = field(default_factory=list)
    resealed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    stale: str | None = None


def run_render(repo: Repo, request: RenderRequest, out: TextIO = sys.stdout, known: Survey | None = None) -> int:
    """Survey, load, model, seal and render (pure) what changed; then report a check or a dry run, or stage,
    validate and swap the tree and record what it now holds. Each input file is read once, through the input
    gate: the survey's hash, the loader's parse and the sealing's decrypt share the bytes."""
    with reading_once():
        return _run_render(repo, request, out, known)


def _run_render(repo: Repo, request: RenderRequest, out: TextIO, known: Survey | None) -> int:
    names = list(request.sites) or repo.site_names()
    if not names:
        print("no sites: create sites/<name>/site.yaml first", file=out)
        return 2
    for name in names:
        repo.check_site_name(name)
    writing = not (request.check or request.dry_run)
    known = known or survey(repo, request.sites)  # survey: which sites' inputs changed since their last render
    settings = load_platform(repo)  # load: the repository's settings (the sites are loaded by render_one)
    changed = [name for name in names if name not in known.fresh]
    rendered = render_many(repo, changed, seal=writing, settings=settings)  # any invalid site stops here; nothing written
    fleet = _fleet(repo, known, rendered, settings)
    notes: list[str] = []
    stale: list[str] = []
    scope, desired = _tree(repo, rendered, fleet, settings, everything=not request.sites, seal=writing, notes=notes,
                           stale=stale)
    for note in notes:
        print(note, file=sys.stderr)
    kept = sum(len(known.fresh[name]["files"]) for name in names if name in known.fresh)  # outside the scope, untouched
    if request.check:  # read-only: a check records nothing, not even in the cache (a hook, a clean CI clone)
        return _report_check(plan(repo.root, scope, desired), out, stale, kept)
    if request.dry_run:
        _report(plan(repo.root, scope, desired), out, verbose=request.verbose, prefix="would be ", kept=kept)
        for reason in stale:
            print(f"would be resealed: {reason}", file=out)
        return 0
    written = _write(repo, scope, desired, known, rendered, validate=changed if request.validate else None,
                     everything=not request.sites)
    _report(written, out, verbose=request.verbose, kept=kept)
    return 0


POOL_FROM = 8  # sites: below this, starting the workers costs more than it saves


def render_many(repo: Repo, names: list[str], *, seal: bool, settings: PlatformSettings) -> dict[str, SiteRender]:
    """Every named site, spread over the cores when there are many (sealing calls kubeseal once per site).
    Every failure is raised at once, in name order, so one run names every broken site."""
    workers = min(2 * (os.cpu_count() or 1), len(names))  # twice the cores: sealing mostly waits on sops and kubeseal
    progress = Progress(len(names), "rendered")
    results: dict[str, SiteRender | tuple[int, str]] = {}
    try:
        if (os.cpu_count() or 1) < 2 or len(names) < POOL_FROM:
            for name in names:
                results[name] = _render_or_failure(repo, name, seal, settings)
                progress.advance(name)
        else:
            import multiprocessing  # here, not above: a render of one changed site starts no pool
            from concurrent.futures import ProcessPoolExecutor, as_completed

            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(_render_in_worker, str(repo.root), name, seal, settings): name for name in names}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    progress.advance(futures[future])
    finally:
        progress.close()
    failed = [results[name] for name in names if isinstance(results[name], tuple)]
    if failed:  # every broken site is named, in name order, each problem on its own line
        error = GeneratorError("\n".join(message for _, message in failed))  # type: ignore[misc]
        error.exit_code = max(code for code, _ in failed)  # type: ignore[misc]
        raise error
    return {name: outcome for name, outcome in results.items() if isinstance(outcome, SiteRender)}


def _render_in_worker(root: str, name: str, seal: bool, settings: PlatformSettings) -> SiteRender | tuple[int, str]:
    """A pool worker's share; an expected failure travels back as (exit status, message)."""
    return _render_or_failure(Repo(Path(root)), name, seal, settings)


def _render_or_failure(repo: Repo, name: str, seal: bool, settings: PlatformSettings) -> SiteRender | tuple[int, str]:
    try:
        return render_one(repo, name, seal=seal, settings=settings)
    except GeneratorError as exc:
        return exc.exit_code, exc.message


def render_one(repo: Repo, name: str, *, seal: bool, settings: PlatformSettings, site: Site | None = None) -> SiteRender:
    """One site, whole: read and check it, seal its secret (only the keys that changed), render its files."""
    site = (load_site_to_render(repo, name, settings) if site is None
            else with_git_access(repo, name, place_site(repo, name, site, settings), settings))
    secret = overlay_secret(repo, name, site, seal=seal)
    files = render_site(name, site, extra_resources=secret.files)
    return SiteRender(name, site, files, secret.warnings, secret.resealed, secret.reused, secret.stale)


def _fleet(repo: Repo, known: Survey, rendered: dict[str, SiteRender], settings: PlatformSettings
           ) -> dict[str, FleetEntry]:
    """What the fleet layer reads of every site: the rendered ones' models, the others' cache records."""
    left_alone = [name for name in known.keys if name not in rendered]
    return {**_fleet_entries(repo, left_alone, known.fleet_entry, settings),
            **{name: result.site.fleet_entry() for name, result in rendered.items()}}


def _fleet_entries(repo: Repo, names: list[str], recorded: Callable[[str], str | None],
                   settings: PlatformSettings) -> dict[str, FleetEntry]:
    """What the fleet layer reads of the sites this render leaves alone: from their cache record when their
    inputs are unchanged (``recorded``), else from the site file, as its render sees it (an invalid one stops
    the render)."""
    entries: dict[str, FleetEntry] = {}
    for name in names:
        entry = recorded(name)
        try:
            if isinstance(entry, str):
                entries[name] = FleetEntry.model_validate_json(entry)
                continue
        except ValidationError:
            pass
        entries[name] = load_site_for_engines(repo, name, settings).fleet_entry()
    return entries


def _tree(repo: Repo, rendered: dict[str, SiteRender], fleet: dict[str, FleetEntry], settings: PlatformSettings, *,
          everything: bool, seal: bool, notes: list[str] | None, stale: list[str] | None
          ) -> tuple[Scope, dict[str, bytes]]:
    files: dict[str, bytes] = dict(render_base())
    dirs: list[str] = [BASE_DIR]
    sealed_sites = 0
    for name, result in sorted(rendered.items()):
        if result.stale and stale is not None:
            stale.append(result.stale)
        if notes is not None:
            notes.extend(f"warning: {w}" for w in result.warnings)
            if result.resealed:
                sealed_sites += 1
                if len(rendered) <= SEAL_NOTES:
                    notes.append(f"sealed {len(result.resealed)} key(s) of site {name} anew "
                                 f"({', '.join(result.resealed)}); {len(result.reused)} kept byte-identical")
        files.update(result.files)
        dirs.extend(site_output_dirs(name))
    if notes is not None and sealed_sites and len(rendered) > SEAL_NOTES:
        notes.append(f"sealed the secrets of {sealed_sites} site(s) anew (one kubeseal call each)")
    if everything:
        dirs.extend(orphans(repo, set(fleet)))
    files.update(_cluster_layers(repo, dict(sorted(fleet.items())), settings, seal=seal, stale=stale))
    return Scope(tuple(sorted({*dirs, FLEET_DIR, PLATFORM_DIR, CLUSTERS_DIR})), (ROOT_KUSTOMIZATION,)), files


def _cluster_layers(repo: Repo, fleet: dict[str, FleetEntry], settings: PlatformSettings, *, seal: bool,
                    stale: list[str] | None) -> dict[str, bytes]:
    """The platform and fleet layers, one cluster's or each of several clusters', once no two sites of a cluster
    claim one object (render/conflicts.py: exit 2, before anything is written)."""
    multi = settings.multi_cluster
    files: dict[str, bytes] = {}
    layers: list[ClusterLayer] = []
    for cluster in settings.cluster_names():
        dirs = ClusterDirs.of(cluster, multi=multi)
        platform = platform_files(repo, fleet, settings, seal=seal, stale=stale, cluster=cluster if multi else None,
                                  dirs=dirs)
        files.update(platform)
        layers.append(ClusterLayer(cluster, dirs, frozenset(platform_engines(platform, dirs.platform)),
                                   platform_namespaces(settings, cluster),
                                   settings.cluster(cluster).argocd.destination, f"-{cluster}" if multi else ""))
    files.update(render_clusters(fleet, layers))
    check_conflicts(fleet, multi=multi)
    return files

SEAL_NOTES = 10  # sites: a fleet's first render says how many were sealed, not each one


def desired_tree(repo: Repo, sites: dict[str, Site], *, everything: bool, seal: bool = True,
                 notes: list[str] | None = None, stale: list[str] | None = None) -> tuple[Scope, dict[str, bytes]]:
    """What the rendered tree should hold for these (already loaded) sites, and the part of the tree that covers."""
    with reading_once():
        return _desired_tree(repo, sites, everything=everything, seal=seal, notes=notes, stale=stale)


def _desired_tree(repo: Repo, sites: dict[str, Site], *, everything: bool, seal: bool, notes: list[str] | None,
                  stale: list[str] | None) -> tuple[Scope, dict[str, bytes]]:
    settings = load_platform(repo)
    rendered = {name: render_one(repo, name, seal=seal, settings=settings, site=site) for name, site in sites.items()}
    others = [n for n in repo.site_names() if n not in sites] if not everything else []
    fleet = {**_fleet_entries(repo, others, RenderCache(repo).fleet_entry, settings),
             **{name: result.site.fleet_entry() for name, result in rendered.items()}}
    return _tree(repo, rendered, fleet, settings, everything=everything, seal=seal, notes=notes, stale=stale)


def _write(repo: Repo, scope: Scope, desired: dict[str, bytes], known: Survey, rendered: dict[str, SiteRender], *,
           validate: list[str] | None, everything: bool) -> Plan:
    """Stage, validate (the sites named in ``validate``; None: no validation) and swap the tree (writer.apply),
    then record it in the cache, under the repository's lock."""
    validator = None
    if validate is not None:
        from generator.validate import cache_dir, validate_tree

        validator = partial(validate_tree, sites=validate, fleet=everything, cache_dir=cache_dir(repo))
    with locked(repo.work_dir):
        the_plan = plan(repo.root, scope, desired)  # planned under the lock: another render may have run
        # the validator builds the fleet layer, which lists the sites left alone: the stage borrows them
        borrow = tuple(d for name in known.keys if name not in rendered for d in site_output_dirs(name)) if validator else ()
        apply(repo.root, repo.work_dir, scope, the_plan, validate=validator, borrow=borrow)
        _remember(RenderCache(repo), known, rendered)
    return the_plan


def _remember(cache: RenderCache, known: Survey, rendered: dict[str, SiteRender]) -> None:
    """Record what the tree now holds for the sites rendered in full (not those whose secret is stale)."""
    for name, result in rendered.items():
        if result.stale:
            cache.forget(name)
            continue
        entry = result.site.fleet_entry()
        recorded = entry.model_dump_json(by_alias=True)
        try:
            same = FleetEntry.model_validate_json(recorded) == entry
        except ValidationError:
            same = False
        cache.store_site(name, known.keys[name], recorded if same else None, known.inputs[name])
    cache.store_fleet(cache.fleet_key(known.keys))


def _report(the_plan: Plan, out: TextIO, *, verbose: bool, prefix: str = "", kept: int = 0) -> None:
    for change in the_plan.changes:
        if change.status in {CREATED, UPDATED, DELETED} or verbose:
            print(f"{prefix}{change.status:<9} {change.path}", file=out)
    counts = the_plan.counts()
    unchanged = counts["unchanged"] + kept
    summary = ", ".join(f"{counts[k]} {prefix}{k}" for k in (CREATED, UPDATED, DELETED)) + f", {unchanged} unchanged"
    print(summary if the_plan.pending() else f"nothing to do: {unchanged} files up to date", file=out)


def _report_check(the_plan: Plan, out: TextIO, stale_secrets: list[str], kept: int = 0) -> int:
    for reason in stale_secrets:
        print(f"stale: {reason}; run 'generator render' (needs the age key and kubeseal)", file=out)
    if not the_plan.pending() and not stale_secrets:
        print(f"up to date: {the_plan.counts()['unchanged'] + kept} files match their inputs", file=out)
        return 0
    out.write(the_plan.diff())
    if the_plan.pending():
        count = len(the_plan.pending())
        print(f"stale: {count} file(s) differ from what the site files produce; run 'generator render' and commit", file=out)
    return 1
