"""What every command does first: find the repository, and check the sites it was given."""

from __future__ import annotations

import click

from generator.layout import Repo


def repo_of(ctx: click.Context) -> Repo:
    return Repo.find(ctx.obj.get("repo"))


def site_names(repo: Repo, sites: tuple[str, ...], all_sites: bool) -> tuple[str, ...]:
    if sites and all_sites:
        raise click.UsageError("give --site or --all, not both")
    if not sites and not all_sites:
        raise click.UsageError("name a site with --site NAME (repeatable) or use --all")
    for site in sites:
        repo.check_site_name(site)
    return sites
