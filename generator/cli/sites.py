"""The site and ci command groups: add or remove a site, write the repository's CI workflow."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from generator import __version__
from generator.cli.common import repo_of
from generator.errors import UsageError


@click.group()
def site() -> None:
    """Add a site in one command, or remove one (files, secrets, rendered outputs)."""


@site.command("new")
@click.argument("name")
@click.option("--domain", required=True, help="The site's domain (the proxy is litellm.<domain>).")
@click.option("--from", "source", metavar="SITE", help="Copy this site's file (comments kept), with the new domain.")
@click.option("--age-recipient", "recipients", multiple=True, metavar="AGE1...",
              help="Who may decrypt the site's secrets (repeatable); adds the site's rule to .sops.yaml.")
@click.option("--cert", type=click.Path(path_type=Path, readable=False), help="The sealing certificate (PEM).")
@click.option("--fetch-cert", is_flag=True, help="Fetch the certificate from the cluster (current context).")
@click.option("--controller-name", default="sealed-secrets-controller", show_default=True, help="With --fetch-cert.")
@click.option("--controller-namespace", default="kube-system", show_default=True, help="With --fetch-cert.")
@click.option("--wave", type=click.IntRange(0, 100), default=0, show_default=True, help="rollout.wave")
@click.pass_context
def site_new(ctx: click.Context, name: str, domain: str, source: str | None, recipients: tuple[str, ...],
             cert: Path | None, fetch_cert: bool, controller_name: str, controller_namespace: str, wave: int) -> None:
    """Write sites/NAME/site.yaml, its .sops.yaml rule, certificate and secrets, then render it."""
    from generator.scaffold import NewSite, run_site_new

    ctx.exit(run_site_new(repo_of(ctx), NewSite(name, domain, source, recipients, cert, fetch_cert, wave,
                                                controller=(controller_name, controller_namespace))))


@site.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def site_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove sites/NAME and its outputs; the fleet's parents then prune it from the cluster."""
    from generator.scaffold import run_site_remove

    repo = repo_of(ctx)
    repo.check_site_name(name)
    if not yes:
        if not sys.stdin.isatty():  # nobody to ask: a script or CI must say so
            raise UsageError(f"site remove {name}: no terminal to confirm on; rerun with --yes")
        click.confirm(f"remove site {name}, its secrets file and its rendered outputs?", abort=True)
    ctx.exit(run_site_remove(repo, name))


@click.group()
def ci() -> None:
    """The CI workflow of this GitOps repository."""


@ci.command("init")
@click.option("--provider", required=True, type=click.Choice(["gitea", "github", "gitlab"]),
              help="Writes .gitea/workflows/litellm-gitops.yaml, .github/workflows/litellm-gitops.yaml or .gitlab-ci.yml.")
@click.option("--generator-git", required=True, metavar="URL",
              help="Git URL the CI clones the generator from (the runner must be able to read it).")
@click.option("--generator-ref", default=f"v{__version__}", show_default=True, metavar="REF",
              help="Tag or branch of the generator the CI installs; it must pin the tool versions this one does.")
@click.option("--force", is_flag=True, help="Replace an existing workflow file that differs.")
@click.option("--dry-run", is_flag=True, help="Write nothing; say whether the file would be created or updated.")
@click.pass_context
def ci_init(ctx: click.Context, provider: str, generator_git: str, generator_ref: str, force: bool,
            dry_run: bool) -> None:
    """Write the CI workflow: render --all --check, validate --all and audit, with the pinned tools."""
    from generator.ci_workflows import CiRequest, ci_init as run

    ctx.exit(run(repo_of(ctx), CiRequest(provider, generator_git, generator_ref, force=force, dry_run=dry_run)))


@click.command()
@click.option("--site", required=True, metavar="NAME", help="The new site's name (sites/NAME).")
@click.option("--from-manifests", "manifests", type=click.Path(dir_okay=False, path_type=Path, readable=False),
              help="A saved 'kubectl get -o yaml' (or -o json) dump of the original objects: a List or documents.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the live cluster with this kubeconfig (read-only; without --from-manifests).")
@click.option("--context", default=None, metavar="NAME", help="kubeconfig context of the live cluster.")
@click.option("--namespace", default=None, metavar="NS", help="Where the playbooks deployed (default: litellm; "
              "a dump's own when it holds one).")
@click.option("--age-recipient", "recipients", multiple=True, metavar="AGE1...",
              help="Who may decrypt the site's secrets (repeatable); adds the site's rule to .sops.yaml.")
@click.option("--cert", type=click.Path(path_type=Path, readable=False), help="The sealing certificate (PEM).")
@click.option("--dry-run", is_flag=True, help="Report what would be mapped and written; write nothing.")
@click.pass_context
def adopt(ctx: click.Context, site: str, manifests: Path | None, kubeconfig: Path | None, context: str | None,
          namespace: str | None, recipients: tuple[str, ...], cert: Path | None, dry_run: bool) -> None:
    """Take over a LiteLLM that Thinkube's playbooks deployed: its site file and its secrets, unchanged.

    Exit 0 when everything was carried, 1 when something was left behind (listed with file and line),
    2 for bad input (nothing written), 3 when the cluster cannot be read.
    """
    from generator.adopt.run import AdoptRequest, run_adopt
    from generator.tools.kubectl import Cluster

    if manifests is not None and (kubeconfig or context):
        raise click.UsageError("--from-manifests reads a saved dump: --kubeconfig and --context go without it")
    live = None if manifests is not None else Cluster(kubeconfig, context)
    ctx.exit(run_adopt(repo_of(ctx), AdoptRequest(site, manifests, live, namespace, recipients, cert, dry_run)))
