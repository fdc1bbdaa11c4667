"""Issue 12: --version, shell completion for bash, zsh and fish, and progress on a terminal only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from generator import __version__
from tests.helpers import PROJECT, copy_repo, generator, on_pty

pytestmark = pytest.mark.tools
GENERATOR = PROJECT / ".venv" / "bin" / "generator"


def test_version() -> None:
    result = generator(PROJECT, "--version")
    assert result.code == 0 and result.out.strip() == f"generator, version {__version__}"


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F _generator_completion generator"),
                                               ("zsh", "#compdef generator"), ("fish", "complete --no-files --command generator")])
def test_completion_scripts(shell: str, marker: str) -> None:
    result = generator(PROJECT, "completion", shell)
    assert result.code == 0 and marker in result.out, result.out


def test_completion_answers_with_commands_and_options() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_GENERATOR_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        done = subprocess.run([str(GENERATOR)], env=env, capture_output=True, text=True, timeout=60)
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("generator st", 1) == ["status"]
    assert complete("generator site ", 2) == ["new", "remove"]
    assert "--output" in complete("generator status --", 2)


def _stderr_of(repo: Path, *args: str, tty: bool) -> str:
    if not tty:
        return generator(repo, *args).err
    done, shown = on_pty([str(GENERATOR), *args], repo, stream="stderr")
    assert done.returncode == 0
    return shown


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    on_tty = _stderr_of(repo, "validate", "--all", tty=True)
    assert "built overlays/prod" in on_tty and "\r" in on_tty, on_tty
    piped = _stderr_of(repo, "validate", "--all", tty=False)
    assert "built" not in piped and "\r" not in piped, piped
