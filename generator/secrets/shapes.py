"""Secret shapes: what a leaked credential looks like, found without any key.

The keyless half of `generator audit`. It reports where (file and line, or commit, file and line),
and the kind of secret, never the value.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import yaml

# One-line shapes. Each is specific enough that an example in documentation would have to be a real
# credential to match (placeholders like sk-… or AKIA... are too short).
LINE_SHAPES = {
    # (split so that this file does not itself look like key material)
    "age secret key": re.compile(rb"AGE-SECRET-" rb"KEY-1[02-9AC-HJ-NP-Z]{58}"),
    "sk- API key": re.compile(rb"(?<![A-Za-z0-9_-])sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}"),
    "cloud access key id": re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "bearer token": re.compile(rb"[Bb]earer\s+[A-Za-z0-9\-._~+/]{24,}=*"),
}
PEM_PRIVATE = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----(.*?)(?:-----END|\Z)", re.S)
PEM_BODY = re.compile(rb"[A-Za-z0-9+/=]")
MIN_PEM_BODY = 64  # a real key is hundreds of base64 characters; test stubs ("MIIB") are not keys
MIN_ENTROPY_LENGTH = 16
ENTROPY_BITS = 3.5
HEX = re.compile(r"[0-9a-fA-F]{32,}")  # bits per character: random keys score 4.5-6, words and URLs mostly below


@dataclass(frozen=True)
class Shape:
    kind: str
    line: int


def scan_text(data: bytes) -> list[Shape]:
    found = [Shape(kind, _line(data, m.start())) for kind, pattern in LINE_SHAPES.items()
             for m in pattern.finditer(data)]
    for match in PEM_PRIVATE.finditer(data):
        body = match.group(2).replace(b"\\n", b"\n")
        if len(PEM_BODY.findall(body)) >= MIN_PEM_BODY:
            found.append(Shape("private key block", _line(data, match.start())))
    return found


def scan_secret_manifests(data: bytes) -> list[Shape]:
    """High-entropy values in the data or stringData of a plain Secret (not a SealedSecret, not sops)."""
    if b"Secret" not in data:
        return []
    found: list[Shape] = []
    try:
        loader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
        for node in yaml.compose_all(data, Loader=loader):
            found += _secret_node(node)
    except yaml.YAMLError:
        return []
    return found


def _secret_node(node: yaml.Node | None) -> list[Shape]:
    if not isinstance(node, yaml.MappingNode):
        return []
    fields = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    kind = fields.get("kind")
    if not isinstance(kind, yaml.ScalarNode) or kind.value != "Secret" or "sops" in fields:
        return []
    found = []
    for section, encoded in (("data", True), ("stringData", False)):
        values = fields.get(section)
        if not isinstance(values, yaml.MappingNode):
            continue
        for key, value in values.value:
            if isinstance(value, yaml.ScalarNode) and _looks_random(value.value, encoded):
                found.append(Shape(f"high-entropy value in Secret {section}.{key.value}", value.start_mark.line + 1))
    return found


def _looks_random(value: str, encoded: bool) -> bool:
    if encoded:
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return len(value) >= MIN_ENTROPY_LENGTH  # binary data: a key of some kind
    if len(value) < MIN_ENTROPY_LENGTH or value.startswith("ENC[") or "://" in value or any(c.isspace() for c in value):
        return False
    classes = sum(any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit))
    if classes < 3 and not HEX.fullmatch(value):
        return False  # words, host names, paths: a generated key mixes cases and digits (or is long hex)
    counts = Counter(value)
    entropy = -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())
    return entropy >= ENTROPY_BITS


def scan_history(log: bytes) -> Iterator[tuple[str, str, Shape]]:
    """(commit, path, shape) for every shape in a line that a commit added (`git log -p --format=commit %H`)."""
    for commit, path, added in _added_lines(log):
        text = b"\n".join(line for _, line in added)
        for shape in scan_text(text):
            yield commit, path, Shape(shape.kind, added[shape.line - 1][0])


def _added_lines(log: bytes) -> Iterable[tuple[str, str, list[tuple[int, bytes]]]]:
    commit, path, new_line = "?", "?", 0
    added: list[tuple[int, bytes]] = []
    hunk = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)")
    for line in log.split(b"\n"):
        if line.startswith(b"commit ") and len(line) >= 47:
            if added:
                yield commit, path, added
            commit, added = line[7:19].decode(), []
        elif line.startswith(b"+++ "):
            if added:
                yield commit, path, added
            path, added = line[6:].decode(errors="replace") if line.startswith(b"+++ b/") else "?", []
        elif (match := hunk.match(line)) is not None:
            new_line = int(match.group(1))
        elif line.startswith(b"+"):
            added.append((new_line, line[1:]))
            new_line += 1
        elif line.startswith(b" "):
            new_line += 1
    if added:
        yield commit, path, added


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
