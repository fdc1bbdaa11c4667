"""Issue 28: the README's quick start, run verbatim. The shell blocks between the README's quick-start markers are
joined into one script and run with bash in an empty directory, with a new HOME (no age key, no git identity
beyond the committer's name), the real generator, sops and kubeseal on PATH, and the sealing certificate of a key
pair made here (SEALING_CERT, the variable the quick start documents for an offline certificate). When the
README and the tool drift apart, this fails. It also checks that the README lists every command
`generator --help` lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT, generator
from tests.keys import sealing_pair

pytestmark = pytest.mark.tools

BEGIN, END = "<!-- quick-start:begin -->", "<!-- quick-start:end -->"


def quick_start_script(readme: str) -> str:
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "the README marks one quick start"
    marked = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", marked, re.S | re.M)
    assert len(blocks) >= 2, marked
    return "set -euo pipefail\n" + "\n".join(blocks)


def test_the_quick_start_runs_verbatim(tmp_path: Path) -> None:
    readme = (PROJECT / "README.md").read_text()
    assert readme.index("make render") < readme.index("make test") < readme.index(BEGIN)  # the two commands first
    script = quick_start_script(readme)
    cert, _ = sealing_pair(tmp_path / "cluster")
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    tools = [str(Path(sys.executable).parent), str(PROJECT / ".tools/bin"), "/usr/bin", "/bin"]
    env = {"PATH": os.pathsep.join(tools), "HOME": str(home), "SEALING_CERT": str(cert),
           "OPENAI_API_KEY": "sk-quickstart-" + "x" * 32, "LANG": "C.UTF-8",
           "GIT_AUTHOR_NAME": "Operator", "GIT_AUTHOR_EMAIL": "operator@example.org",
           "GIT_COMMITTER_NAME": "Operator", "GIT_COMMITTER_EMAIL": "operator@example.org"}
    for name in ("PYTHONPYCACHEPREFIX", "GENERATOR_CACHE", "GENERATOR_SCHEMAS", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    started = time.monotonic()
    run = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    print(f"quick start: {took:.1f} s of commands")
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"

    repo = work / "litellm-gitops"
    assert (home / ".config/sops/age/keys.txt").is_file()  # the key the quick start made, where sops looks
    site = yaml.safe_load((repo / "sites/lab/site.yaml").read_text())
    assert site["models"] == [{"name": "gpt-4o", "model": "openai/gpt-4o", "apiKeySecret": "OPENAI_API_KEY"}]
    assert site["gitops"]["flux"]["url"] == "https://git.example.org/platform/litellm-gitops.git"
    committed = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True, check=True,
                               timeout=30).stdout.split()
    assert "overlays/lab/setup/sealed-secret.yaml" in committed and "sites/lab/secrets.sops.yaml" in committed
    assert not [f for f in committed if f.startswith(".generator/")]
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    assert status == "", status  # everything the quick start made is committed; the scratch space is ignored
    assert "sk-quickstart" not in run.stdout + run.stderr
    sealed = yaml.safe_load((repo / "overlays/lab/setup/sealed-secret.yaml").read_text())
    assert "OPENAI_API_KEY" in sealed["spec"]["encryptedData"]


def test_the_readme_lists_every_command() -> None:
    readme = (PROJECT / "README.md").read_text()
    commands = _commands(generator(PROJECT, "--help").out)
    assert len(commands) >= 14, commands
    for command in commands:
        sub = generator(PROJECT, command, "--help").out
        names = _commands(sub) if "Commands:" in sub else []
        for name in names or [None]:
            shown = f"generator {command}" + (f" {name}" if name else "")
            assert shown in readme or (name and f"`{name}`" in readme and f"generator {command} " in readme), shown


def _commands(help_text: str) -> list[str]:
    listing = help_text.split("Commands:", 1)[1].strip("\n").split("\n\n", 1)[0]  # up to the examples
    return [line.split()[0] for line in listing.splitlines() if line.startswith("  ") and not line.startswith("   ")]
