"""Check a site's sops file before sops sees it, so a malformed file gets file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

from generator.errors import SiteError
from generator.model import SECRET_KEY_RE
from generator.inputs import read_input, read_mapping, safe_load_limited
from generator.yamlio import line_of

ENCRYPTED = re.compile(r"^ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:\w+\]$")
INTERNAL_KEY = re.compile(r"^_[A-Za-z0-9_]+$")


def check_structure(path: Path, shown: str, root: Path | None = None) -> list[str]:
    """The file's key names (plaintext in a sops file), once its shape is checked."""
    tree = read_mapping(path, shown, empty="file is empty; run 'generator secrets init'", what="KEY: encrypted value",
                        root=root)
    meta = tree.get("sops")
    if not isinstance(meta, dict):
        raise SiteError(shown, "not encrypted by sops (no sops metadata); never commit plaintext secrets",
                        field="sops", line=line_of(tree, ("sops",)))
    for field in ("mac", "lastmodified"):
        if not meta.get(field):
            raise SiteError(shown, "missing from the sops metadata: the file is truncated or not written by sops",
                            field=f"sops.{field}", line=line_of(tree, ("sops",)))
    if not meta.get("age"):
        raise SiteError(shown, "no age recipients in the sops metadata", field="sops.age", line=line_of(tree, ("sops",)))
    for key, value in tree.items():
        if key == "sops":
            continue
        line = line_of(tree, (key,))
        if not isinstance(key, str) or not (SECRET_KEY_RE.match(key) or INTERNAL_KEY.match(key)):
            raise SiteError(shown, "not a valid secret key name (UPPER_SNAKE_CASE)", field=str(key), line=line)
        if not isinstance(value, str):
            raise SiteError(shown, "must be one encrypted string (nested values are not supported)", field=key, line=line)
        if not ENCRYPTED.match(value):
            raise SiteError(shown, "is not encrypted (expected ENC[AES256_GCM,...]); this plaintext must not be committed",
                            field=key, line=line)
    return [key for key in tree if key != "sops"]


def check_sops_config(root: Path) -> None:
    """.sops.yaml, which sops reads to choose recipients: within the input limits, and the shape sops expects."""
    path = root / ".sops.yaml"
    if not path.exists() and not path.is_symlink():
        return  # sops says itself that no creation rule matches
    config = safe_load_limited(read_input(path, ".sops.yaml", root=root), ".sops.yaml")
    rules = config.get("creation_rules") if isinstance(config, dict) else None
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise SiteError(".sops.yaml", "expected a mapping with a creation_rules list of mappings", field="creation_rules")
