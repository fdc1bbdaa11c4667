"""The commands that reach past the repository: doctor (the tools, or a live cluster), diff (a live cluster) and
bootstrap (the services a site needs)."""

from __future__ import annotations

from pathlib import Path

import click

from generator.cli.common import complete_site, examples, output_option, repo_of
from generator.output import Format


@click.command(epilog=examples(
    "generator doctor",
    "generator doctor -o json",
    "generator doctor --cluster --context thinkube --site prod"))
@output_option
@click.option("--json", "as_json", is_flag=True, hidden=True, help="The same as -o json (kept for scripts).")
@click.option("--cluster", "live", is_flag=True, help="Check a live cluster for what the tree needs (read-only).")
@click.option("--context", default=None, metavar="NAME", help="kubeconfig context (with --cluster).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None, help="With --cluster.")
@click.option("--site", "sites", multiple=True, metavar="NAME", shell_complete=complete_site,
              help="With --cluster: these sites (default: all).")
@click.pass_context
def doctor(ctx: click.Context, output: Format, as_json: bool, live: bool, context: str | None,
           kubeconfig: Path | None, sites: tuple[str, ...]) -> None:
    """Which tools are found, their versions, and what is missing; with --cluster, what a live cluster lacks."""
    from generator.doctor import run_doctor

    if not live and (context or kubeconfig or sites):
        raise click.UsageError("--context, --kubeconfig and --site go with --cluster")
    repo = repo_of(ctx) if live else None
    ctx.exit(run_doctor(repo, "json" if as_json else output, live=live, sites=sites, context=context,
                        kubeconfig=kubeconfig))


@click.command(epilog=examples(
    "generator diff --site prod",
    "generator diff --site prod --context thinkube --kubeconfig ~/.kube/config"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site,
              help="The site to compare.")
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


@click.command(epilog=examples(
    "generator bootstrap --site prod --dry-run --offline",
    "generator bootstrap --site prod --dry-run",
    "generator bootstrap --site prod --only keycloak",
    "generator bootstrap --site prod -o json"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.option("--dry-run", is_flag=True, help="Print the plan: what would be created or changed; write nothing.")
@click.option("--offline", is_flag=True, help="With --dry-run: the plan for a fresh install, from the site file "
              "alone (no service, no admin credential, no age key).")
@click.option("--only", multiple=True, type=click.Choice(["keycloak", "postgres", "bucket"]),
              help="Converge only this service (repeatable).")
@click.option("--rotate-client-secret", is_flag=True, help="Give the Keycloak client a new secret (stored in sops first).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=15.0, show_default=True, metavar="SECONDS",
              help="Each service must connect and answer each request within this.")
@output_option
@click.pass_context
def bootstrap(ctx: click.Context, site: str, dry_run: bool, offline: bool, only: tuple[str, ...],
              rotate_client_secret: bool, timeout: float, output: Format) -> None:
    """Converge the Keycloak client, the PostgreSQL role and database, and the S3 bucket (idempotent).

    Admin credentials come from KEYCLOAK_ADMIN_USERNAME/PASSWORD, POSTGRES_ADMIN_USERNAME/PASSWORD and
    S3_ADMIN_ACCESS_KEY_ID/SECRET_ACCESS_KEY, or from the same names with a leading '_' in the site's sops file.
    """
    from bootstrap.run import run_bootstrap

    if offline and not dry_run:
        raise click.UsageError("--offline plans a fresh install: it goes with --dry-run")
    ctx.exit(run_bootstrap(repo_of(ctx), site, only=only, dry_run=dry_run, offline=offline,
                           rotate_client_secret=rotate_client_secret, timeout=timeout, output=output))


@click.command(epilog=examples(
    "generator restore --site prod --dry-run           # list the backups, print the plan",
    "generator restore --site prod                     # the newest backup",
    "generator restore --site prod --from backups/20261205T090000Z-before-v1.108.7.dump",
    "generator restore --site prod --dry-run -o json   # the backups as rows, the chosen one marked"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.option("--from", "key", metavar="KEY", help="The backup to restore (a key listed by the command); default: the newest.")
@click.option("--dry-run", is_flag=True, help="List the backups and print the plan; change nothing.")
@click.option("--timeout", type=click.FloatRange(1, 600), default=15.0, show_default=True, metavar="SECONDS",
              help="PostgreSQL and S3 must connect and answer each request within this.")
@output_option
@click.pass_context
def restore(ctx: click.Context, site: str, key: str | None, dry_run: bool, timeout: float, output: Format) -> None:
    """Restore the site's database from a backup the migration Job took (pg_restore into a new database, then swap).

    Reads the backups with the site's S3 keys (its sops file) and restores with POSTGRES_ADMIN_USERNAME/PASSWORD
    (or _POSTGRES_ADMIN_* in the sops file). A database already there is renamed <db>_before_restore_<time>, never
    dropped. Nothing changes on a failure: exit 2 when the backup is missing or unreadable, 3 when a service cannot
    be reached.
    """
    from bootstrap.restore import run_restore

    ctx.exit(run_restore(repo_of(ctx), site, key=key, dry_run=dry_run, timeout=timeout, output=output))
