"""The render cache, under ``.generator/cache/render/``: what each site's last render read and wrote.

A site's record holds the digest of everything its output depends on (its site file, sops file,
sealing certificate and extensions, the repository-level inputs of ``REPO_INPUTS``, the generator's own
code and pins) and the stat signature (size, mtime, ctime, inode) of every file and directory it wrote: a
directory's mtime and ctime move when an entry is added, removed or renamed in it, so the outputs are proven
unchanged without listing them. Each input file's hash is kept with its own signature and reused while that
holds. A site whose inputs hash the same and whose outputs still carry those signatures is not rendered
again: a no-op render of a fleet reads no output file and calls no tool. The record also keeps what the
fleet layer reads of the site (``model.FleetEntry``), so rendering one site of a fleet does not read the
others. The fleet layer and base have one shared record keyed on every site's digest.

A cache must never change a result: any doubt (no record, a record that does not parse, another
version, a digest or a signature that differs) is a miss, and a miss renders the site in full and
compares bytes as before. ctime cannot be set from user space, so an edited and re-dated output
file is caught. Light imports only: the no-op path runs before the renderers are imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from stat import S_ISREG
from typing import Any

from generator.errors import SiteError
from generator.inputs import read_input
from generator.layout import BASE_DIR, CLUSTERS_DIR, FLEET_DIR, PLATFORM_OUTPUT_DIR, ROOT_KUSTOMIZATION, Repo, site_output_dirs

VERSION = 3
PACKAGE = Path(__file__).resolve().parent
SHARED = "_fleet"  # the shared record's name (never a site name: those cannot start with '_')
SHARED_OUTPUTS = (BASE_DIR, FLEET_DIR, PLATFORM_OUTPUT_DIR, CLUSTERS_DIR, ROOT_KUSTOMIZATION)
SITE_INPUTS = ("site.yaml", "secrets.sops.yaml", "sealing-cert.pem")
REPO_INPUTS = (".sops.yaml", "platform.yaml", "platform/git.sops.yaml", "platform/sealing-cert.pem")
SECOND = 1_000_000_000


@cache  # once a process: the code a process runs does not change under it
def code_digest() -> str:
    """The generator's code, templates and tool pins: a new generator renders everything again."""
    digest = hashlib.sha256(f"render-cache {VERSION}".encode())
    pins = PACKAGE.parent / "scripts" / "versions.env"
    files = sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*files, pins]:
        digest.update(f"\0{path.relative_to(PACKAGE.parent)}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()


def signature(path: str | Path, *, follow: bool = False) -> list[int]:
    """What says a file was not touched since: size, mtime, ctime (user space cannot set it) and inode.
    For a directory, mtime and ctime move whenever an entry is added, removed or renamed in it."""
    stat = os.stat(path) if follow else os.lstat(path)
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def provable(sig: list[int], since_ns: int) -> list[int]:
    """The signature as a record keeps it: empty (equal to no signature) when it cannot prove anything. A
    filesystem that keeps whole seconds (no sub-second part) cannot tell a change made in the second the record
    is written from the state it records, so such a timestamp is not trusted (git's "racily clean" entries)."""
    coarse = sig[1] % SECOND == 0 or sig[2] % SECOND == 0
    return [] if coarse and max(sig[1], sig[2]) >= since_ns - SECOND else sig


def _walk(top: str, cut: int, dirs: dict[str, Any], files: dict[str, list[int]]) -> None:
    """Each directory's signature, taken before it is listed (an entry added meanwhile moves it past the
    record), then its files and symlinks; subdirectories alike."""
    dirs[top[cut:]] = signature(top)
    with os.scandir(top) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, cut, dirs, files)
            else:
                files[entry.path[cut:]] = signature(entry.path)


def snapshot(root: Path, rels: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The directories (None: absent) and the files below these output paths, with their signatures."""
    dirs: dict[str, Any] = {}
    files: dict[str, list[int]] = {}
    top = str(root)
    cut = len(top) + 1
    for rel in rels:
        base = os.path.join(top, rel)
        if os.path.isdir(base) and not os.path.islink(base):
            _walk(base, cut, dirs, files)
        elif os.path.lexists(base):
            files[rel] = signature(base)
        else:
            dirs[rel] = None
    return dirs, files


def _files_under(root: str | Path, rels: tuple[str, ...]) -> dict[str, str]:
    """Every file (or symlink) below these paths, relative to ``root``."""
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


def _valid(record: Any) -> bool:  # noqa: ANN401
    return isinstance(record, dict) and record.get("version") == VERSION and isinstance(record.get("key"), str) \
        and isinstance(record.get("written"), int) and all(isinstance(record.get(k), dict) for k in ("dirs", "files", "inputs"))


@dataclass
class RenderCache:
    repo: Repo

    @property
    def directory(self) -> Path:
        return self.repo.work_dir / "cache" / "render"

    @cached_property
    def _records(self) -> str:  # the directory as a string: a fleet's survey opens hundreds of records
        return str(self.directory)

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
            digest.update(self._read(path, rel) if path.is_file() else b"-")
        return digest.digest()

    def _read(self, path: Path, shown: str) -> bytes:
        """An input's bytes, through the input gate (the loader then parses the same bytes, not a second read);
        a file the gate refuses hashes as its refusal and signature, and the step that reads it names the
        problem."""
        try:
            return read_input(path, shown, root=self.repo.root)
        except SiteError as exc:  # its signature stands for its content: ctime moves with every write
            try:
                stat = os.stat(path)
                sig = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
            except OSError:
                sig = []
            return f"refused\0{exc.message}\0{sig}".encode()

    def site_inputs(self, name: str, record: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        """Each input file's signature (following a symlink) and sha256, "-" when it is not a file. A file whose
        signature the record proves unchanged is not read again."""
        known = record["inputs"] if record else {}
        found: dict[str, list[Any]] = {}
        site_dir = f"{self.repo.root}/sites/{name}"
        for input_name in SITE_INPUTS:
            path = f"{site_dir}/{input_name}"
            try:
                stat = os.stat(path)
            except OSError:
                found[input_name] = ["-"]
                continue
            now = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
            entry = known.get(input_name)
            if isinstance(entry, list) and len(entry) == 5 and entry[:4] == now:
                found[input_name] = entry
            elif S_ISREG(stat.st_mode):
                found[input_name] = [*now, hashlib.sha256(self._read(Path(path), f"sites/{name}/{input_name}")).hexdigest()]
            else:
                found[input_name] = ["-"]
        return found

    def site_key(self, name: str, inputs: dict[str, list[Any]] | None = None) -> str:
        inputs = inputs if inputs is not None else self.site_inputs(name)
        digest = hashlib.sha256(f"{self.code}\0{name}\0".encode())
        digest.update(self._repo_inputs)
        for input_name in SITE_INPUTS:
            digest.update(f"\0{input_name}\0{inputs[input_name][-1]}".encode())
        site_dir = f"{self.repo.root}/sites/{name}"
        if os.path.lexists(f"{site_dir}/extensions"):
            for rel, path in sorted(_files_under(site_dir, ("extensions",)).items()):
                link = os.readlink(path) if os.path.islink(path) else ""
                digest.update(f"\0{rel}\0{link}\0".encode())
                digest.update(self._read(Path(path), f"sites/{name}/{rel}") if not link and os.path.isfile(path) else b"-")
        return digest.hexdigest()

    def fleet_key(self, keys: dict[str, str]) -> str:
        return hashlib.sha256(json.dumps([self.code, sorted(keys.items())]).encode()).hexdigest()

    def load(self, name: str) -> dict[str, Any] | None:
        """The record of ``name``, whatever inputs it was made from; None when there is none or it is corrupt."""
        try:
            with open(os.path.join(self._records, f"{name}.json"), "rb") as handle:
                record = json.loads(handle.read())
        except (OSError, ValueError):
            return None  # none yet, or corrupt: a miss, rebuilt by the next write
        return record if _valid(record) else None

    def fleet_entry(self, name: str) -> str | None:
        """What the fleet layer reads of the site (model.FleetEntry, JSON) as its last render recorded it, if
        that render read the inputs the site has now."""
        record = self.load(name)
        if record is None or record["key"] != self.site_key(name, self.site_inputs(name, record)):
            return None
        return record.get("fleet")

    def unchanged(self, record: dict[str, Any]) -> bool:
        """Every output the record names still carries its signature, and no directory gained an entry."""
        top = f"{self.repo.root}/"
        try:
            for rel, recorded in record["dirs"].items():
                if recorded is None:
                    if os.path.lexists(top + rel):
                        return False
                elif signature(top + rel) != recorded:
                    return False
            return all(signature(top + rel) == recorded for rel, recorded in record["files"].items())
        except OSError:
            return False

    def fresh(self, name: str, key: str, record: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The record of ``name`` when its key matches and every output it names is as it was written."""
        record = record if record is not None else self.load(name)
        if record is None or record["key"] != key:
            return None
        return record if self.unchanged(record) else None

    def store(self, name: str, key: str, rels: tuple[str, ...], fleet: str | None = None,
              inputs: dict[str, list[Any]] | None = None) -> None:
        written = time.time_ns()  # before the snapshot: a change made while it is taken is never proven away
        dirs, files = snapshot(self.repo.root, rels)
        record = {"version": VERSION, "key": key, "written": written,
                  "dirs": {rel: sig if sig is None else provable(sig, written) for rel, sig in dirs.items()},
                  "files": {rel: provable(sig, written) for rel, sig in files.items()},
                  "inputs": {name: entry if len(entry) < 5 else [*provable(entry[:4], written), entry[4]]
                             for name, entry in (inputs or {}).items()},
                  "fleet": fleet}
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.json.{os.getpid()}"
        tmp.write_text(json.dumps(record, separators=(",", ":")))
        os.replace(tmp, self.directory / f"{name}.json")

    def store_site(self, name: str, key: str, fleet: str | None, inputs: dict[str, list[Any]] | None = None) -> None:
        self.store(name, key, site_output_dirs(name), fleet, inputs)

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
    """What the cache knows before a render: every site's inputs and key, its record (whatever it was made
    from) and the records still fresh."""

    keys: dict[str, str]
    inputs: dict[str, dict[str, list[Any]]]
    records: dict[str, dict[str, Any]]
    fresh: dict[str, dict[str, Any]]
    fleet_fresh: bool
    fleet_files: int = 0

    def unchanged(self, names: list[str]) -> int | None:
        """The number of rendered files when nothing is to render: the named sites (every site when none is
        named) and the fleet layer fresh."""
        if not self.fleet_fresh or any(n not in self.fresh for n in names or self.keys):
            return None
        return sum(len(self.fresh[n]["files"]) for n in names or self.keys) + self.fleet_files

    def fleet_entry(self, name: str) -> str | None:
        """What the fleet layer reads of the site, as its last render recorded it (RenderCache.fleet_entry)."""
        record = self.records.get(name)
        return record.get("fleet") if record and record["key"] == self.keys.get(name) else None


def survey(repo: Repo, names: tuple[str, ...] | list[str] = ()) -> Survey:
    """Every site's inputs and key, and which records are still fresh: of ``names`` only (their outputs are the
    ones a render of them would touch), of every site when none is named (an --all render)."""
    cache = RenderCache(repo)
    records: dict[str, dict[str, Any]] = {}
    inputs: dict[str, dict[str, list[Any]]] = {}
    keys: dict[str, str] = {}
    fresh: dict[str, dict[str, Any]] = {}
    checked = set(names) if names else None
    for name in repo.site_names():
        record = cache.load(name)
        if record is not None:
            records[name] = record
        inputs[name] = cache.site_inputs(name, record)
        keys[name] = cache.site_key(name, inputs[name])
        if record is not None and (checked is None or name in checked) and cache.fresh(name, keys[name], record):
            fresh[name] = record
    wanted = checked if checked is not None else set(keys)
    fleet = cache.fresh(SHARED, cache.fleet_key(keys)) if wanted <= set(fresh) else None
    fleet_fresh = fleet is not None and not (checked is None and orphans(repo, set(keys)))
    return Survey(keys, inputs, records, fresh, fleet_fresh, len(fleet["files"]) if fleet else 0)
