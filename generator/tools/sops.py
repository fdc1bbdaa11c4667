"""sops, through its real binary. Plaintext travels only on stdin and stdout, never in argv or a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from generator import proc
from generator.errors import GeneratorError, UsageError
from generator.tools import require

NO_KEY = 128
MAC_MISMATCH = 51


def key_hint() -> str:
    """What sops looked in for an age identity, and what it found there, so that the fix named is the one needed."""
    inline, path = os.environ.get("SOPS_AGE_KEY"), os.environ.get("SOPS_AGE_KEY_FILE")
    found = []
    if inline:
        found.append("SOPS_AGE_KEY holds no identity of these recipients")
    if path:
        where = Path(path)
        found.append(f"SOPS_AGE_KEY_FILE names {path}, which does not exist"
                     if not where.exists() else f"SOPS_AGE_KEY_FILE names {path}, which is not a file"
                     if not where.is_file() else f"SOPS_AGE_KEY_FILE ({path}) holds no identity of these recipients")
    if found:
        return "; ".join(found)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sops/age/keys.txt"
    if config.is_file():
        return f"{config} holds no identity of these recipients; set SOPS_AGE_KEY_FILE to one that does"
    return (f"no age identity: the key file {config} (sops's default) is missing, and neither SOPS_AGE_KEY_FILE "
            "nor SOPS_AGE_KEY is set; make one with 'generator secrets keygen' (or age-keygen -o FILE), or set "
            "SOPS_AGE_KEY_FILE to the identity file you have")


class SopsError(GeneratorError):
    """sops could not decrypt or encrypt a file."""


class CorruptFile(UsageError):
    """The sops file itself is damaged: bad input, exit status 2."""


def _env() -> dict[str, str]:
    return proc.child_env({"SOPS_DISABLE_VERSION_CHECK": "1"})


def recipients(source: Path | bytes) -> list[str]:
    """The age recipients a sops file (its path, or the bytes already read) is encrypted for, read from its
    (public) metadata."""
    try:
        text = source if isinstance(source, bytes) else source.read_bytes()
        meta = (yaml.safe_load(text) or {}).get("sops", {})
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    return sorted(entry.get("recipient", "?") for entry in meta.get("age") or [] if isinstance(entry, dict))


def decrypt(data: bytes, shown: str, cwd: Path) -> dict[str, str]:
    """Every key and value of a flat sops YAML file, from its bytes as the input gate read them (sops reads them
    on stdin: the file is not read a second time)."""
    # No .sops.yaml: sops reads it on decrypt only for its stores' indentation (cmd/sops/main.go, loadStoresConfig),
    # which JSON parsed here does not care about, and parsing a fleet's (a creation rule a site) on every decrypt
    # made a render quadratic in the sites: 25 ms a call at 1000 rules.
    result = proc.run([require("sops"), "--config", os.devnull, "decrypt", "--input-type", "yaml", "--output-type",
                       "json", "/dev/stdin"], stdin=data, env=_env(), cwd=cwd, check=False)
    if result.returncode != 0:
        raise _failure(result, shown, data, "decrypt")
    data = json.loads(result.stdout)
    if not isinstance(data, dict):
        raise SopsError(f"{shown}: expected a mapping of KEY: value")
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


def encrypt_new(values: dict[str, str], rel_path: str, cwd: Path) -> bytes:
    """Encrypt a new file's content for the recipients of the matching rule in .sops.yaml."""
    plain = json.dumps(values, sort_keys=True).encode()
    result = proc.run(
        [require("sops"), "encrypt", "--filename-override", rel_path, "--input-type", "json", "--output-type", "yaml",
         "/dev/stdin"],
        stdin=plain, env=_env(), cwd=cwd, check=False,
    )
    if result.returncode != 0:
        raise _failure(result, rel_path, cwd / rel_path, "encrypt")
    return result.stdout


def encrypt_document(plain_yaml: bytes, recipients_: list[str], encrypted_regex: str, shown: str, cwd: Path) -> bytes:
    """Encrypt a Kubernetes manifest for explicit recipients (Flux decrypts it in the cluster)."""
    result = proc.run(
        # --config /dev/null: the recipients are explicit; the repo's creation rules are for site files.
        [require("sops"), "--config", "/dev/null", "encrypt", "--age", ",".join(recipients_), "--encrypted-regex", encrypted_regex,
         "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
        stdin=plain_yaml, env=_env(), cwd=cwd, check=False,
    )
    if result.returncode != 0:
        raise _failure(result, shown, None, "encrypt")
    return result.stdout


def set_value(path: Path, key: str, value: str, shown: str, cwd: Path) -> None:
    """Set one key in place; sops re-encrypts the file. The value goes on stdin."""
    result = proc.run(
        [require("sops"), "set", "--value-stdin", path, json.dumps([key])],
        stdin=json.dumps(value).encode(), env=_env(), cwd=cwd, check=False,
    )
    if result.returncode != 0:
        raise _failure(result, shown, path, "update")


def _failure(result: proc.Result, shown: str, source: Path | bytes | None, action: str) -> SopsError:
    who = ", ".join(recipients(source)) if source is not None else ""
    if result.returncode == NO_KEY:
        return SopsError(f"{shown}: cannot {action}: no age key available decrypts it (recipients: {who or 'unknown'}); {key_hint()}")
    if result.returncode == MAC_MISMATCH:
        return CorruptFile(f"{shown}: cannot {action}: MAC mismatch, the file was changed outside sops or is corrupted")
    text = result.err_text
    if any(sign in text for sign in ("Error unmarshalling", "Error decrypting key", "Error base64-decoding data",
                                      "cipher: message authentication failed")):
        return CorruptFile(f"{shown}: cannot {action}: the file is corrupted ({proc.tail(text, 1)})")
    if "no matching creation rules" in text or "config file not found" in text.lower():
        return SopsError(f"{shown}: no creation rule in .sops.yaml matches this file; add one with the site's age recipients")
    return SopsError(f"{shown}: sops could not {action} it: {proc.tail(text, 3)}")
