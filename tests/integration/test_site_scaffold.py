"""Issue 12: `generator site new` makes a site that renders and validates strictly with no further edits, is
idempotent, refuses bad input and an existing site, and leaves nothing behind when it fails; `site remove`
takes a site out of the tree and the fleet."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import build_file_tree, empty_repository, file_digests, generator

pytestmark = pytest.mark.tools


@pytest.fixture
def world(tmp_path: Path):
    return empty_repository(tmp_path)


def test_a_new_site_renders_and_validates_with_no_edit(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    made = generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                     "--cert", str(cert), "--wave", "1", env=env)
    assert made.code == 0, made.text
    for line in ("created   sites/alpha/site.yaml", "updated   .sops.yaml (rule for sites/alpha/secrets.sops.yaml)"):
        assert line in made.out, made.out
    text = (root / "sites/alpha/site.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=") and "domain: alpha.example.org" in text
    assert "registry.alpha.example.org/library/litellm-non_root" in text and "rollout: {wave: 1}" in text
    assert (root / "sites/alpha/secrets.sops.yaml").is_file() and (root / "overlays/alpha/setup/sealed-secret.yaml").is_file()
    rules = yaml.safe_load((root / ".sops.yaml").read_text())["creation_rules"]
    assert rules == [{"path_regex": r"^sites/alpha/secrets\.sops\.yaml$", "age": key.recipient}]
    validated = generator(root, "validate", "--all", env=env)
    assert validated.code == 0, validated.text

    before = file_digests(root)
    again = generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                      "--cert", str(cert), "--wave", "1", env=env)
    assert again.code == 0, again.text
    assert "unchanged sites/alpha/site.yaml" in again.out and "nothing to do" in again.out, again.out
    assert file_digests(root) == before


def test_a_copy_keeps_the_fleet_repository_and_takes_the_new_domain(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    assert generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                     "--cert", str(cert), env=env).code == 0
    before = file_digests(root)
    # alpha's rule names alpha's file only: without a recipient, beta's secrets have no rule
    refused = generator(root, "site", "new", "beta", "--domain", "beta.example.net", "--from", "alpha", env=env)
    assert refused.code == 2 and "no creation rule matches sites/beta/secrets.sops.yaml" in refused.err, refused.text
    assert file_digests(root) == before and not (root / "sites/beta").exists()

    made = generator(root, "site", "new", "beta", "--domain", "beta.example.net", "--from", "alpha",
                     "--age-recipient", key.recipient, env=env)
    assert made.code == 0, made.text
    alpha, beta = (yaml.safe_load((root / f"sites/{n}/site.yaml").read_text()) for n in ("alpha", "beta"))
    assert beta["domain"] == "beta.example.net" and beta["keycloak"]["url"] == "https://auth.beta.example.net"
    assert beta["gitops"] == alpha["gitops"]  # one repository for the fleet
    assert "# Models are added in the UI" in (root / "sites/beta/site.yaml").read_text()  # comments kept
    assert (root / "sites/beta/sealing-cert.pem").read_bytes() == cert.read_bytes()
    fleet = yaml.safe_load((root / "deploy/fleet/argocd/kustomization.yaml").read_text())
    assert "../../argocd/beta" in fleet["resources"]

    removed = generator(root, "site", "remove", "beta", "--yes", env=env)
    assert removed.code == 0, removed.text
    for rel in ("sites/beta", "overlays/beta", "deploy/flux/beta", "deploy/argocd/beta"):
        assert not (root / rel).exists(), rel
    assert "../../argocd/beta" not in yaml.safe_load((root / "deploy/fleet/argocd/kustomization.yaml").read_text())["resources"]
    assert [r["path_regex"] for r in yaml.safe_load((root / ".sops.yaml").read_text())["creation_rules"]] == [
        r"^sites/alpha/secrets\.sops\.yaml$"]


@pytest.mark.parametrize(("args", "words"), [
    (["site", "new", "Bad_Name", "--domain", "x.example.org"], "site name 'Bad_Name' is invalid"),
    (["site", "new", "ok", "--domain", "not a domain"], "is not a DNS name"),
    (["site", "new", "ok", "--domain", "x.example.org", "--age-recipient", "age2nope"], "is not an age recipient"),
    (["site", "new", "ok", "--domain", "x.example.org", "--from", "missing"], "unknown site 'missing'"),
    (["site", "new", "ok", "--domain", "x.example.org"], "no sealing certificate"),
    (["site", "remove", "missing", "--yes"], "unknown site 'missing'"),
])
def test_bad_input_exits_2_and_writes_nothing(world, args: list[str], words: str) -> None:  # noqa: ANN001
    root, _, _, env = world
    before = file_digests(root)
    result = generator(root, *args, env=env)
    assert result.code == 2 and words in result.err, result.text
    assert result.err.strip().count("\n") == 0 and file_digests(root) == before


def test_an_existing_site_is_never_overwritten(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    build_file_tree(root, {"sites/alpha/site.yaml": "domain: alpha.example.org\n"})
    before = file_digests(root)
    result = generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                       "--cert", str(cert), env=env)
    assert result.code == 2 and "sites/alpha/site.yaml exists" in result.err, result.text
    assert file_digests(root) == before


def test_a_failure_halfway_leaves_nothing_behind(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    build_file_tree(root, {".sops.yaml": "# the team's rules\ncreation_rules:\n  - path_regex: other/.*\n    age: " +
                           key.recipient + "\n"})
    before = file_digests(root)
    # no age key in the environment: the sops file is made (public keys suffice), then sealing cannot decrypt it
    result = generator(root, "site", "new", "gamma", "--domain", "gamma.example.org", "--age-recipient", key.recipient,
                       "--cert", str(cert), env={"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": str(root / "none")})
    # the clean error of an undecryptable sops file (exit 1, one line), never a traceback
    assert "Traceback" not in result.text, result.text
    assert result.code == 1, result.text
    assert result.err == (f"error: sites/gamma/secrets.sops.yaml: cannot decrypt: no age key available decrypts it "
                          f"(recipients: {key.recipient}); SOPS_AGE_KEY_FILE names {root / 'none'}, which does not "
                          f"exist\n"), result.err
    assert file_digests(root) == before, "a failed site new left files behind"
    assert (root / ".sops.yaml").read_text().startswith("# the team's rules")


def test_remove_asks_first(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    assert generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                     "--cert", str(cert), env=env).code == 0
    before = file_digests(root)
    # at a terminal it asks, and "n" keeps everything
    declined = _at_a_terminal(root, ["site", "remove", "alpha"], "n\n", env)
    assert "remove site alpha, its secrets file and its rendered outputs? [y/N]" in declined and "aborted" in declined
    assert file_digests(root) == before
    # without one (a script, CI) there is nobody to ask: it says what to do, and keeps everything
    piped = generator(root, "site", "remove", "alpha", stdin="y\n", env=env)
    assert (piped.code, piped.err) == (2, "error: site remove alpha: no terminal to confirm on; rerun with --yes\n")
    assert file_digests(root) == before


def _at_a_terminal(root: Path, args: list[str], typed: str, env: dict[str, str]) -> str:
    """The generator run on a pseudo-terminal, ``typed`` answered at its prompt; what the terminal showed."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "generator", *args], cwd=root, env={**os.environ, **env},
                            stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    shown = b""
    os.write(primary, typed.encode())
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    proc.wait(timeout=60)
    os.close(primary)
    return shown.decode(errors="replace")
