"""One YAML dumper for everything the generator writes, and a loader that remembers lines."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.cyaml import CParser

from generator.redact import shown_key
from generator.yamlstyle import Dumper as _Dumper

# ruamel, the reader that keeps lines, is imported where a document needs it (an error, an edge case): most
# reads go through libyaml (load_plain), and ruamel's import alone costs a fast render a tenth of its time.


def dump(data: Any) -> str:
    """One document, keys in insertion order (the renderer fixes the order). The fast writer covers what the
    renderers produce, byte for byte; PyYAML writes the rest."""
    from generator import fastyaml

    fast = fastyaml.dump(data)
    if fast is not None:
        return fast
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
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError

    parser = YAML(typ="rt")
    parser.allow_duplicate_keys = False
    try:
        docs = list(parser.load_all(text))
    except DuplicateKeyError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else ""
        named = shown_key(key)  # a pasted credential used as a key stays hidden
        raise YamlSyntaxError(f"duplicate key {named!r}".replace(" ''", "") if named == key
                              else f"duplicate key {named}", line) from exc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(f"YAML syntax error: {exc.problem or exc.context}", line) from exc
    if len(docs) > 1:
        raise YamlSyntaxError("expected one YAML document, found several", None)
    return docs[0] if docs else None


class _Composer(CParser, yaml.resolver.BaseResolver):
    """libyaml's parser; every plain scalar gets one private tag, and is typed below (YAML 1.2 core, as ruamel)."""


_PLAIN = "tag:generator,2026:plain"
_Composer.add_implicit_resolver(_PLAIN, re.compile(r".*", re.S), None)
_Composer.add_implicit_resolver(_PLAIN, re.compile(r"^$"), [""])


_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?[0-9]+\.[0-9]*$")
# Where YAML 1.1 (PyYAML) and 1.2 (ruamel, which names the lines) could disagree: left to the full reader.
_AMBIGUOUS = re.compile(r"^(?:[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|<<|=|[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)"
                        r"|[-+]?\.[0-9].*|[-+]?[0-9][0-9a-fA-F_:.xXoO+-]*|[0-9]{4}-.*)$")


class _NotPlain(Exception):
    pass


def load_plain(text: str) -> Any:
    """The one document of ``text`` as plain dicts, lists and scalars, read by libyaml; None when the full
    reader must decide (a syntax error, a duplicate key, an explicit tag, a scalar whose type YAML 1.1
    and 1.2 read differently), so errors and edge cases keep ``load_with_lines``' messages and lines."""
    if "!" in text:  # a tag, explicit: ruamel's reading of it is the one that counts
        return None
    composer = _Composer(text)
    try:
        node = composer.get_single_node()
        return _plain(node, {}) if node is not None else None
    except (yaml.YAMLError, _NotPlain, RecursionError):
        return None
    finally:
        composer.dispose()


def _plain(node: yaml.Node, seen: dict[int, Any]) -> Any:
    if id(node) in seen:  # an alias: the same object, never a copy (a billion laughs stays small)
        return seen[id(node)]
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _PLAIN and not node.style:
            value = _plain_scalar(node.value)
        elif node.tag == _TAG + "str" and node.style:
            value = node.value
        else:
            raise _NotPlain
    elif isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
        value = seen[id(node)] = []
        value.extend(_plain(item, seen) for item in node.value)
    elif isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
        value = seen[id(node)] = {}
        for key_node, item in node.value:
            key = _plain(key_node, seen)
            if not isinstance(key, str) or key in value:
                raise _NotPlain
            value[key] = _plain(item, seen)
    else:
        raise _NotPlain
    seen[id(node)] = value
    return value


def _plain_scalar(text: str) -> Any:
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _AMBIGUOUS.match(text):
        raise _NotPlain
    return text


def to_plain(node: Any) -> Any:
    """CommentedMap/Seq -> dict/list (keeps key order)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        return {k: to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [to_plain(v) for v in node]
    return node


def line_of(root: Any, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of ``path`` that exists in ``root``."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

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
