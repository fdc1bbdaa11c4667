"""`generator audit`: no secret in plaintext in the working tree, git history or rendered output.

Two searches. Without any key, secret *shapes* (shapes.py): private key blocks, age secret keys,
sk- API keys, cloud access key ids, bearer tokens, high-entropy values in a plain Secret. With the
age key, the site's own values, as they are and base64-encoded (Secret data); sites whose sops
file no key here decrypts are named. Findings name the kind or key and the place, never the value.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from generator import proc
from generator.inputs import check_yaml_files
from generator.layout import Repo
from generator.output import Format, emit, mark
from generator.secrets.shapes import scan_history, scan_secret_manifests, scan_text
from generator.secrets.store import SecretsFile
from generator.tools import find, kustomize
from generator.tools.sops import SopsError

MIN_LENGTH = 8  # shorter values (a user name) would match everywhere; they are reported as skipped
SKIP_DIRS = {".git", ".venv", ".tools", ".generator", "__pycache__", ".pytest_cache", "node_modules"}


@dataclass(frozen=True)
class Finding:
    key: str
    where: str
    label: str = "PLAINTEXT"


def _shapes(data: bytes, where: str, *, manifests: bool) -> list[Finding]:
    found = scan_text(data) + (scan_secret_manifests(data) if manifests else [])
    return [Finding(shape.kind, f"{where}:{shape.line}", "SECRET SHAPE") for shape in found]


def _needles(values: dict[str, str]) -> dict[bytes, str]:
    needles: dict[bytes, str] = {}
    for key, value in values.items():
        raw = value.encode()
        needles[raw] = key
        needles[base64.b64encode(raw)] = key
    return needles


def _scan(data: bytes, needles: dict[bytes, str]) -> set[str]:
    return {key for needle, key in needles.items() if needle in data}


def run_audit(repo: Repo, out: TextIO = sys.stdout, output: Format = "table") -> int:
    values: dict[str, str] = {}
    skipped_sites: list[str] = []
    short: list[str] = []
    for site in repo.site_names():
        store = SecretsFile(repo, site)
        if not store.exists():
            continue
        try:
            decrypted = store.read()
        except SopsError:
            skipped_sites.append(site)
            continue
        for key, value in decrypted.items():
            if len(value) < MIN_LENGTH:
                short.append(f"{site}/{key}")
            else:
                values[f"{site}/{key}"] = value
    needles = _needles(values)
    findings: list[Finding] = []
    files = 0
    for path in _tree_files(repo.root):
        files += 1
        data = path.read_bytes()
        where = f"working tree: {path.relative_to(repo.root)}"
        for key in _scan(data, needles):
            findings.append(Finding(key, where))
        findings += _shapes(data, where, manifests=path.suffix in (".yaml", ".yml"))
    commits = 0
    if (repo.root / ".git").exists():
        history = proc.run(["git", "-C", repo.root, "log", "--all", "-p", "--no-color", "--no-ext-diff", "--format=commit %H"],
                           check=False, timeout=600)
        commits = history.stdout.count(b"\ncommit ") + history.stdout.startswith(b"commit ")
        current = "?"
        for line in history.stdout.splitlines():
            if line.startswith(b"commit "):
                current = line[7:19].decode()
            for key in _scan(line, needles):
                findings.append(Finding(key, f"git history: commit {current}"))
        for commit, path, shape in scan_history(history.stdout):
            findings.append(Finding(shape.kind, f"git history: commit {commit} {path}:{shape.line}", "SECRET SHAPE"))
    rendered = 0
    if find("kubectl") is not None:
        check_yaml_files(repo.root, [repo.root / "base", repo.root / "overlays"])
        for overlay in sorted((repo.root / "overlays").glob("*/kustomization.yaml")):
            rendered += 1
            built = kustomize.build(overlay.parent)
            where = f"rendered output: {overlay.parent.relative_to(repo.root)}"
            for key in _scan(built, needles):
                findings.append(Finding(key, where))
            findings += _shapes(built, f"{where} (built), line", manifests=True)
    for site in skipped_sites:
        print(f"warning: sites/{site}/secrets.sops.yaml: no age key here decrypts it; its values were not audited",
              file=sys.stderr)
    if short:
        print(f"note: {len(short)} value(s) shorter than {MIN_LENGTH} characters not searched: {', '.join(short)}",
              file=sys.stderr)
    unique = sorted(set(findings), key=lambda f: (f.label, f.key, f.where))
    summary = (f"audit failed: {len(unique)} place(s) hold a secret in plaintext" if unique else
               f"audit passed: secret shapes and {len(values)} site value(s) searched in {files} file(s), "
               f"{commits} commit(s) of history, {rendered} rendered overlay(s); no plaintext found")
    emit([{"label": f.label, "key": f.key, "where": f.where} for f in unique], output,
         lambda: "\n".join([*(f"{f.label} {f.key}: {f.where}" for f in unique), mark(not unique, summary, out)]), out)
    if output != "table":  # the rows are the findings; the verdict goes beside them
        print(summary, file=sys.stderr)
    return 1 if unique else 0


def _tree_files(root: Path):
    stack = [root]
    while stack:
        directory = stack.pop()
        for entry in sorted(directory.iterdir()):
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in SKIP_DIRS:
                    stack.append(entry)
            elif entry.is_file():
                yield entry
