"""kubectl's manners (issue 28): -o table|json|yaml on every command that reports, --kubeconfig/--context wherever
a cluster is read, site-name completion, one exit code per kind (the table of docs/cli.md), Examples in every
--help, marks and colour on a terminal only, without colour under NO_COLOR."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import click
import pytest
import yaml

from generator.cli import cli
from generator.errors import EXIT_MEANINGS, ExitCode
from tests.helpers import PROJECT, build_file_tree, copy_repo, generator, on_pty
from tests.servers import free_port, scaled

GENERATOR = PROJECT / ".venv" / "bin" / "generator"


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def test_every_command_and_group_has_examples_in_its_help() -> None:
    missing = []
    for path, _ in commands():
        result = generator(PROJECT, *path, "--help")
        assert result.code == 0, (path, result.err)
        section = result.out.split("\n  Examples:\n", 1)
        if len(section) != 2 or "generator " not in section[1]:
            missing.append(" ".join(path) or "generator")
    assert not missing, missing
    assert len(commands()) >= 24  # every group and command was walked


def complete(repo: Path, words: str) -> list[str]:
    """What bash completion offers for the last word of ``words`` (click's protocol, as the completion script asks)."""
    parts = words.split(" ")
    env = {**os.environ, "_GENERATOR_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    done = subprocess.run([str(GENERATOR)], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def test_site_names_complete_after_every_site_option(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo", with_output=False)
    site = (repo / "sites/prod/site.yaml").read_text()
    build_file_tree(repo, {"sites/eu-west/site.yaml": site, "sites/eu-north/site.yaml": site,
                           "sites/not-a-site/README": "no site.yaml here\n"})
    with_site = [(path, command) for path, command in commands() if isinstance(command, click.Command)
                 and any("--site" in p.opts for p in command.params if isinstance(p, click.Option))]
    assert len(with_site) == 13, [p for p, _ in with_site]
    for path, _ in with_site:
        assert complete(repo, f"generator {' '.join(path)} --site ") == ["eu-north", "eu-west", "prod"], path
        assert complete(repo, f"generator {' '.join(path)} --site eu-w") == ["eu-west"], path
    assert complete(repo, "generator site remove eu") == ["eu-north", "eu-west"]
    assert complete(repo, "generator site new x --from p") == ["prod"]
    assert complete(tmp_path, "generator render --site ") == []  # outside a repository: no candidates, no error


def kubeconfig(tmp_path: Path) -> tuple[Path, int, int]:
    """A kubeconfig of two contexts, each pointing at a port nothing listens on (the current one: first)."""
    first, other = free_port(), free_port()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "first",
        "clusters": [{"name": "a", "cluster": {"server": f"https://127.0.0.1:{first}"}},
                     {"name": "b", "cluster": {"server": f"https://127.0.0.1:{other}"}}],
        "contexts": [{"name": "first", "context": {"cluster": "a", "user": "u"}},
                     {"name": "other", "context": {"cluster": "b", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "unused"}}]}))
    return path, first, other


def test_one_exit_code_per_kind_as_the_table_says(tmp_path: Path) -> None:
    """docs/cli.md's table is errors.EXIT_MEANINGS; README has the short one; each code is what a command of
    its kind exits with."""
    table = re.findall(r"^\| (\d+) \| `(\w+)` \| (.+) \|$", (PROJECT / "docs/cli.md").read_text(), re.MULTILINE)
    assert [(int(code), name, meaning) for code, name, meaning in table] == \
        [(int(code), code.name, meaning) for code, meaning in EXIT_MEANINGS.items()]
    readme = (PROJECT / "README.md").read_text()
    assert "| 0 | 1 | 2 | 3 | 130 |" in readme and "(docs/cli.md)" in readme
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]

    repo = copy_repo(tmp_path / "repo")
    config, first, other = kubeconfig(tmp_path)
    assert generator(repo, "status").code == ExitCode.OK
    pdb = repo / "overlays/prod/app/pdb.yaml"
    pdb.write_text(pdb.read_text().replace("maxUnavailable: 1\n", "maxUnavailable: 2\n"))
    assert generator(repo, "render", "--all", "--check").code == ExitCode.FINDINGS
    assert generator(repo, "render", "--site", "nowhere").code == ExitCode.USAGE
    assert generator(repo, "status", "-o", "xml").code == ExitCode.USAGE
    fetched = generator(repo, "cert", "fetch", "--site", "prod", "--kubeconfig", str(config))
    assert fetched.code == ExitCode.UNREACHABLE and f"127.0.0.1:{first}" in fetched.err, fetched.text
    chosen = generator(repo, "cert", "fetch", "--site", "prod", "--kubeconfig", str(config), "--context", "other")
    assert chosen.code == ExitCode.UNREACHABLE and f"127.0.0.1:{other}" in chosen.err, chosen.text
    assert generator(repo, "doctor", "--cluster", "--kubeconfig", str(config), "--context", "other").code == \
        ExitCode.UNREACHABLE
    new = generator(repo, "site", "new", "eu", "--domain", "eu.example.com", "--from", "prod", "--fetch-cert",
                    "--kubeconfig", str(config), "--context", "other")
    assert new.code == ExitCode.UNREACHABLE and f"127.0.0.1:{other}" in new.err, new.text
    lone = generator(repo, "site", "new", "eu", "--domain", "eu.example.com", "--context", "other")
    assert lone.code == ExitCode.USAGE and "--kubeconfig and --context go with --fetch-cert" in lone.err

    waiting = subprocess.Popen([str(GENERATOR), "secrets", "set", "--site", "prod", "KEY"], cwd=repo,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + scaled(30)
    while "pipe_read" not in Path(f"/proc/{waiting.pid}/wchan").read_text():  # blocked reading the value
        assert time.monotonic() < deadline and waiting.poll() is None
        time.sleep(0.02)
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=scaled(30))
    assert (waiting.returncode, err.decode().strip()) == (ExitCode.INTERRUPTED, "interrupted")


def rows(result_out: str, output: str) -> list[dict]:
    return json.loads(result_out) if output == "json" else yaml.safe_load(result_out)


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_o_json_and_yaml_hold_the_rows_of_the_table(tmp_path: Path, output: str) -> None:
    repo = copy_repo(tmp_path / "repo")
    env = {"SOPS_AGE_KEY_FILE": str(tmp_path / "none")}  # no key: nothing here needs one
    status = generator(repo, "status", "-o", output, env=env)
    assert status.code == 0 and [r["site"] for r in rows(status.out, output)] == ["prod"]
    table = generator(repo, "status", env=env)  # piped: still the table (kubectl does not switch either)
    assert table.out.split()[:2] == ["SITE", "HOSTNAME"]

    doctor = generator(repo, "doctor", "-o", output)
    assert doctor.code == 0 and [r["name"] for r in rows(doctor.out, output)] == \
        ["kubectl", "kubeconform", "kubeseal", "sops", "schemas"]
    if output == "json":
        assert generator(repo, "doctor", "--json").out == doctor.out  # the old flag, kept

    listed = generator(repo, "secrets", "list", "--site", "prod", "-o", output, env=env)
    keys = rows(listed.out, output)
    assert listed.code == 0 and {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY"} <= {r["key"] for r in keys}
    assert set(keys[0]) == {"key", "sops", "sealed", "state", "used"}

    plan = generator(repo, "bootstrap", "--site", "prod", "--dry-run", "--offline", "-o", output)
    planned = rows(plan.out, output)
    text = generator(repo, "bootstrap", "--site", "prod", "--dry-run", "--offline")
    assert plan.code == 0 and len(planned) == len(text.out.splitlines()) - 2  # the table's rows, less 2 summaries
    assert {r["status"] for r in planned} == {"would create"} and "would create" in plan.err

    audit = generator(repo, "audit", "-o", output, env=env)
    assert audit.code == 0 and rows(audit.out, output) == [] and "audit passed" in audit.err


def on_terminal(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """stdout of the command on a pseudo-terminal."""
    done, shown = on_pty([str(GENERATOR), *args], repo, env=env)
    assert done.returncode == 0, done.stderr
    return shown


def test_marks_and_colour_on_a_terminal_only_and_no_colour_under_no_color(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = on_terminal(repo, "doctor", env={"NO_COLOR": ""})
    assert "\033[32m✓ ok" in coloured and "\033[0m" in coloured, coloured
    plain = on_terminal(repo, "doctor", env={"NO_COLOR": "1"})
    assert "✓ ok" in plain and "\033[" not in plain, plain
    piped = subprocess.run([str(GENERATOR), "doctor"], cwd=repo, env=base, capture_output=True, text=True, timeout=60)
    assert "✓" not in piped.stdout and "\033[" not in piped.stdout and piped.stdout.startswith("ok       kubectl")
    validated = on_terminal(repo, "validate", "--site", "prod", env={"NO_COLOR": ""})
    assert "\033[32m✓ valid: " in validated
