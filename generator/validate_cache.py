"""The validation cache, under ``.generator/cache/validate/``: kustomization directories that passed.

A directory's key is the digest of every file its build can read (the directory, and each local path
its kustomization and those it includes name, followed to the end), the schema set, the identity
of kustomize and kubeconform (pinned version, path, size, mtime, inode) and the generator's code.
A directory whose key has a record passed ``kustomize build`` + ``kubeconform -strict`` with exactly
these inputs, so it is neither built nor checked again; its warnings are replayed. Only successes
are recorded. A kustomization that names anything remote (a URL, a git reference), or a path
outside the repository, has no key and is always built.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from generator.render_cache import code_digest, signature
from generator.tools import pinned_versions, require, schemas_dir

VERSION = 2  # 2: records hold each overlay's objects (the conflict check replays them)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class _Uncacheable(Exception):
    pass


@lru_cache(maxsize=1)
def environment_digest() -> str:
    """Everything but the inputs a result depends on: the tools, the schema set, the pins, the code."""
    digest = hashlib.sha256(f"validate-cache {VERSION}\0{code_digest()}\0".encode())
    digest.update(json.dumps(sorted(pinned_versions().items())).encode())
    for tool in ("kubectl", "kubeconform"):
        path = require(tool)
        stat = path.stat()
        digest.update(f"\0{tool}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}".encode())
    schemas = schemas_dir()
    for directory, _dirs, names in sorted(os.walk(schemas)):
        for name in sorted(names):
            path = Path(directory, name)
            digest.update(f"\0{path.relative_to(schemas)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _references(text: bytes) -> list[str]:
    """Every scalar of a kustomization: whichever of them is a path is an input (over-including is safe)."""
    node = yaml.compose(text, Loader=yaml.CSafeLoader)
    found: list[str] = []
    stack = [node] if node is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            found.append(node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in node.value for part in pair)
    return found


REMOTE = ("://", "github.com/", "gitlab.com/", "bitbucket.org/", "git@", "?ref=")


class _Inputs:
    """What each kustomization directory reads, found once per run (every overlay shares base)."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.dirs: dict[str, frozenset[str]] = {}
        self.digests: dict[str, bytes] = {}
        self.open: set[str] = set()

    def of(self, directory: str) -> frozenset[str]:
        directory = os.path.realpath(directory)
        if directory in self.dirs:
            return self.dirs[directory]
        if directory in self.open or not (directory + os.sep).startswith(self.root + os.sep) and directory != self.root:
            raise _Uncacheable  # a cycle (kustomize refuses it) or a path outside the repository
        self.open.add(directory)
        kustomization = next((os.path.join(directory, n) for n in KUSTOMIZATION_FILES
                              if os.path.isfile(os.path.join(directory, n))), None)
        if kustomization is None:
            raise _Uncacheable  # kustomize fails here; let it say why
        found = {kustomization}
        if directory != self.root:  # the directory's other files too, to be safe (not the whole repository)
            found |= {e.path for e in os.scandir(directory) if e.is_file() or e.is_symlink()}
        try:
            with open(kustomization, "rb") as handle:
                scalars = _references(handle.read())
        except (OSError, yaml.YAMLError) as exc:
            raise _Uncacheable from exc
        for text in scalars:
            if any(marker in text for marker in REMOTE):
                raise _Uncacheable  # remote: its content is not ours to hash
            if not text or "\0" in text or len(text) > 4096:
                continue
            candidate = os.path.join(directory, text)
            if not os.path.lexists(candidate):
                continue
            resolved = os.path.realpath(candidate)
            if os.path.isdir(resolved):
                found |= self.of(resolved)
            elif (resolved + os.sep).startswith(self.root + os.sep):
                found.add(resolved)
            else:
                raise _Uncacheable
        self.open.discard(directory)
        self.dirs[directory] = frozenset(found)
        return self.dirs[directory]

    def digest(self, path: str) -> bytes:
        if path not in self.digests:
            data = os.readlink(path).encode() if os.path.islink(path) else Path(path).read_bytes()
            self.digests[path] = hashlib.sha256(data).digest()
        return self.digests[path]

    def key(self, directory: Path, label: str) -> str | None:
        """The digest of everything ``kustomize build directory`` reads, or None when that cannot be known."""
        try:
            files = self.of(str(directory))
        except _Uncacheable:
            return None
        digest = hashlib.sha256(f"{environment_digest()}\0{label}\0".encode())
        cut = len(self.root) + 1
        for path in sorted(files):
            digest.update(f"\0{path[cut:]}\0".encode())
            digest.update(self.digest(path))
        return digest.hexdigest()


def target_keys(root: Path, targets: list[tuple[str, Path]], index_file: Path | None = None) -> dict[str, str | None]:
    """Each directory's key. With ``index_file``, a key worked out before is reused while every file it was
    worked out from keeps its stat signature (size, mtime, ctime, inode), so an unchanged fleet is neither
    read nor parsed; the index never holds a directory reached through a symlink."""
    inputs = _Inputs(root)
    index: dict[str, Any] = {}
    if index_file is not None:
        try:
            index = json.loads(index_file.read_text())
        except (OSError, ValueError):
            index = {}
        if not isinstance(index, dict) or index.get("env") != environment_digest() or index.get("root") != inputs.root:
            index = {}
    known: dict[str, Any] = index.get("targets", {}) if isinstance(index.get("targets"), dict) else {}
    keys: dict[str, str | None] = {}
    fresh: dict[str, Any] = {}
    for label, path in targets:
        entry = known.get(label)
        if isinstance(entry, dict) and isinstance(entry.get("inputs"), dict) and isinstance(entry.get("key"), str):
            try:
                if all(signature(file) == sig for file, sig in entry["inputs"].items()):
                    keys[label] = entry["key"]
                    fresh[label] = entry
                    continue
            except OSError:
                pass
        keys[label] = inputs.key(path, label)
        files = inputs.dirs.get(os.path.realpath(path))
        if keys[label] is not None and files is not None and not any(os.path.islink(f) for f in files) \
                and os.path.realpath(path) == os.path.abspath(path):
            fresh[label] = {"key": keys[label], "inputs": {f: signature(f) for f in sorted(files)}}
    merged = {label: entry for label, entry in known.items() if label not in keys or label in fresh}
    merged.update(fresh)  # the directories of other sites, not read this time, stay as they were
    if index_file is not None and merged != known:
        index_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = index_file.with_name(f".{index_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"env": environment_digest(), "root": inputs.root, "targets": merged}))
        os.replace(tmp, index_file)
    return keys


class ValidateCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str | None) -> dict[str, Any] | None:
        if key is None:
            return None
        try:
            record = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None  # none, or corrupt: built again and rewritten
        ok = isinstance(record, dict) and record.get("key") == key and isinstance(record.get("resources"), int) \
            and isinstance(record.get("warnings"), list) and all(isinstance(w, str) for w in record["warnings"]) \
            and isinstance(record.get("objects"), list) and all(
                isinstance(o, list) and len(o) == 3 and all(isinstance(p, str) for p in o) for o in record["objects"])
        return record if ok else None

    def put(self, key: str | None, resources: int, warnings: list[str], objects: list[list[str]] | None = None) -> None:
        if key is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, "resources": resources, "warnings": warnings, "objects": objects or []}))
        os.replace(tmp, path)
