"""Stage, validate, swap: the only code that writes the rendered tree.

The new tree is staged under ``.generator/`` (same filesystem), unchanged files are hard-linked
from the current tree so they are never rewritten, an optional validator runs on the stage, and
each changed output directory is then exchanged with its staged copy in one atomic rename
(``renameat2(RENAME_EXCHANGE)`` on Linux). A failure before the swap leaves the previous tree
untouched. A lock file serialises concurrent renders.
"""

from __future__ import annotations

import ctypes
import difflib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from generator.errors import WriteFailed

CREATED, UPDATED, DELETED, UNCHANGED = "created", "updated", "deleted", "unchanged"


@dataclass(frozen=True)
class Change:
    path: str
    status: str


@dataclass
class Plan:
    """What a render would do to the tree: one entry per file."""

    changes: list[Change] = field(default_factory=list)
    desired: dict[str, bytes] = field(default_factory=dict)
    current: dict[str, bytes] = field(default_factory=dict)

    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.status != UNCHANGED]

    def counts(self) -> dict[str, int]:
        out = {CREATED: 0, UPDATED: 0, DELETED: 0, UNCHANGED: 0}
        for change in self.changes:
            out[change.status] += 1
        return out

    def diff(self) -> str:
        chunks: list[str] = []
        for change in self.pending():
            old = self.current.get(change.path, b"").decode("utf-8", "replace").splitlines(keepends=True)
            new = self.desired.get(change.path, b"").decode("utf-8", "replace").splitlines(keepends=True)
            src = f"a/{change.path}" if change.status != CREATED else "/dev/null"
            dst = f"b/{change.path}" if change.status != DELETED else "/dev/null"
            chunks.extend(difflib.unified_diff(old, new, src, dst))
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in chunks)


@dataclass(frozen=True)
class Scope:
    """The part of the tree a render owns: whole directories, plus single files."""

    dirs: tuple[str, ...]
    files: tuple[str, ...] = ()

    def owns(self, path: str) -> bool:
        if path in self.files:
            return True
        parts = path.split("/")  # a lookup per ancestor, not a scan of every directory (fleets own hundreds)
        return any("/".join(parts[:depth]) in self._dir_set for depth in range(1, len(parts)))

    @cached_property
    def _dir_set(self) -> frozenset[str]:
        return frozenset(self.dirs)


def read_current(root: Path, scope: Scope) -> dict[str, bytes]:
    current: dict[str, bytes] = {}
    for rel in scope.files:
        path = root / rel
        if path.is_file():
            current[rel] = path.read_bytes()
    for rel_dir in scope.dirs:
        base = root / rel_dir
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() or path.is_symlink():
                current[path.relative_to(root).as_posix()] = path.read_bytes() if path.is_file() else b""
    return current


def plan(root: Path, scope: Scope, desired: dict[str, bytes]) -> Plan:
    stray = [p for p in desired if not scope.owns(p)]
    if stray:
        raise AssertionError(f"renderer produced files outside its scope: {stray}")
    current = read_current(root, scope)
    changes = []
    for path in sorted(set(current) | set(desired)):
        if path not in desired:
            changes.append(Change(path, DELETED))
        elif path not in current:
            changes.append(Change(path, CREATED))
        else:
            changes.append(Change(path, UNCHANGED if current[path] == desired[path] else UPDATED))
    return Plan(changes, desired, current)


@contextmanager
def locked(work_dir: Path) -> Iterator[None]:
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / "lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply(root: Path, work_dir: Path, scope: Scope, the_plan: Plan,
          validate: Callable[[Path], None] | None = None, borrow: tuple[str, ...] = ()) -> None:
    """Make the tree match ``the_plan.desired``. Call under ``locked``; re-plan inside the lock.
    ``borrow``: output directories outside the scope that the staged tree refers to (the sites a render left
    alone, which the fleet layer lists); the stage points at them, read-only, so it builds whole."""
    if not the_plan.pending():
        return
    pending = {change.path for change in the_plan.pending()}
    above = {parent for path in pending for parent in _parents(path)}  # a lookup a directory: fleets own thousands
    changed_dirs = [d for d in scope.dirs if d in above]
    changed_files = [f for f in scope.files if f in pending]
    _check_writable(root, changed_dirs, changed_files)
    work_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix="stage-", dir=work_dir))
    try:
        try:
            _stage(root, stage, scope, the_plan, borrow)
        except OSError as exc:
            raise WriteFailed(f"cannot stage the rendered tree in {stage}: {exc.strerror or exc}; nothing was changed") from exc
        if validate is not None:
            validate(stage)
        for rel in changed_dirs:
            _swap_dir(root / rel, stage / rel)
        for rel in changed_files:
            target = root / rel
            if rel in the_plan.desired:
                os.replace(stage / rel, target)
            elif target.exists():
                target.unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _stage(root: Path, stage: Path, scope: Scope, the_plan: Plan, borrow: tuple[str, ...] = ()) -> None:
    """The complete desired tree of the scope, plus the rest of the repo's outputs for validation."""
    # Borrowed directories first: a symlink, not hard links (linking would touch every file's ctime, the render
    # cache's check). Made before any file is written: on ext4, symlinks made into a tree holding freshly
    # written files cost about 0.6 ms each, 20 times more (measured: 600 of them, 17 ms against 360 ms).
    owned = {parent for path in the_plan.desired for parent in _parents(path)}  # never borrow what the stage writes
    for rel in borrow:
        if (root / rel).is_dir() and rel not in owned:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(root / rel, stage / rel, target_is_directory=True)
    written = 0
    for rel, data in the_plan.desired.items():
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        source = root / rel
        if the_plan.current.get(rel) == data and source.is_file():
            os.link(source, target)  # unchanged: keep the same inode, mtime and bytes
        else:
            _write(target, data)
            written += 1
    if written:
        _sync_filesystem(stage)  # every staged file on disk before anything is swapped in: one call, not one a file
    for rel in scope.dirs:
        (stage / rel).mkdir(parents=True, exist_ok=True)
    # The operators' own extension directories, which overlays may include: hard links (symlinks kept as
    # symlinks, so the input gate still refuses one that leads out), never written to.
    for extensions in sorted((root / "sites").glob("*/extensions")):
        if extensions.is_dir() and not extensions.is_symlink():
            shutil.copytree(extensions, stage / extensions.relative_to(root), symlinks=True, copy_function=os.link)


def _sync_filesystem(path: Path) -> None:
    """Flush the filesystem that holds ``path`` (syncfs): not every filesystem of a shared machine, as sync()
    does, whose other tenants' dirty pages can stall it."""
    syncfs = getattr(_libc, "syncfs", None)
    if syncfs is not None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    return ("/".join(parts[:end]) for end in range(1, len(parts)))


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)  # made durable by one flush of the stage's filesystem before the swap (_stage)


def _check_writable(root: Path, dirs: list[str], files: list[str]) -> None:
    """Everything the swap renames must be writable: each changed directory and its parent (moving a
    directory rewrites its '..'), and each changed file's directory. Checked before anything moves."""
    needed: set[Path] = set()
    for rel in dirs:
        target = root / rel
        needed |= {target, target.parent} if target.exists() else {_nearest_existing(target.parent)}
    for rel in files:
        needed.add(_nearest_existing((root / rel).parent))
    for path in sorted(needed):
        if not os.access(path, os.W_OK):
            raise WriteFailed(f"{path} is not writable; the previous tree is unchanged")


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


_libc = ctypes.CDLL(None, use_errno=True)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False where the kernel or filesystem cannot."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise WriteFailed(f"cannot replace {b}: {os.strerror(err)}; the previous tree is unchanged")


def _swap_dir(target: Path, staged: Path) -> None:
    """Replace ``target`` with ``staged`` whole. An empty staged dir deletes ``target``."""
    empty = not any(staged.iterdir())
    try:
        if target.exists() and empty:
            trash = staged.with_name(staged.name + ".old")
            os.rename(target, trash)
            shutil.rmtree(trash)
        elif target.exists():
            if not _exchange(staged, target):
                old = staged.with_name(staged.name + ".old")
                os.rename(target, old)
                os.rename(staged, target)
        elif not empty:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, target)
    except OSError as exc:
        raise WriteFailed(f"cannot replace {target}: {exc.strerror or exc}") from exc
    for parent in (target.parent, target.parent.parent):
        # remove output parents left empty (deploy/flux when its last site is gone)
        if parent.name in {"overlays", "flux", "argocd", "deploy"} and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def replace_file(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """One file written whole: a temporary file next to it, synced, then renamed over it, so a failure leaves
    the previous file as it was. The temporary file is created 0600; ``mode`` sets another."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
