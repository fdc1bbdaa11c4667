"""`generator init`: a GitOps repository ready for its first site.

It writes ``sites/``, ``.sops.yaml`` (the operator's age recipient), ``platform.yaml`` (this repository's git URL,
branch and engines, which `site new` reads), ``.gitignore`` (the generator's scratch space), a short README and,
with ``--ci``, the CI workflow (`ci init`). A file it would replace with other content stops it before anything is
written (exit 2); a second run on the same inputs changes nothing. A failure halfway removes what it made and says so.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined

from generator.errors import UsageError
from generator.layout import Repo
from generator.model import AGE_RECIPIENT_RE
from generator.model.base import GIT_URL_RE
from generator.writer import CREATED, UNCHANGED, UPDATED

ENGINES = ("flux", "argocd", "both")
BRANCH = r"^[A-Za-z0-9._/-]+$"


@dataclass(frozen=True)
class InitRequest:
    directory: Path
    git_url: str
    branch: str = "main"
    engines: str = "both"
    recipients: tuple[str, ...] = ()  # empty: the operator's own, from their age key file
    git_credential: str = "external"
    ci: str | None = None  # a provider of `ci init`
    generator_git: str | None = None
    generator_ref: str | None = None


def _check(request: InitRequest) -> tuple[str, ...]:
    import re

    if not GIT_URL_RE.match(request.git_url) or any(c in request.git_url for c in "\"'{}$\\"):
        raise UsageError("--git-url: not a git URL the engines can read (https:// or ssh://, no spaces or quotes)")
    if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", request.git_url):
        raise UsageError("--git-url: the URL holds a password; platform.yaml is committed: give the URL without it "
                         "(the engines' credential is a Secret: see gitCredential)")
    if not re.match(BRANCH, request.branch) or ".." in request.branch:
        raise UsageError("--branch: not a branch name")
    for recipient in request.recipients:
        if not AGE_RECIPIENT_RE.match(recipient):
            raise UsageError("--age-recipient: not an age recipient (age1... : the public key, never the identity)")
    if request.ci and not request.generator_git:
        raise UsageError("--ci needs --generator-git URL (where the CI fetches the generator from)")
    if request.recipients:
        return request.recipients
    from generator.secrets.age_key import default_key_file, recipients_in

    return tuple(dict.fromkeys(recipients_in(default_key_file())))


def _environment() -> Environment:
    return Environment(loader=PackageLoader("generator", "templates/init"), undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)


def planned_files(request: InitRequest, recipients: tuple[str, ...]) -> dict[str, str]:
    env = _environment()
    values = {"git_url": request.git_url, "branch": request.branch, "engines": request.engines,
              "git_credential": request.git_credential, "recipients": ",".join(recipients)}
    return {
        "sites/.gitkeep": "",
        ".sops.yaml": env.get_template("sops.yaml.j2").render(**values),
        "platform.yaml": env.get_template("platform.yaml.j2").render(**values),
        ".gitignore": env.get_template("gitignore.j2").render(**values),
        "README.md": env.get_template("README.md.j2").render(**values),
    }


def _merged_gitignore(existing: str, wanted: str) -> str:
    lines = existing.splitlines()
    missing = [line for line in wanted.splitlines() if line and not line.startswith("#") and line not in lines]
    if not missing:
        return existing
    return existing + ("" if existing.endswith("\n") or not existing else "\n") + \
        "# added by generator init\n" + "\n".join(missing) + "\n"


def _plan(root: Path, files: dict[str, str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """(what to write: rel -> (status, text)), and what is kept as it is (a README of the operator's own)."""
    writes: dict[str, tuple[str, str]] = {}
    kept: list[str] = []
    clobbered: list[str] = []
    for rel, text in files.items():
        path = root / rel
        if path.is_symlink() or (path.exists() and not path.is_file()):
            clobbered.append(rel)
            continue
        current = path.read_text(errors="replace") if path.is_file() else None
        if rel == ".gitignore" and current is not None:
            text = _merged_gitignore(current, text)
        if current is None:
            writes[rel] = (CREATED, text)
        elif current == text:
            writes[rel] = (UNCHANGED, text)
        elif rel == ".gitignore":
            writes[rel] = (UPDATED, text)
        elif rel == "README.md":
            kept.append(rel)
        else:
            clobbered.append(rel)
    sites = Repo(root).site_names() if (root / "sites").is_dir() else []
    if sites:
        clobbered.append(f"sites/ (holds {len(sites)} site{'s' if len(sites) != 1 else ''})")
    if clobbered:
        raise UsageError(f"{root}: not a new repository: init would replace {', '.join(clobbered)}; nothing was "
                         "written (run init in an empty directory or a fresh clone)")
    return writes, kept


def run_init(request: InitRequest, out: TextIO = sys.stdout) -> int:
    recipients = _check(request)
    root = request.directory.resolve()
    files = planned_files(request, recipients)
    ci_paths: list[str] = []
    if request.ci:
        from generator.ci_workflows import CiRequest, _status, workflow_files

        ci_request = CiRequest(request.ci, request.generator_git or "", request.generator_ref)
        # a bad URL or ref, or a workflow of the operator's own, stops here, before anything is written
        for path, data in workflow_files(ci_request).items():
            _status(root / path, path, data, force=False)
            ci_paths.append(path)
    made_root = not root.exists()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    writes, kept = _plan(root, files) if not made_root else ({rel: (CREATED, text) for rel, text in files.items()}, [])
    made: list[Path] = []
    backups: dict[Path, bytes] = {}
    try:
        root.mkdir(parents=True, exist_ok=True)
        for rel, (status, text) in writes.items():
            path = root / rel
            if status == UNCHANGED:
                continue
            if path.is_file():
                backups[path] = path.read_bytes()
            else:
                made.extend(p for p in reversed([path, *path.parents]) if p != root and root in p.parents
                            and not p.exists())
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if request.ci:
            from generator.ci_workflows import ci_init

            for target in (root / path for path in ci_paths):
                made.extend(p for p in reversed([target, *target.parents]) if p != root and root in p.parents
                            and not p.exists())
            ci_init(Repo(root), ci_request, out)
    except BaseException:
        print(f"rolled back: {_roll_back(root, made, backups, made_root)}", file=out)  # the error stays one line
        raise
    for rel, (status, _) in writes.items():
        print(f"{status:<9} {rel}", file=out)
    for rel in kept:
        print(f"kept      {rel} (yours; the generator's README would differ)", file=out)
    print(f"next: generator site new NAME --domain DOMAIN --cert sealing-cert.pem (in {root})", file=out)
    return 0


def _roll_back(root: Path, made: list[Path], backups: dict[Path, bytes], made_root: bool) -> str:
    """Remove what this run made and restore what it changed; say what that was."""
    if made_root:
        shutil.rmtree(root, ignore_errors=True)
        return f"removed {root}"
    removed = []
    for path in sorted(set(made), key=lambda p: len(p.parts)):  # a directory it made goes with what it holds
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.relative_to(root).as_posix() + "/")
        elif path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path.relative_to(root).as_posix())
    for path, data in backups.items():
        path.write_bytes(data)
    restored = [p.relative_to(root).as_posix() for p in backups]
    parts = ([f"removed {', '.join(sorted(removed))}"] if removed else []) + (
        [f"restored {', '.join(sorted(restored))}"] if restored else [])
    return "; ".join(parts) or "nothing had been written"
