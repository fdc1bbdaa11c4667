"""The command line: each command parses its options and calls one typed function.

Errors: a GeneratorError prints one line ``error: ...`` and exits with its code (2 for bad
input); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from generator import __version__
from generator.errors import GeneratorError
from generator.layout import Repo


def _repo(ctx: click.Context) -> Repo:
    return Repo.find(ctx.obj.get("repo"))


def _site_names(repo: Repo, sites: tuple[str, ...], all_sites: bool) -> tuple[str, ...]:
    if sites and all_sites:
        raise click.UsageError("give --site or --all, not both")
    if not sites and not all_sites:
        raise click.UsageError("name a site with --site NAME (repeatable) or use --all")
    for site in sites:
        repo.check_site_name(site)
    return sites


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The GitOps repository (default: the nearest directory above the current one holding sites/).")
@click.version_option(__version__, prog_name="generator")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None) -> None:
    """Render and validate the LiteLLM GitOps tree."""
    ctx.ensure_object(dict)
    ctx.obj["repo"] = repo


@cli.command()
@click.option("--site", "sites", multiple=True, metavar="NAME", help="Site to render (repeatable).")
@click.option("--all", "all_sites", is_flag=True, help="Render every site and remove outputs of deleted sites.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a unified diff if the tree is stale.")
@click.option("--dry-run", is_flag=True, help="Write nothing; list what would be created, updated or deleted.")
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Build and kubeconform-check the staged tree before swapping it in.")
@click.option("-v", "--verbose", is_flag=True, help="Also list unchanged files.")
@click.pass_context
def render(ctx: click.Context, sites: tuple[str, ...], all_sites: bool, check: bool, dry_run: bool,
           validate: bool, verbose: bool) -> None:
    """Render sites/<site>/site.yaml into base/, overlays/<site>/ and deploy/*/<site>/."""
    from generator.render_cache import survey

    repo = _repo(ctx)
    names = _site_names(repo, sites, all_sites)
    known = survey(repo, names)  # before the renderers are even imported
    unchanged = known.unchanged(list(names))
    if unchanged is not None:
        click.echo(f"up to date: {unchanged} files match their inputs" if check else f"nothing to do: {unchanged} files up to date")
        ctx.exit(0)
    from generator.rendering import RenderRequest, run_render

    request = RenderRequest(names, check=check, dry_run=dry_run, validate=validate and not (check or dry_run),
                            verbose=verbose)
    ctx.exit(run_render(repo, request, known=known))


@cli.command()
@click.option("--site", "sites", multiple=True, metavar="NAME", help="Site to validate (repeatable).")
@click.option("--all", "all_sites", is_flag=True, help="Validate every site and the fleet index.")
@click.pass_context
def validate(ctx: click.Context, sites: tuple[str, ...], all_sites: bool) -> None:
    """kustomize build + kubeconform -strict, offline, for each site's overlay and entry points."""
    from generator.validate import validate_sites

    repo = _repo(ctx)
    names = _site_names(repo, sites, all_sites) or tuple(repo.site_names())
    warnings: list[str] = []
    directories, resources = validate_sites(repo, list(names), fleet=all_sites, warnings=warnings)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"valid: {directories} kustomization(s), {resources} resource(s), strict, offline")


@cli.command()
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

        repo = _repo(ctx)
        for site in sites:
            repo.check_site_name(site)
        checks, healthy = doctor_cluster(repo, list(sites) or repo.site_names(), context=context, kubeconfig=kubeconfig)
        if as_json:
            click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
        else:
            for check in checks:
                click.echo(check.line())
            failed = sum(c.status != "ok" for c in checks)
            click.echo(f"{len(checks) - failed} ok, {failed} to fix" if failed else f"all {len(checks)} checks ok")
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


@cli.command()
@click.option("--check", is_flag=True, help="Exit 1 if schema/site.schema.json is stale.")
@click.pass_context
def schema(ctx: click.Context, check: bool) -> None:
    """Write the JSON Schema of site.yaml to schema/site.schema.json (for editors)."""
    from generator.site_schema import SCHEMA_PATH, schema_bytes

    repo = _repo(ctx)
    target = repo.root / SCHEMA_PATH
    data = schema_bytes()
    if check:
        if not target.is_file() or target.read_bytes() != data:
            click.echo(f"{SCHEMA_PATH} is stale; run 'generator schema'")
            ctx.exit(1)
        click.echo(f"{SCHEMA_PATH} is up to date")
        return
    if target.is_file() and target.read_bytes() == data:
        click.echo(f"unchanged {SCHEMA_PATH}")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    click.echo(f"written {SCHEMA_PATH}")


@cli.command()
@click.option("--output", type=click.Choice(["table", "json"]), default=None,
              help="Output format (default: table on a terminal, json otherwise).")
@click.pass_context
def status(ctx: click.Context, output: str | None) -> None:
    """One row per site: hostname, image, routing, secrets, bootstrap, engines, wave. Reads only.

    Exit status 1 when a site could not be read (its row holds the error), else 0.
    """
    from generator.status import run_status

    ctx.exit(run_status(_repo(ctx), output))  # type: ignore[arg-type]  # click.Choice guarantees the literal


@cli.group()
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

    ctx.exit(run(_repo(ctx), CiRequest(provider, generator_git, generator_ref, force=force, dry_run=dry_run)))


@cli.group()
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
@click.option("--wave", type=click.IntRange(0, 100), default=0, show_default=True, help="rollout.wave")
@click.pass_context
def site_new(ctx: click.Context, name: str, domain: str, source: str | None, recipients: tuple[str, ...],
             cert: Path | None, fetch_cert: bool, wave: int) -> None:
    """Write sites/NAME/site.yaml, its .sops.yaml rule, certificate and secrets, then render it."""
    from generator.scaffold import NewSite, run_site_new

    ctx.exit(run_site_new(_repo(ctx), NewSite(name, domain, source, recipients, cert, fetch_cert, wave)))


@site.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def site_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove sites/NAME and its outputs; the fleet's parents then prune it from the cluster."""
    from generator.scaffold import run_site_remove

    repo = _repo(ctx)
    repo.check_site_name(name)
    if not yes:
        click.confirm(f"remove site {name}, its secrets file and its rendered outputs?", abort=True)
    ctx.exit(run_site_remove(repo, name))


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(generator completion bash)" (zsh alike; fish: | source)."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    click.echo(completer(cli, {}, "generator", "_GENERATOR_COMPLETE").source())


@cli.group()
def secrets() -> None:
    """The site's secrets: sops-encrypted in sites/<site>/secrets.sops.yaml."""


@secrets.command("init")
@click.option("--site", required=True, metavar="NAME")
@click.pass_context
def secrets_init(ctx: click.Context, site: str) -> None:
    """Create the sops file with generated keys (never overwrites a value)."""
    from generator.secrets.commands import secrets_init as run

    ctx.exit(run(_repo(ctx), site))


@secrets.command("set")
@click.option("--site", required=True, metavar="NAME")
@click.argument("key")
@click.pass_context
def secrets_set(ctx: click.Context, site: str, key: str) -> None:
    """Set KEY to the value read from stdin (never from the command line)."""
    from generator.secrets.commands import read_value, secrets_set as run

    ctx.exit(run(_repo(ctx), site, key, read_value(click.get_text_stream("stdin"))))


@secrets.command("list")
@click.option("--site", required=True, metavar="NAME")
@click.pass_context
def secrets_list(ctx: click.Context, site: str) -> None:
    """Key names and whether each is sealed and current (values are never shown)."""
    from generator.secrets.commands import secrets_list as run

    ctx.exit(run(_repo(ctx), site))


@secrets.command("git-credential")
@click.option("--ssh-key", "ssh_key", type=click.Path(dir_okay=False, path_type=Path),
              help="The deploy key's private half (ssh:// repositories).")
@click.option("--known-hosts", "known_hosts", type=click.Path(dir_okay=False, path_type=Path),
              help="ssh-keyscan output for the git server (Flux checks the host key against it).")
@click.option("--token-stdin", is_flag=True, help="Read an access token from stdin (https:// repositories).")
@click.option("--username", default=None, help="The token's user (default: git).")
@click.pass_context
def secrets_git_credential(ctx: click.Context, ssh_key: Path | None, known_hosts: Path | None, token_stdin: bool,
                           username: str | None) -> None:
    """Store the engines' credential for the GitOps repository in platform/git.sops.yaml (sealed by render)."""
    from generator.secrets.commands import git_credential as run, read_value

    token = read_value(click.get_text_stream("stdin")) if token_stdin else None
    ctx.exit(run(_repo(ctx), ssh_key=ssh_key, known_hosts=known_hosts, token=token, username=username))


@secrets.command("rotate")
@click.option("--site", required=True, metavar="NAME")
@click.option("--force", is_flag=True, help="Also rotate keys whose rotation loses data (LITELLM_SALT_KEY).")
@click.argument("key")
@click.pass_context
def secrets_rotate(ctx: click.Context, site: str, key: str, force: bool) -> None:
    """Give KEY a new random value, where rotation is safe."""
    from generator.secrets.commands import secrets_rotate as run

    ctx.exit(run(_repo(ctx), site, key, force))


@cli.group()
def cert() -> None:
    """The site's public sealing certificate (sites/<site>/sealing-cert.pem)."""


@cert.command("import")
@click.option("--site", required=True, metavar="NAME")
@click.argument("file", type=click.Path(path_type=Path, readable=False))  # read_input says what is wrong
@click.pass_context
def cert_import(ctx: click.Context, site: str, file: Path) -> None:
    """Install FILE (a PEM certificate) as the site's sealing certificate."""
    from generator.secrets.commands import cert_import as run

    ctx.exit(run(_repo(ctx), site, file))


@cert.command("fetch")
@click.option("--site", required=True, metavar="NAME")
@click.option("--controller-name", default="sealed-secrets-controller", show_default=True)
@click.option("--controller-namespace", default="kube-system", show_default=True)
@click.pass_context
def cert_fetch(ctx: click.Context, site: str, controller_name: str, controller_namespace: str) -> None:
    """Fetch the controller's certificate with kubeseal --fetch-cert (current kubeconfig context)."""
    from generator.secrets.commands import cert_fetch as run

    ctx.exit(run(_repo(ctx), site, controller_name, controller_namespace))


@cli.command()
@click.option("--site", required=True, metavar="NAME")
@click.option("--dry-run", is_flag=True, help="Print the plan: what would be created or changed; write nothing.")
@click.option("--only", multiple=True, type=click.Choice(["keycloak", "postgres", "bucket"]),
              help="Converge only this service (repeatable).")
@click.option("--rotate-client-secret", is_flag=True, help="Give the Keycloak client a new secret (stored in sops first).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=15.0, show_default=True, metavar="SECONDS",
              help="Each service must connect and answer each request within this.")
@click.pass_context
def bootstrap(ctx: click.Context, site: str, dry_run: bool, only: tuple[str, ...], rotate_client_secret: bool,
              timeout: float) -> None:
    """Converge the Keycloak client, the PostgreSQL role and database, and the S3 bucket (idempotent).

    Admin credentials come from KEYCLOAK_ADMIN_USERNAME/PASSWORD, POSTGRES_ADMIN_USERNAME/PASSWORD and
    S3_ADMIN_ACCESS_KEY_ID/SECRET_ACCESS_KEY, or from the same names with a leading '_' in the site's sops file.
    """
    from bootstrap.run import run_bootstrap

    ctx.exit(run_bootstrap(_repo(ctx), site, only=only, dry_run=dry_run, rotate_client_secret=rotate_client_secret,
                           timeout=timeout))


@cli.command()
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

    ctx.exit(run_diff(_repo(ctx), site, Cluster(kubeconfig, context), field_manager=field_manager))


@cli.command()
@click.pass_context
def audit(ctx: click.Context) -> None:
    """Fail if any secret value appears in plaintext in the tree, its git history or the rendered output."""
    from generator.secrets.audit import run_audit

    ctx.exit(run_audit(_repo(ctx)))


def main() -> NoReturn:
    try:
        # Without standalone mode, click returns ctx.exit()'s code instead of exiting.
        code = cli.main(prog_name="generator", standalone_mode=False)
        _exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        _exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        _exit(2)
    except click.Abort:
        click.echo("aborted", err=True)
        _exit(1)
    except GeneratorError as exc:
        click.echo(f"error: {exc.message}", err=True)
        _exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        _exit(130)


def _exit(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, as mypy does: freeing the models, schemas and caches a render
    built took a tenth of a fleet render (90 ms). Every file is written and closed by now; the exit handlers
    still run and the output is flushed."""
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (| head): nothing more to say to it
        code = code or 1
    os._exit(code)
