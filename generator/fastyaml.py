"""A fast writer for the generator's own YAML: byte for byte what ``yamlio.dump`` (PyYAML, with ``yamlstyle.Dumper``) writes.

PyYAML's pure-Python emitter spends most of a fleet render walking events; its C emitter cannot indent
sequences under a key, so switching to it would rewrite every committed file once. This writer covers
what the renderers produce (mappings with string keys, sequences, strings, numbers, booleans, None)
and asks PyYAML's own emitter and resolver how to write each scalar (plain, quoted or literal), so the
rules stay PyYAML's. Anything it does not cover (a double-quoted or folded string, a line long enough
to be folded, a key that is not a plain scalar, an unknown type) makes ``dump`` return None and the
caller uses PyYAML for that document. ``tests/unit/test_fastyaml.py`` compares the two on every
rendered file and on hostile strings.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import Any

import yaml

from generator.yamlstyle import Dumper

FOLD_GUARD = 900  # PyYAML folds plain and quoted lines past its width (1000): stay well below it
_BREAKS = "\n\x85\u2028\u2029"


class _Unsupported(Exception):
    pass


def _make_dumper() -> yaml.SafeDumper:
    return Dumper(io.StringIO(), allow_unicode=True, width=1000, default_flow_style=False, sort_keys=False)


_DUMPER = _make_dumper()
_STR_TAG = "tag:yaml.org,2002:str"
# Text PyYAML's analysis always lets stand plain (no indicator, space, break or non-ASCII character in it): only
# the resolver decides (``on``, ``1e3`` or ``2001-12-14`` read back as another type, so they are quoted).
# A ':' is an indicator only before a space or at the end.
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./@=+,:-]*(?<!:)\Z")


@lru_cache(maxsize=65536)
def _scalar(kind: type, value: Any, key: bool) -> tuple[str, str]:  # noqa: ANN401 - any YAML scalar
    """(style, text) of one scalar as PyYAML writes it: style '' plain, "'" single-quoted, '|' literal."""
    if kind is str and len(value) <= FOLD_GUARD and _PLAIN_TEXT.match(value) \
            and _DUMPER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG:
        return "", value  # the emitter's character analysis would find nothing to object to: skip it
    node = _DUMPER.represent_data(value)
    if not isinstance(node, yaml.ScalarNode):
        raise _Unsupported
    plain_ok = node.tag == _DUMPER.resolve(yaml.ScalarNode, node.value, (True, False))
    analysis = _DUMPER.analyze_scalar(node.value)
    text = node.value
    if node.style not in (None, "|"):
        raise _Unsupported
    if not node.style and plain_ok and not (key and (analysis.empty or analysis.multiline)) and analysis.allow_block_plain:
        if analysis.multiline or len(text) > FOLD_GUARD:
            raise _Unsupported
        return "", text
    if node.style == "|" and not key and analysis.allow_block:
        return "|", text
    if node.style == "|":
        raise _Unsupported
    if analysis.allow_single_quoted and not (key and analysis.multiline) and not analysis.multiline \
            and len(text) <= FOLD_GUARD:
        return "'", "'" + text.replace("'", "''") + "'"
    raise _Unsupported


def _literal(text: str, indent: int) -> str:
    hints = ""
    if text[:1] and text[0] in " " + _BREAKS:
        hints += "2"
    if text[-1:] not in tuple(_BREAKS):
        hints += "-"
    elif len(text) == 1 or text[-2] in _BREAKS:
        raise _Unsupported  # '+': PyYAML ends the document with '...'
    if any(ch in text for ch in "\x85\u2028\u2029"):
        raise _Unsupported
    pad = " " * indent
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return "|" + hints + "\n" + "".join((pad + line if line else "") + "\n" for line in lines)


def _value(value: Any, indent: int) -> str:  # noqa: ANN401
    """A scalar or empty collection after 'key: ' or '- ', with its line break."""
    if isinstance(value, dict):
        if value:
            raise _Unsupported
        return "{}\n"
    if isinstance(value, (list, tuple)):
        if value:
            raise _Unsupported
        return "[]\n"
    style, text = _scalar(type(value), value, False)
    if style == "|":
        return _literal(text, indent)
    return text + "\n"


def _mapping(data: dict[Any, Any], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for position, (key, value) in enumerate(data.items()):
        if not isinstance(key, str):
            raise _Unsupported
        style, text = _scalar(str, key, True)
        if style == "|" or len(text) > 128:
            raise _Unsupported
        out.append(text if inline and position == 0 else pad + text)
        if isinstance(value, dict) and value:
            out.append(":\n")
            _mapping(value, indent + 2, out, False)
        elif isinstance(value, (list, tuple)) and value:
            out.append(":\n")
            _sequence(value, indent + 2, out, False)
        else:
            out.append(": " + _value(value, indent + 2))


def _sequence(items: list[Any] | tuple[Any, ...], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for position, item in enumerate(items):
        out.append("- " if inline and position == 0 else pad + "- ")
        if isinstance(item, dict) and item:
            _mapping(item, indent + 2, out, True)
        elif isinstance(item, (list, tuple)) and item:
            _sequence(item, indent + 2, out, True)
        else:
            out.append(_value(item, indent + 2))


def dump(data: Any) -> str | None:  # noqa: ANN401
    """One document as PyYAML writes it, or None where this writer does not cover the data."""
    if not isinstance(data, dict) or not data:
        return None
    out: list[str] = []
    try:
        _mapping(data, 0, out, False)
    except _Unsupported:
        return None
    return "".join(out)
