"""The one place that starts processes.

Arguments are always a list (never a shell). Secrets travel only on stdin or in the child's
environment; neither is ever logged or put into an error message.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.errors import ToolFailed, ToolMissing

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def err_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


def child_env(extra: Mapping[str, str] | None = None, *, drop: Sequence[str] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str | Path],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Run a command and capture its output. ``check`` raises ToolFailed on a non-zero exit."""
    args = tuple(str(a) for a in argv)
    try:
        completed = subprocess.run(
            args,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolMissing(args[0], "the executable disappeared; run 'make setup'") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{Path(args[0]).name} did not finish within {timeout:.0f}s") from exc
    result = Result(args, completed.returncode, completed.stdout, completed.stderr)
    if check and result.returncode != 0:
        raise ToolFailed(f"{Path(args[0]).name} {' '.join(args[1:3])} failed (exit {result.returncode}): {tail(result.err_text or result.text)}")
    return result


def tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"
