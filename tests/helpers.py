"""Test helpers: build input trees inline, run the real CLI, fingerprint output trees."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
OUTPUT_ROOTS = ("base", "overlays", "deploy", "kustomization.yaml")


def build_file_tree(root: Path, spec: dict[str, str | bytes]) -> None:
    for rel, content in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def generator(repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Run:
    """Run the real console entry point in a child process, in ``repo``."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "generator", *args], cwd=repo, capture_output=True, text=True,
        input=stdin if stdin is not None else "", env=full_env, timeout=300,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def copy_repo(dest: Path, *, with_output: bool = True) -> Path:
    """A copy of this repository's sites (and rendered tree) to work on."""
    shutil.copytree(PROJECT / "sites", dest / "sites")
    if with_output:
        for rel in OUTPUT_ROOTS:
            src = PROJECT / rel
            if src.is_dir():
                shutil.copytree(src, dest / rel)
            elif src.is_file():
                shutil.copy2(src, dest / rel)
    return dest


def fingerprint(root: Path) -> dict[str, tuple[str, int, int]]:
    """path -> (sha256, inode, mtime_ns) for every file under the output roots."""
    found: dict[str, tuple[str, int, int]] = {}
    for rel in OUTPUT_ROOTS:
        base = root / rel
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for path in paths:
            stat = path.stat()
            found[path.relative_to(root).as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_ino, stat.st_mtime_ns)
    return found


MINIMAL_SITE = """\
domain: example.org
gitops:
  flux: {url: "https://git.example.org/gitops.git"}
  argocd: {repoUrl: "https://git.example.org/gitops.git"}
"""
