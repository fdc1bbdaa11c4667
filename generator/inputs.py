"""Reading what the user (or a pull request) hands the generator: every input may be hostile.

One place reads input files: size-capped, inside the repository (a symlink leading out is refused),
with an error that says what happened (no such file, permission denied, a directory). YAML is first
walked as an event stream by libyaml, which bounds nesting depth, node count and alias expansion
before any parser builds a tree, so a "billion laughs" file or a deeply nested one fails in
milliseconds with one line naming the file and the limit.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from generator.errors import SiteError
from generator.yamlio import YamlSyntaxError, load_with_lines

MAX_INPUT_BYTES = 1_000_000
MAX_DEPTH = 64  # a site file is about 5 deep
MAX_NODES = 200_000  # scalars and collections, every alias counted as the nodes it stands for
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_read: dict[str, bytes] | None = None  # while a command reads once (``reading_once``): path -> the bytes read


@contextmanager
def reading_once() -> Iterator[None]:
    """Within this block every input file is read once: a later read of the same path (the survey's hash, the
    loader's parse, the sealing's structure check and sops's decrypt) gets the bytes the first read passed
    through the gate, so every step sees the same file. Outside it, every read goes to the disk."""
    global _read
    outer, _read = _read, _read if _read is not None else {}
    try:
        yield
    finally:
        _read = outer


def read_input(path: Path, shown: str, *, root: Path | None = None, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of an input file, or SiteError saying why not."""
    if root is not None:
        try:
            path.resolve().relative_to(root.resolve())
        except ValueError:
            raise SiteError(shown, f"leads out of the repository (to {path.resolve()}); "
                                   "copy the file into the repository instead of linking it") from None
        except OSError as exc:  # a symlink loop
            raise SiteError(shown, f"cannot resolve: {exc.strerror or exc}") from exc
    known = _read.get(str(path)) if _read is not None else None
    if known is not None:
        if len(known) > limit:
            raise SiteError(shown, f"file is larger than the limit of {limit} bytes ({len(known)} bytes)")
        return known
    try:
        size = path.stat().st_size
        if size > limit:
            raise SiteError(shown, f"file is larger than the limit of {limit} bytes ({size} bytes)")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SiteError(shown, _why(exc)) from exc
    if len(data) > limit:
        raise SiteError(shown, f"file is larger than the limit of {limit} bytes")
    if _read is not None:
        _read[str(path)] = data
    return data


def _why(exc: OSError) -> str:
    reasons = {errno.ENOENT: "no such file", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EISDIR: "is a directory, not a file", errno.ELOOP: "a symlink loop",
               errno.ENOTDIR: "no such file (a parent is not a directory)"}
    return reasons.get(exc.errno, f"cannot read: {exc.strerror or exc}")


class YamlLimitExceeded(Exception):
    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem, self.line = problem, line


def check_yaml_limits(text: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Walk the event stream; raise YamlLimitExceeded at the first breach. Syntax errors are left to the parser."""
    depth = nodes = 0
    anchors: dict[str, int] = {}  # anchor -> nodes it stands for, aliases expanded
    open_anchors: list[tuple[str | None, int]] = []  # per open collection: its anchor, nodes before it
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                nodes += 1
                if depth > max_depth:
                    raise YamlLimitExceeded(f"nested deeper than the limit of {max_depth} levels", line)
                open_anchors.append((event.anchor, nodes))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                anchor, before = open_anchors.pop()
                if anchor:
                    anchors[anchor] = nodes - before + 1
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor:
                    anchors[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                nodes += anchors.get(event.anchor, 1)
            if nodes > max_nodes:
                raise YamlLimitExceeded(f"more than the limit of {max_nodes} nodes once aliases are expanded "
                                        "(an alias bomb?)", line)
    except yaml.YAMLError:
        return  # the real parser reports it with its line


def checked_text(data: bytes, shown: str) -> str:
    """UTF-8 text whose YAML stays within the limits; SiteError naming the file (and line) otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SiteError(shown, f"not UTF-8 text (byte {exc.start})") from exc
    try:
        check_yaml_limits(text)
    except YamlLimitExceeded as exc:
        raise SiteError(shown, exc.problem, line=exc.line) from exc
    return text


def safe_load_limited(data: bytes, shown: str) -> Any:
    """Plain Python from one YAML document of an input file, within the limits; SiteError otherwise."""
    text = checked_text(data, shown)
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SiteError(shown, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}",
                        line=mark.line + 1 if mark else None) from exc


def check_yaml_files(root: Path, directories: list[Path]) -> None:
    """Every YAML file under these directories within the limits, before a tool (kustomize) parses them:
    the rendered tree is generated, but a pull request can make any file of it hostile."""
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.yaml")):
            shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            checked_text(read_input(path, shown, root=root), shown)


def read_mapping(path: Path, shown: str, *, empty: str, what: str, root: Path | None = None) -> dict[str, Any]:
    """A YAML file whose top level is a mapping, with line numbers kept; SiteError otherwise."""
    return parse_mapping(checked_text(read_input(path, shown, root=root), shown), shown, empty=empty, what=what)


def parse_mapping(text: str, shown: str, *, empty: str, what: str) -> dict[str, Any]:
    """The checked text of an input file (``checked_text``) as a mapping with line numbers; SiteError otherwise."""
    try:
        tree = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise SiteError(shown, exc.problem, line=exc.line) from exc
    if tree is None:
        raise SiteError(shown, empty)
    if not isinstance(tree, dict):
        raise SiteError(shown, f"top level must be a mapping of {what}, found {kind_of(tree)}", line=1)
    return tree


def kind_of(value: Any) -> str:  # noqa: ANN401
    kinds = ((bool, "a boolean"), (dict, "a mapping"), (list, "a list"), (str, "a string"), (int, "an integer"), (float, "a number"))
    if value is None:
        return "nothing"
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
