"""Malformed secrets files and certificates: exit 2, one line naming file, field and problem, nothing written.
Together with tests/unit/test_bad_site_input.py this is the bad-input corpus of issue 5."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import MINIMAL_SITE, build_file_tree, fingerprint, generator
from tests.keys import age_key, sealing_pair, sops_rules

SITE = "demo"
SOPS = f"sites/{SITE}/secrets.sops.yaml"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("bad-secrets") / "repo"
    key = age_key()
    cert, _ = sealing_pair(root.parent / "keys")
    build_file_tree(root, {f"sites/{SITE}/site.yaml": MINIMAL_SITE, ".sops.yaml": sops_rules([key.recipient])})
    shutil.copy(cert, root / f"sites/{SITE}/sealing-cert.pem")
    env = {"SOPS_AGE_KEY": key.identity}
    assert generator(root, "secrets", "init", "--site", SITE, env=env).code == 0
    assert generator(root, "render", "--site", SITE, env=env).code == 0
    return root, env


def _first_value_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("LITELLM_MASTER_KEY:"))


def _mutations(valid: str) -> list[tuple[str, str | bytes, str | None, str]]:
    """(id, new content, expected field, expected words)"""
    master = _first_value_line(valid)
    no_meta = valid.split("\nsops:")[0] + "\n"
    return [
        ("empty", "", None, "file is empty"),
        ("yaml-syntax", valid.replace(master, master + '\n"unclosed: x', 1), None, "YAML syntax error"),
        ("top-level-list", "- a\n- b\n", None, "top level must be a mapping"),
        ("plaintext-file", "LITELLM_MASTER_KEY: sk-plain\n", "sops", "not encrypted by sops"),
        ("metadata-stripped", no_meta, "sops", "not encrypted by sops"),
        ("mac-missing", re.sub(r"\n    mac: .*", "", valid), "sops.mac", "truncated or not written by sops"),
        ("age-missing", re.sub(r"\n    age:\n(        .*\n)+", "\n", valid), "sops.age", "no age recipients"),
        ("plaintext-value-added", valid.replace(master, master + "\nOPENAI_API_KEY: sk-live-123", 1), "OPENAI_API_KEY",
         "is not encrypted"),
        ("bad-key-name", valid.replace("LITELLM_MASTER_KEY:", "litellm-master-key:", 1), "litellm-master-key",
         "not a valid secret key name"),
        ("nested-value", valid.replace(master, master + "\nNESTED:\n    a: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]", 1),
         "NESTED", "must be one encrypted string"),
        ("duplicate-key", valid.replace(master, master + "\n" + master, 1), None, "duplicate key 'LITELLM_MASTER_KEY'"),
        ("tampered-ciphertext", re.sub(r"(LITELLM_MASTER_KEY: ENC\[AES256_GCM,data:)(.)", lambda m: m.group(1) + ("B" if m.group(2) != "B" else "C"), valid, count=1),
         None, "corrupted"),
        ("tampered-mac", re.sub(r"(\n    mac: ENC\[AES256_GCM,data:)(.)", lambda m: m.group(1) + ("B" if m.group(2) != "B" else "C"), valid, count=1),
         None, "corrupted"),
        ("not-utf8", b"LITELLM_MASTER_KEY: \xff\xfe\n", None, "not UTF-8"),
        ("truncated", valid[: len(valid) // 3], None, ""),
    ]


def _cases() -> list[str]:
    return [m[0] for m in _mutations("LITELLM_MASTER_KEY: x\nsops:\n    mac: y\n")]


@pytest.mark.parametrize("case", _cases())
def test_malformed_secrets_file(template: tuple[Path, dict[str, str]], tmp_path: Path, case: str) -> None:
    source, env = template
    root = tmp_path / "repo"
    shutil.copytree(source, root)
    sops_file = root / SOPS
    valid = sops_file.read_text()
    _, content, field, words = next(m for m in _mutations(valid) if m[0] == case)
    sops_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = fingerprint(root)
    for args in (("render", "--site", SITE), ("secrets", "list", "--site", SITE)):
        result = generator(root, *args, env=env)
        assert result.code == 2, (args, result.text)
        message = result.err.strip()
        assert message.count("\n") == 0, message
        assert message.startswith(f"error: {SOPS}"), message
        if field:
            assert f" {field}: " in message, message
        assert words in message, message
    assert fingerprint(root) == before
    assert sops_file.read_bytes() == (content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize(("case", "content", "words"), [
    ("garbage", b"this is not a certificate\n", "not a PEM certificate"),
    ("empty", b"", "not a PEM certificate"),
    ("private-key", "generated", "holds a private key"),
    ("truncated", None, "not a PEM certificate"),
])
def test_malformed_sealing_certificate(template: tuple[Path, dict[str, str]], tmp_path: Path, case: str,
                                       content: bytes | str | None, words: str) -> None:
    source, env = template
    root = tmp_path / "repo"
    shutil.copytree(source, root)
    cert = root / f"sites/{SITE}/sealing-cert.pem"
    if content == "generated":  # a real private key, made now: never a key in the repository
        content = sealing_pair(tmp_path / "keys")[1].read_bytes()
    cert.write_bytes(content if content is not None else cert.read_bytes()[:200])
    assert generator(root, "secrets", "set", "--site", SITE, "CLIENT_SECRET", stdin="client-secret-value", env=env).code == 0
    before = fingerprint(root)
    result = generator(root, "render", "--site", SITE, env=env)
    assert result.code == 2, result.text
    assert result.err.startswith(f"error: sites/{SITE}/sealing-cert.pem: ") and words in result.err, result.err
    assert fingerprint(root) == before
