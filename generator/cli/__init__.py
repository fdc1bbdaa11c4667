"""The command line: each command parses its options and calls one typed function.

The commands live by group beside this module: ``tree`` (render, validate, schema, status, audit), ``cluster``
(doctor, diff, bootstrap, restore), ``secrets`` (the secrets and cert groups) and ``sites`` (the site and ci groups);
each imports what it runs only when it runs, so start-up stays short.

Errors: a GeneratorError prints one line ``error: ...`` and exits with its code (errors.ExitCode: one per
kind, the table of docs/cli.md); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from generator import __version__
from generator.cli.cluster import bootstrap, diff, doctor, restore
from generator.cli.common import examples
from generator.cli.secrets import cert, secrets
from generator.cli.sites import adopt, ci, init, site
from generator.cli.tree import audit, render, schema, status, validate
from generator.errors import ExitCode, GeneratorError


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=examples(
    "generator site new prod --domain example.com --age-recipient age1... --cert cert.pem",
    "generator render --all && generator validate --all", "generator status -o json"))
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The GitOps repository (default: the nearest directory above the current one holding sites/).")
@click.version_option(__version__, prog_name="generator")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None) -> None:
    """Render and validate the LiteLLM GitOps tree."""
    ctx.ensure_object(dict)
    ctx.obj["repo"] = repo


for command in (init, render, validate, doctor, schema, status, ci, site, adopt, secrets, cert, bootstrap, restore, diff,
                audit):
    cli.add_command(command)


@cli.command(epilog=examples('eval "$(generator completion bash)"', "generator completion fish | source"))
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(generator completion bash)" (zsh alike; fish: | source)."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    click.echo(completer(cli, {}, "generator", "_GENERATOR_COMPLETE").source())


def main() -> NoReturn:
    try:
        # Without standalone mode, click returns ctx.exit()'s code instead of exiting.
        code = cli.main(prog_name="generator", standalone_mode=False)
        _exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        _exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        _exit(ExitCode.USAGE)
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("interrupted", err=True)
            _exit(ExitCode.INTERRUPTED)
        click.echo("aborted", err=True)
        _exit(ExitCode.FINDINGS)
    except GeneratorError as exc:
        click.echo(f"error: {exc.message}", err=True)
        _exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        _exit(ExitCode.INTERRUPTED)


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
