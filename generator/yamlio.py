"""One YAML dumper for everything the generator writes, and a loader that remembers lines."""

from __future__ import annotations

from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError


class _Dumper(yaml.SafeDumper):
    """Two-space indentation, indented sequences, block literals for multi-line strings."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:  # never emit anchors: every file reads on its own
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump(data: Any) -> str:
    """One document, keys in insertion order (the renderer fixes the order)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def dump_all(docs: list[Any]) -> str:
    return "---\n".join(dump(d) for d in docs)


class YamlSyntaxError(Exception):
    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def load_with_lines(text: str) -> Any:
    """Parse one YAML document into CommentedMap/CommentedSeq, which keep line numbers."""
    parser = YAML(typ="rt")
    parser.allow_duplicate_keys = False
    try:
        docs = list(parser.load_all(text))
    except DuplicateKeyError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else ""
        raise YamlSyntaxError(f"duplicate key {key!r}".replace(" ''", ""), line) from exc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(f"YAML syntax error: {exc.problem or exc.context}", line) from exc
    if len(docs) > 1:
        raise YamlSyntaxError("expected one YAML document, found several", None)
    return docs[0] if docs else None


def to_plain(node: Any) -> Any:
    """CommentedMap/Seq -> dict/list (keeps key order)."""
    if isinstance(node, CommentedMap):
        return {k: to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [to_plain(v) for v in node]
    return node


def line_of(root: Any, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of ``path`` that exists in ``root``."""
    node, line = root, None
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(root, (CommentedMap, CommentedSeq)):
        line = root.lc.line + 1
    return line
