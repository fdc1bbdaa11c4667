"""The keyless audit: secret shapes planted in the tree, its history and the rendered output are found,
with file and line, and without any age key. Every planted value is made at run time."""

from __future__ import annotations

import base64
import random
import secrets
import string
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import copy_repo, generator
from tests.keys import age_key

NO_KEY = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent/keys.txt"}


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _access_key_id() -> str:
    return "AKIA" + "".join(random.choices(string.ascii_uppercase + string.digits, k=16))


def _random_text(length: int = 40) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=length))


SHAPES = {
    "private key block": lambda: f"tls:\n  key: |\n{_indent(_pem())}",
    "age secret key": lambda: f"# operator key, do not share\n{age_key().identity}\n",
    "sk- API key": lambda: f"OPENAI_API_KEY=sk-proj-{secrets.token_urlsafe(36)}\n",
    "cloud access key id": lambda: f"aws_access_key_id = {_access_key_id()}\n",
    "bearer token": lambda: f"curl -H 'Authorization: Bearer {secrets.token_urlsafe(40)}' https://x\n",
    "high-entropy value in Secret stringData.TOKEN": lambda: (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\nstringData:\n  TOKEN: " + _random_text() + "\n"),
    "high-entropy value in Secret data.TOKEN": lambda: (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\ndata:\n  TOKEN: "
        + base64.b64encode(_random_text().encode()).decode() + "\n"),
}


# The line each shape's secret starts on, counted within the text SHAPES makes (the PEM's BEGIN line, the
# age key under its comment, a Secret's TOKEN value): the audit must name that line, not any line of the file.
SHAPE_LINE = {
    "private key block": 3,
    "age secret key": 2,
    "sk- API key": 1,
    "cloud access key id": 1,
    "bearer token": 1,
    "high-entropy value in Secret stringData.TOKEN": 6,
    "high-entropy value in Secret data.TOKEN": 6,
}
assert set(SHAPE_LINE) == set(SHAPES)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_repo(tmp_path / "repo")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "clean")
    return root


def test_a_clean_tree_passes_without_keys_and_says_what_it_searched(repo: Path) -> None:
    result = generator(repo, "audit", env=NO_KEY)
    assert result.code == 0, result.text
    assert "secret shapes" in result.out and "1 commit(s) of history" in result.out


@pytest.mark.parametrize("kind", list(SHAPES))
def test_each_planted_shape_fails_the_audit_with_file_and_line(repo: Path, kind: str) -> None:
    planted = repo / "docs" / "notes.yaml"
    planted.parent.mkdir()
    header = "# deployment notes\nowner: platform\n"
    planted.write_text(header + SHAPES[kind]())
    result = generator(repo, "audit", env=NO_KEY)
    assert result.code == 1, result.text
    line = header.count("\n") + SHAPE_LINE[kind]
    findings = [text for text in result.out.splitlines() if text.startswith("SECRET SHAPE ")]
    assert findings == [f"SECRET SHAPE {kind}: working tree: docs/notes.yaml:{line}"], result.out


def test_a_shape_removed_from_the_tree_is_still_found_in_history(repo: Path) -> None:
    leak = repo / "leak.env"
    leak.write_text("# first line\n" + SHAPES["cloud access key id"]())
    _git(repo, "add", "leak.env")
    _git(repo, "commit", "-qm", "oops")
    leak.unlink()
    _git(repo, "commit", "-qam", "remove it")
    result = generator(repo, "audit", env=NO_KEY)
    assert result.code == 1
    assert "SECRET SHAPE cloud access key id: git history: commit " in result.out and "leak.env:2" in result.out, result.out


def test_a_plain_secret_in_the_rendered_output_is_found(repo: Path) -> None:
    (repo / "overlays/prod/app/leak.yaml").write_text(SHAPES["high-entropy value in Secret stringData.TOKEN"]())
    kustomization = repo / "overlays/prod/app/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("  - httproute.yaml\n", "  - httproute.yaml\n  - leak.yaml\n"))
    result = generator(repo, "audit", env=NO_KEY)
    assert result.code == 1
    assert "SECRET SHAPE high-entropy value in Secret stringData.TOKEN: rendered output: overlays/prod" in result.out, \
        result.out


def test_what_is_not_a_secret_passes(repo: Path) -> None:
    """Sealed ciphertext, sops values, public certificates, low-entropy settings and placeholders are not findings."""
    (repo / "docs").mkdir()
    (repo / "docs" / "examples.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: settings\nstringData:\n  MODE: production-mode-on\n"
        "  URL: https://litellm.example.com/v1\n---\n# keys look like sk-… and AKIA…; never commit one\n"
        "# -----BEGIN " "PRIVATE KEY-----\\nMIIB\\n-----END " "PRIVATE KEY-----\n")
    result = generator(repo, "audit", env=NO_KEY)
    assert result.code == 0, result.out
