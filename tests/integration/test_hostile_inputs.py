"""Every CLI command against a corpus of hostile inputs: no traceback, exit 0, 1 or 2, the tree unchanged,
and each answer within seconds (an alias bomb or a deep nest must not hang a pre-commit hook)."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from generator.inputs import MAX_DEPTH, read_input
from generator.errors import SiteError
from tests.helpers import PROJECT, copy_repo, fingerprint, generator

SITE = "sites/prod/site.yaml"
SECRETS = "sites/prod/secrets.sops.yaml"
CERT = "sites/prod/sealing-cert.pem"
SOPS_CONFIG = ".sops.yaml"


def _laughs(prefix: str = "domain: example.com\n") -> str:
    text = prefix + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefghi", "bcdefghij"):
        text += f"{name}: &{name} [{','.join([f'*{previous}'] * 10)}]\n"
    return text


def _deep(prefix: str = "domain: example.com\n", depth: int = 10_000) -> str:
    return prefix + "k: " + "[" * depth + "]" * depth + "\n"


# (id, file replaced, content: str, bytes, or ("symlink", target) / ("dir",))
CORPUS = [
    ("site-alias-bomb", SITE, _laughs()),
    ("site-deep-flow", SITE, _deep()),
    ("site-deep-block", SITE, "domain: example.com\nk:\n" + "".join("  " * i + f"- k{i}:\n" for i in range(1, 400))),
    ("site-many-nodes", SITE, "domain: example.com\nextraEnv:\n" + "".join(f"  K{i}: v\n" for i in range(120_000))),
    ("site-huge", SITE, "domain: example.com\n#" + "x" * 2_000_000 + "\n"),
    ("site-binary", SITE, b"\x00\x01\x02\xff" * 100),
    ("site-python-tag", SITE, "domain: !!python/object/apply:os.system ['true']\n"),
    ("site-merge-bomb", SITE, "domain: example.com\nb: &b {x: 1}\nc: {<<: [*b, *b, *b, *b]}\n"),
    ("site-symlink-out", SITE, ("symlink", "/etc/passwd")),
    ("site-directory", SITE, ("dir",)),
    ("site-long-line", SITE, "domain: " + "a" * 900_000 + ".com\n"),
    ("site-many-docs", SITE, "domain: example.com\n---\ndomain: example.org\n"),
    ("secrets-alias-bomb", SECRETS, _laughs("sops: {}\n")),
    ("secrets-deep", SECRETS, _deep("sops: {}\n")),
    ("secrets-symlink-out", SECRETS, ("symlink", "/etc/hostname")),
    ("cert-garbage", CERT, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"),
    ("cert-huge", CERT, "x" * 5_000_000),
    ("cert-symlink-out", CERT, ("symlink", "/etc/ssl/certs/ca-certificates.crt")),
    ("sops-config-alias-bomb", SOPS_CONFIG, _laughs("creation_rules: []\n")),
    ("sops-config-deep", SOPS_CONFIG, _deep("creation_rules: []\n")),
    ("sops-config-not-a-mapping", SOPS_CONFIG, "- just\n- a list\n"),
    ("sealed-secret-alias-bomb", "overlays/prod/setup/sealed-secret.yaml", _laughs("kind: SealedSecret\n")),
    ("platform-alias-bomb", "platform.yaml", _laughs("gitCredential: external\n")),
    ("platform-symlink-out", "platform.yaml", ("symlink", "/etc/passwd")),
]
RENDER = [("render", "--site", "prod"), ("render", "--all", "--check"), ("render", "--site", "prod", "--dry-run")]
SECRETS_COMMANDS = [("secrets", "init", "--site", "prod"), ("secrets", "list", "--site", "prod"),
                    ("secrets", "set", "--site", "prod", "OPENAI_API_KEY"),
                    ("secrets", "rotate", "--site", "prod", "LITELLM_MASTER_KEY")]
# The commands that read each kind of input.
COMMANDS = {
    SITE: [*RENDER, ("validate", "--site", "prod"), *SECRETS_COMMANDS, ("audit",), ("bootstrap", "--site", "prod", "--dry-run"),
           ("cert", "import", "--site", "prod", PROJECT / CERT), ("restore", "--site", "prod", "--dry-run")],
    SECRETS: [*RENDER, *SECRETS_COMMANDS, ("audit",), ("bootstrap", "--site", "prod", "--dry-run"),
              ("restore", "--site", "prod", "--dry-run")],
    CERT: [*RENDER, ("secrets", "list", "--site", "prod"), ("cert", "import", "--site", "prod", CERT)],
    SOPS_CONFIG: [*RENDER, *SECRETS_COMMANDS],
    "platform.yaml": [*RENDER, ("doctor", "--cluster", "--kubeconfig", "/nonexistent")],
    "overlays/prod/setup/sealed-secret.yaml": [*RENDER, ("validate", "--site", "prod"), ("validate", "--all"), ("audit",),
                                               ("secrets", "list", "--site", "prod")],
}
NO_KEYS = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent/keys.txt", "KEYCLOAK_ADMIN_USERNAME": "",
           "KEYCLOAK_ADMIN_PASSWORD": "", "POSTGRES_ADMIN_USERNAME": "", "POSTGRES_ADMIN_PASSWORD": "",
           "S3_ADMIN_ACCESS_KEY_ID": "", "S3_ADMIN_SECRET_ACCESS_KEY": ""}


def _plant(root: Path, rel: str, content: object) -> None:
    path = root / rel
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if isinstance(content, tuple) and content[0] == "symlink":
        path.symlink_to(content[1])
    elif isinstance(content, tuple):
        path.mkdir()
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize(("rel", "content"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_hostile_input_never_tracebacks_hangs_or_writes(rel: str, content: object, tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    shutil.copy(PROJECT / SOPS_CONFIG, root / SOPS_CONFIG)
    _plant(root, rel, content)
    before = fingerprint(root)
    sites_before = {p: p.read_bytes() for p in (root / "sites").rglob("*") if p.is_file() and not p.is_symlink()}

    def run(args: tuple[str, ...]) -> tuple[tuple[str, ...], object, float]:
        started = time.monotonic()
        result = generator(root, *args, stdin="a-value-from-stdin\n", env=NO_KEYS)
        return args, result, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, [tuple(map(str, c)) for c in COMMANDS[rel]]))
    for args, result, seconds in outcomes:
        shown = " ".join(args)
        assert "Traceback" not in result.out + result.err, f"{shown}: {result.err[-2000:]}"
        assert result.code in (0, 1, 2), f"{shown}: exit {result.code}: {result.err[-500:]}"
        assert seconds < 30, f"{shown}: took {seconds:.1f} s"
    assert fingerprint(root) == before
    assert {p: p.read_bytes() for p in (root / "sites").rglob("*") if p.is_file() and not p.is_symlink()} == sites_before


def test_commands_that_read_no_site_input_still_answer(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    for args in (("doctor",), ("schema", "--check"), ("--help",)):
        result = generator(root, *args, env=NO_KEYS)
        assert result.code in (0, 1, 2) and "Traceback" not in result.text, result.text


@pytest.mark.parametrize(("rel", "content", "words"), [
    (SITE, _laughs(), "nodes once aliases are expanded"),
    (SITE, _deep(), f"nested deeper than the limit of {MAX_DEPTH} levels"),
    (SITE, "domain: example.com\n#" + "x" * 2_000_000 + "\n", "larger than the limit of 1000000 bytes"),
    (SITE, ("symlink", "/etc/passwd"), "leads out of the repository"),
])
def test_each_limit_is_one_line_naming_file_and_limit_within_a_second(rel: str, content: object, words: str,
                                                                     tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo", with_output=False)
    _plant(root, rel, content)
    started = time.monotonic()
    result = generator(root, "render", "--site", "prod", "--no-validate")
    elapsed = time.monotonic() - started
    assert result.code == 2 and result.err.count("\n") == 1, result.text
    assert result.err.startswith(f"error: {rel}") and words in result.err, result.err
    # The limit itself answers in milliseconds; the rest is the interpreter starting.
    assert elapsed < 10, elapsed


def test_read_errors_say_what_happened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SiteError, match="no such file"):
        read_input(tmp_path / "absent.pem", "absent.pem")
    with pytest.raises(SiteError, match="is a directory"):
        read_input(tmp_path, "dir")
    locked = tmp_path / "locked.pem"
    locked.write_text("x")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(SiteError, match="permission denied"):
        read_input(locked, "locked.pem")


def test_cert_import_names_the_reason(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    results = {
        "no such file": generator(root, "cert", "import", "--site", "prod", str(tmp_path / "absent.pem")),
        "not a PEM certificate": generator(root, "cert", "import", "--site", "prod", str(garbage)),
        "is a directory": generator(root, "cert", "import", "--site", "prod", str(tmp_path)),
    }
    for words, result in results.items():
        assert result.code == 2 and words in result.err and result.err.count("\n") == 1, result.text
    locked = tmp_path / "locked.pem"
    locked.write_text("x")
    locked.chmod(0)
    result = _without_file_override(generator_argv(root, "cert", "import", "--site", "prod", str(locked)))
    assert result.returncode == 2 and "permission denied" in result.stderr and result.stderr.count("\n") == 1, \
        result.stdout + result.stderr


def generator_argv(root: Path, *args: str) -> tuple[Path, list[str]]:
    import sys

    return root, [sys.executable, "-m", "generator", *args]


def _without_file_override(command: tuple[Path, list[str]]):
    """Run as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so a mode-000 file is refused to it too
    (CI runs as root, which otherwise reads anything)."""
    import subprocess

    root, argv = command
    drop = "-dac_override,-dac_read_search"
    return subprocess.run(["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *argv], cwd=root,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **NO_KEYS})
