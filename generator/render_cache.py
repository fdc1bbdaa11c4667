"""The render cache, under ``.generator/cache/render/``: what each site's last render read and wrote.

A site's record holds the digest of everything its output depends on (its site file, sops file,
sealing certificate and extensions, the repository-level inputs of ``REPO_INPUTS``, the generator's own
code and pins) and the stat signature (size, mtime, ctime, inode) of every file it wrote. A site whose inputs
hash the same and whose outputs still carry those signatures, with no file added, is not rendered
again: a no-op render of a fleet reads no output file and calls no tool. The fleet layer and base
have one shared record keyed on every site's digest.

A cache must never change a result: any doubt (no record, a record that does not parse, another
version, a digest or a signature that differs) is a miss, and a miss renders the site in full and
compares bytes as before. ctime cannot be set from user space, so an edited and re-dated output
file is caught. Light imports only: the no-op path runs before the renderers are imported.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from generator.layout import BASE_DIR, FLEET_DIR, PLATFORM_OUTPUT_DIR, ROOT_KUSTOMIZATION, Repo, site_output_dirs

VERSION = 1
PACKAGE = Path(__file__).resolve().parent
SHARED = "_fleet"  # the shared record's name (never a site name: those cannot start with '_')
SHARED_OUTPUTS = (BASE_DIR, FLEET_DIR, PLATFORM_OUTPUT_DIR, ROOT_KUSTOMIZATION)
SITE_INPUTS = ("site.yaml", "secrets.sops.yaml", "sealing-cert.pem")
REPO_INPUTS = (".sops.yaml", "platform.yaml", "platform/git.sops.yaml", "platform/sealing-cert.pem")


def code_digest() -> str:
    """The generator's code, templates and tool pins: a new generator renders everything again."""
    digest = hashlib.sha256(f"render-cache {VERSION}".encode())
    pins = PACKAGE.parent / "scripts" / "versions.env"
    files = sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*files, pins]:
        digest.update(f"\0{path.relative_to(PACKAGE.parent)}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()


def signature(path: str | Path) -> list[int]:
    """What says a file was not touched since: size, mtime, ctime (user space cannot set it) and inode."""
    stat = os.lstat(path)
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _files_under(root: Path, rels: tuple[str, ...]) -> dict[str, str]:
    """Every file (or symlink) below these paths, relative to ``root``: plain strings, as a fleet has thousands."""
    found: dict[str, str] = {}
    top = str(root)
    cut = len(top) + 1
    for rel in rels:
        base = os.path.join(top, rel)
        if os.path.isdir(base) and not os.path.islink(base):
            for directory, dirs, names in os.walk(base):
                for name in names + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
                    path = os.path.join(directory, name)
                    found[path[cut:]] = path
        elif os.path.lexists(base):
            found[rel] = base
    return found


@dataclass
class RenderCache:
    repo: Repo

    @property
    def directory(self) -> Path:
        return self.repo.work_dir / "cache" / "render"

    @cached_property
    def code(self) -> str:
        return code_digest()

    @cached_property
    def _repo_inputs(self) -> bytes:
        """The repository-level inputs every site's render reads: sops rules, platform settings, the engines'
        git credential and certificate (a site's Flux source names the credential's Secret)."""
        digest = hashlib.sha256()
        for rel in REPO_INPUTS:
            path = self.repo.root / rel
            digest.update(f"\0{rel}\0".encode())
            digest.update(path.read_bytes() if path.is_file() else b"-")
        return digest.digest()

    def site_key(self, name: str) -> str:
        digest = hashlib.sha256(f"{self.code}\0{name}\0".encode())
        digest.update(self._repo_inputs)
        site_dir = self.repo.site_dir(name)
        for input_name in SITE_INPUTS:
            path = site_dir / input_name
            digest.update(f"\0{input_name}\0".encode())
            digest.update(path.read_bytes() if path.is_file() else b"-")
        extensions = site_dir / "extensions"
        if extensions.is_dir() or extensions.is_symlink():
            for rel, path in sorted(_files_under(site_dir, ("extensions",)).items()):
                link = os.readlink(path) if os.path.islink(path) else ""
                digest.update(f"\0{rel}\0{link}\0".encode())
                digest.update(Path(path).read_bytes() if not link and os.path.isfile(path) else b"-")
        return digest.hexdigest()

    def fleet_key(self, keys: dict[str, str]) -> str:
        return hashlib.sha256(json.dumps([self.code, sorted(keys.items())]).encode()).hexdigest()

    def _load(self, name: str) -> dict[str, Any] | None:
        try:
            record = json.loads((self.directory / f"{name}.json").read_text())
        except (OSError, ValueError):
            return None  # none yet, or corrupt: a miss, rebuilt by the next write
        if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(record.get("files"), dict):
            return None
        return record

    def record(self, name: str, key: str) -> dict[str, Any] | None:
        """The record of ``name`` if it was made from these inputs (its outputs may have changed since)."""
        record = self._load(name)
        return record if record is not None and record.get("key") == key else None

    def fresh(self, name: str, key: str, rels: tuple[str, ...]) -> dict[str, Any] | None:
        """The record of ``name`` when its key matches and every output it names is as it was written."""
        record = self.record(name, key)
        if record is None:
            return None
        present = _files_under(self.repo.root, rels)
        files = record["files"]
        if set(present) != set(files):
            return None
        try:
            if any(signature(path) != files[rel] for rel, path in present.items()):
                return None
        except OSError:
            return None
        return record

    def fresh_site(self, name: str, key: str) -> dict[str, Any] | None:
        return self.fresh(name, key, site_output_dirs(name))

    def fresh_fleet(self, key: str) -> dict[str, Any] | None:
        return self.fresh(SHARED, key, SHARED_OUTPUTS)

    def store(self, name: str, key: str, rels: tuple[str, ...], model: str | None = None) -> None:
        files = {rel: signature(path) for rel, path in _files_under(self.repo.root, rels).items()}
        record = {"version": VERSION, "key": key, "files": files, "model": model}
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.json.{os.getpid()}"
        tmp.write_text(json.dumps(record, separators=(",", ":")))
        os.replace(tmp, self.directory / f"{name}.json")

    def store_site(self, name: str, key: str, model: str | None) -> None:
        self.store(name, key, site_output_dirs(name), model)

    def store_fleet(self, key: str) -> None:
        self.store(SHARED, key, SHARED_OUTPUTS)

    def forget(self, name: str) -> None:
        (self.directory / f"{name}.json").unlink(missing_ok=True)


def orphans(repo: Repo, live: set[str]) -> list[str]:
    """Output directories of sites that no longer exist: an --all render removes them."""
    found = []
    for parent in ("overlays", "deploy/flux", "deploy/argocd"):
        base = repo.root / parent
        if base.is_dir():
            found += [f"{parent}/{d.name}" for d in base.iterdir() if d.is_dir() and d.name not in live]
    return found


@dataclass
class Survey:
    """What the cache knows before a render: every site's input digest and the records still fresh."""

    keys: dict[str, str]
    fresh: dict[str, dict[str, Any]]
    fleet_fresh: bool
    fleet_files: int = 0

    def unchanged(self, names: list[str]) -> int | None:
        """The number of rendered files when nothing is to render (every site and the fleet layer fresh)."""
        if not self.fleet_fresh or len(self.fresh) != len(self.keys) or any(n not in self.fresh for n in names):
            return None
        return sum(len(record["files"]) for record in self.fresh.values()) + self.fleet_files


def survey(repo: Repo, *, everything: bool) -> Survey:
    cache = RenderCache(repo)
    keys = {name: cache.site_key(name) for name in repo.site_names()}
    fresh: dict[str, dict[str, Any]] = {}
    for name, key in keys.items():
        record = cache.fresh_site(name, key)
        if record is not None:
            fresh[name] = record
    fleet = cache.fresh_fleet(cache.fleet_key(keys)) if len(fresh) == len(keys) else None
    fleet_fresh = fleet is not None and not (everything and orphans(repo, set(keys)))
    return Survey(keys, fresh, fleet_fresh, len(fleet["files"]) if fleet else 0)
