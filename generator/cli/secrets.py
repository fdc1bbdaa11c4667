"""The secrets and cert command groups: the site's sops file, the engines' git credential, the sealing
certificate."""

from __future__ import annotations

from pathlib import Path

import click

from generator.cli.common import cluster_options, complete_site, examples, output_option, repo_of
from generator.output import Format


@click.group(epilog=examples("generator secrets init --site prod", "generator secrets list --site prod"))
def secrets() -> None:
    """The site's secrets: sops-encrypted in sites/<site>/secrets.sops.yaml."""


@secrets.command("init", epilog=examples("generator secrets init --site prod"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.pass_context
def secrets_init(ctx: click.Context, site: str) -> None:
    """Create the sops file with generated keys (never overwrites a value)."""
    from generator.secrets.commands import secrets_init as run

    ctx.exit(run(repo_of(ctx), site))


@secrets.command("set", epilog=examples(
    'printf %s "$OPENAI_API_KEY" | generator secrets set --site prod OPENAI_API_KEY'))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.argument("key")
@click.pass_context
def secrets_set(ctx: click.Context, site: str, key: str) -> None:
    """Set KEY to the value read from stdin (never from the command line)."""
    from generator.secrets.commands import read_value, secrets_set as run

    ctx.exit(run(repo_of(ctx), site, key, read_value(click.get_text_stream("stdin"))))


@secrets.command("list", epilog=examples(
    "generator secrets list --site prod",
    "generator secrets list --site prod -o yaml"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@output_option
@click.pass_context
def secrets_list(ctx: click.Context, site: str, output: Format) -> None:
    """Key names and whether each is sealed and current (values are never shown)."""
    from generator.secrets.commands import secrets_list as run

    ctx.exit(run(repo_of(ctx), site, output=output))


@secrets.command("git-credential", epilog=examples(
    "generator secrets git-credential --ssh-key deploy-key --known-hosts known_hosts",
    'printf %s "$TOKEN" | generator secrets git-credential --token-stdin'))
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
    ctx.exit(run(repo_of(ctx), ssh_key=ssh_key, known_hosts=known_hosts, token=token, username=username))


@secrets.command("keygen", epilog=examples("generator secrets keygen", "generator secrets keygen --output ~/keys/litellm.agekey"))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The key file (default: $SOPS_AGE_KEY_FILE, else ~/.config/sops/age/keys.txt, where sops looks).")
def secrets_keygen(output: Path | None) -> None:
    """Make your age identity (as age-keygen does; an existing file is kept) and print its public recipient."""
    from generator.secrets.age_key import default_key_file, make_key_file

    path = output or default_key_file()
    recipient, created = make_key_file(path)
    click.echo(f"{'created  ' if created else 'unchanged'} {path} (private: keep it, back it up, never commit it)",
               err=True)
    click.echo(recipient)


@secrets.command("rotate", epilog=examples("generator secrets rotate --site prod LITELLM_MASTER_KEY"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.option("--force", is_flag=True, help="Also rotate keys whose rotation loses data (LITELLM_SALT_KEY).")
@click.argument("key")
@click.pass_context
def secrets_rotate(ctx: click.Context, site: str, key: str, force: bool) -> None:
    """Give KEY a new random value, where rotation is safe."""
    from generator.secrets.commands import secrets_rotate as run

    ctx.exit(run(repo_of(ctx), site, key, force))


@click.group(epilog=examples(
    "generator cert fetch --site prod --context thinkube",
    "generator cert import --site prod cert.pem"))
def cert() -> None:
    """The site's public sealing certificate (sites/<site>/sealing-cert.pem)."""


@cert.command("import", epilog=examples(
    "kubeseal --fetch-cert > cert.pem && generator cert import --site prod cert.pem"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.argument("file", type=click.Path(path_type=Path, readable=False))  # read_input says what is wrong
@click.pass_context
def cert_import(ctx: click.Context, site: str, file: Path) -> None:
    """Install FILE (a PEM certificate) as the site's sealing certificate."""
    from generator.secrets.commands import cert_import as run

    ctx.exit(run(repo_of(ctx), site, file))


@cert.command("fetch", epilog=examples(
    "generator cert fetch --site prod",
    "generator cert fetch --site prod --context thinkube"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site)
@click.option("--controller-name", default="sealed-secrets-controller", show_default=True)
@click.option("--controller-namespace", default="kube-system", show_default=True)
@cluster_options
@click.pass_context
def cert_fetch(ctx: click.Context, site: str, controller_name: str, controller_namespace: str, kubeconfig: Path | None,
               context: str | None) -> None:
    """Fetch the controller's certificate with kubeseal --fetch-cert; exit 3 when the cluster cannot be read."""
    from generator.secrets.commands import cert_fetch as run

    ctx.exit(run(repo_of(ctx), site, controller_name, controller_namespace, kubeconfig=kubeconfig, context=context))
