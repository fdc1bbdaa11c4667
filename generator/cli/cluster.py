"""The commands that reach past the repository: doctor (the tools, or a live cluster), diff (a live cluster) and
bootstrap (the services a site needs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from generator.cli.common import repo_of


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--cluster", "live", is_flag=True, help="Check a live cluster for what the tree needs (read-only).")
@click.option("--context", default=None, metavar="NAME", help="kubeconfig context (with --cluster).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None, help="With --cluster.")
@click.option("--site", "sites", multiple=True, metavar="NAME", help="With --cluster: these sites (default: all).")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, live: bool, context: str | None, kubeconfig: Path | None,
           sites: tuple[str, ...]) -> None:
    """Which tools are found, their versions, and what is missing; with --cluster, what a live cluster lacks."""
    if live:
        from generator.cluster_doctor import doctor_cluster

        repo = repo_of(ctx)
        for site in sites:
            repo.check_site_name(site)
        checks, healthy = doctor_cluster(repo, list(sites) or repo.site_names(), context=context, kubeconfig=kubeconfig)
        if as_json:
            click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
        else:
            for check in checks:
                click.echo(check.line())
            failed = sum(c.status not in ("ok", "warn") for c in checks)
            warned = sum(c.status == "warn" for c in checks)
            ok = len(checks) - failed - warned
            note = f", {warned} warning(s)" if warned else ""
            click.echo(f"{ok} ok, {failed} to fix{note}" if failed else
                       f"all {ok} checks ok{note}" if warned else f"all {len(checks)} checks ok")
        ctx.exit(0 if healthy else 1)
    elif context or kubeconfig or sites:
        raise click.UsageError("--context, --kubeconfig and --site go with --cluster")
    from generator.doctor import check_tools

    rows = check_tools()
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        for row in rows:
            mark = "ok " if row.ok else "MISSING"
            click.echo(f"{mark:<8} {row.name:<12} {row.version or '-':<14} pinned {row.pinned:<10} {row.path or ''}"
                       + (f"  ({row.note})" if row.note else ""))
    sys.exit(0 if all(row.ok for row in rows) else 1)


@click.command()
@click.option("--site", required=True, metavar="NAME", help="The site to compare.")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="kubeconfig file (default: kubectl's: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", default=None, metavar="NAME", help="kubeconfig context (default: the current one).")
@click.option("--field-manager", default=None, metavar="NAME",
              help="Apply as this manager (default: kustomize-controller with Flux, else argocd-controller).")
@click.pass_context
def diff(ctx: click.Context, site: str, kubeconfig: Path | None, context: str | None, field_manager: str | None) -> None:
    """The site's rendered objects against the live cluster, by server-side dry-run.

    Exit status as kubectl diff: 0 same, 1 differs; 2 bad input, 3 the cluster could not be compared.
    Read-only: nothing is applied.
    """
    from generator.cluster_diff import run_diff
    from generator.tools.kubectl import Cluster

    ctx.exit(run_diff(repo_of(ctx), site, Cluster(kubeconfig, context), field_manager=field_manager))


@click.command()
@click.option("--site", required=True, metavar="NAME")
@click.option("--dry-run", is_flag=True, help="Print the plan: what would be created or changed; write nothing.")
@click.option("--offline", is_flag=True, help="With --dry-run: the plan for a fresh install, from the site file "
              "alone (no service, no admin credential, no age key).")
@click.option("--only", multiple=True, type=click.Choice(["keycloak", "postgres", "bucket"]),
              help="Converge only this service (repeatable).")
@click.option("--rotate-client-secret", is_flag=True, help="Give the Keycloak client a new secret (stored in sops first).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=15.0, show_default=True, metavar="SECONDS",
              help="Each service must connect and answer each request within this.")
@click.pass_context
def bootstrap(ctx: click.Context, site: str, dry_run: bool, offline: bool, only: tuple[str, ...],
              rotate_client_secret: bool, timeout: float) -> None:
    """Converge the Keycloak client, the PostgreSQL role and database, and the S3 bucket (idempotent).

    Admin credentials come from KEYCLOAK_ADMIN_USERNAME/PASSWORD, POSTGRES_ADMIN_USERNAME/PASSWORD and
    S3_ADMIN_ACCESS_KEY_ID/SECRET_ACCESS_KEY, or from the same names with a leading '_' in the site's sops file.
    """
    from bootstrap.run import run_bootstrap

    if offline and not dry_run:
        raise click.UsageError("--offline plans a fresh install: it goes with --dry-run")
    ctx.exit(run_bootstrap(repo_of(ctx), site, only=only, dry_run=dry_run, offline=offline,
                           rotate_client_secret=rotate_client_secret, timeout=timeout))
