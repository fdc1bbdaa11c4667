"""What every command does first: find the repository, and check the sites it was given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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


F = TypeVar("F", bound=Callable[..., object])


def cluster_options(command: F) -> F:
    """kubectl's --kubeconfig and --context, for every command that reads a cluster."""
    command = click.option("--context", default=None, metavar="NAME",
                           help="kubeconfig context (default: the current one).")(command)
    return click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="kubeconfig file (default: kubectl's: $KUBECONFIG or ~/.kube/config).")(command)


def complete_site(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of a site name: the directories under sites/ that hold a site.yaml."""
    root = ctx.find_root().params.get("repo")
    try:
        repo = Repo.find(root)
    except Exception:  # noqa: BLE001 - completion never fails loudly: no repository, no candidates
        return []
    names = (path.parent.name for path in (repo.root / "sites").glob("*/site.yaml"))
    return sorted(name for name in names if name.startswith(incomplete))


def output_option(command: F) -> F:
    """kubectl's -o: table (the default, on a terminal or not), json or yaml."""
    return click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
                        show_default=True, help="Output format.")(command)


def examples(*lines: str) -> str:
    """A command's --help epilog: its examples, printed as written (click's \\b keeps the lines unwrapped)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
