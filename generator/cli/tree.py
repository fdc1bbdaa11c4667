"""The commands on the rendered tree: render, validate, schema, status and audit."""

from __future__ import annotations

import sys

import click

from generator.cli.common import complete_site, examples, output_option, repo_of, site_names


@click.command(epilog=examples(
    "generator render --site prod",
    "generator render --all",
    "generator render --all --check",
    "generator render --site prod --dry-run"))
@click.option("--site", "sites", multiple=True, metavar="NAME", shell_complete=complete_site,
              help="Site to render (repeatable).")
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
    from generator.inputs import reading_once
    from generator.render_cache import survey

    repo = repo_of(ctx)
    names = site_names(repo, sites, all_sites)
    with reading_once():  # the survey's reads are the render's: each input file is read once
        known = survey(repo, names)  # before the renderers are even imported
        unchanged = known.unchanged(list(names))
        if unchanged is not None:
            click.echo(f"up to date: {unchanged} files match their inputs" if check else f"nothing to do: {unchanged} files up to date")
            ctx.exit(0)
        from generator.rendering import RenderRequest, run_render

        request = RenderRequest(names, check=check, dry_run=dry_run, validate=validate and not (check or dry_run),
                                verbose=verbose)
        code = run_render(repo, request, known=known)
    ctx.exit(code)


@click.command(epilog=examples("generator validate --site prod", "generator validate --all"))
@click.option("--site", "sites", multiple=True, metavar="NAME", shell_complete=complete_site,
              help="Site to validate (repeatable).")
@click.option("--all", "all_sites", is_flag=True, help="Validate every site and the fleet index.")
@click.pass_context
def validate(ctx: click.Context, sites: tuple[str, ...], all_sites: bool) -> None:
    """kustomize build + kubeconform -strict, offline, for each site's overlay and entry points."""
    from generator.output import mark
    from generator.validate import validate_sites

    repo = repo_of(ctx)
    names = site_names(repo, sites, all_sites) or tuple(repo.site_names())
    if all_sites:  # two sites of one cluster on one object: exit 2 from the site files, before any build
        from generator.validate_conflicts import check_site_files

        check_site_files(repo)
    warnings: list[str] = []
    directories, resources = validate_sites(repo, list(names), fleet=all_sites, warnings=warnings)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(mark(True, f"valid: {directories} kustomization(s), {resources} resource(s), strict, offline", sys.stdout))


@click.command(epilog=examples("generator schema", "generator schema --check"))
@click.option("--check", is_flag=True, help="Exit 1 if schema/site.schema.json is stale.")
@click.pass_context
def schema(ctx: click.Context, check: bool) -> None:
    """Write the JSON Schema of site.yaml to schema/site.schema.json (for editors)."""
    from generator.site_schema import SCHEMA_PATH, schema_bytes

    repo = repo_of(ctx)
    target = repo.root / SCHEMA_PATH
    data = schema_bytes()
    if check:
        if not target.is_file():
            click.echo(f"{SCHEMA_PATH} is missing; run 'generator schema'")
            ctx.exit(1)
        if target.read_bytes() != data:
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


@click.command(epilog=examples("generator status", "generator status -o json"))
@output_option
@click.pass_context
def status(ctx: click.Context, output: str) -> None:
    """One row per site: hostname, image, routing, secrets, bootstrap, engines, wave. Reads only.

    Exit status 1 when a site could not be read (its row holds the error), else 0.
    """
    from generator.status import run_status

    ctx.exit(run_status(repo_of(ctx), output))  # type: ignore[arg-type]  # click.Choice guarantees the literal


@click.command(epilog=examples("generator audit", "generator audit -o json"))
@output_option
@click.pass_context
def audit(ctx: click.Context, output: str) -> None:
    """Fail if any secret value appears in plaintext in the tree, its git history or the rendered output."""
    from generator.secrets.audit import run_audit

    ctx.exit(run_audit(repo_of(ctx), output=output))  # type: ignore[arg-type]  # click.Choice: the literal
