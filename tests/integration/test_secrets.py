"""Secrets with the real sops, kubeseal and age keys made at run time (issue 3)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from generator.tools import find
from tests.helpers import MINIMAL_SITE, PROJECT, Run, build_file_tree, fingerprint, generator, sops_decrypt
from tests.keys import AgeKey, age_key, sealing_pair, sops_rules

SITE = "demo"
SEALED = f"overlays/{SITE}/setup/sealed-secret.yaml"


@dataclass
class SecretSite:
    root: Path
    age: AgeKey
    cert: Path
    private_key: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, **env: str) -> Run:
        return generator(self.root, *args, stdin=stdin, env={**self.env, **env})

    def sops_values(self) -> dict[str, str]:
        values = sops_decrypt(self.root / f"sites/{SITE}/secrets.sops.yaml", self.age.identity)
        return {k: v for k, v in values.items() if not k.startswith("_")}

    def sealed(self) -> dict:
        return yaml.safe_load((self.root / SEALED).read_text())

    def unseal(self, doc: dict | None = None, key: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(find("kubeseal")), "--recovery-unseal", "--recovery-private-key",
                               str(key or self.private_key), "--format", "json"],
                              input=yaml.safe_dump(doc or self.sealed()).encode(), capture_output=True)


@pytest.fixture
def site(tmp_path: Path) -> SecretSite:
    root = tmp_path / "repo"
    key = age_key()
    cert, private = sealing_pair(tmp_path / "keys")
    build_file_tree(root, {f"sites/{SITE}/site.yaml": MINIMAL_SITE, ".sops.yaml": sops_rules([key.recipient])})
    shutil.copy(cert, root / f"sites/{SITE}/sealing-cert.pem")
    made = SecretSite(root, key, cert, private, {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent"})
    init = made.run("secrets", "init", "--site", SITE)
    assert init.code == 0, init.text
    return made


def _plain(unsealed: subprocess.CompletedProcess) -> dict[str, str]:
    assert unsealed.returncode == 0, unsealed.stderr
    secret = json.loads(unsealed.stdout)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_init_generates_strong_keys_and_lists_the_missing(site: SecretSite) -> None:
    values = site.sops_values()
    assert set(values) == {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "ADMIN_PASSWORD"}
    assert values["LITELLM_MASTER_KEY"].startswith("sk-") and len(values["LITELLM_MASTER_KEY"]) >= 35
    assert len(values["LITELLM_SALT_KEY"]) >= 32 and len(values["ADMIN_PASSWORD"]) >= 24
    again = site.run("secrets", "init", "--site", SITE)
    assert again.code == 0 and "created" not in again.out.split("sites/")[0]
    assert site.sops_values() == values  # never overwritten
    for key in ("DATABASE_URL", "CLIENT_SECRET", "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY"):
        assert f"missing   {key}" in again.out


def test_render_seals_what_sops_holds_and_unseals_with_the_real_kubeseal(site: SecretSite) -> None:
    result = site.run("render", "--site", SITE)
    assert result.code == 0, result.text
    sealed = site.sealed()
    assert sealed["metadata"]["name"] == "litellm-secrets" and sealed["metadata"]["namespace"] == "litellm"
    assert _plain(site.unseal()) == site.sops_values()
    assert site.run("validate", "--site", SITE).code == 0


def test_rerender_is_byte_identical_and_needs_no_key_or_kubeseal(site: SecretSite, tmp_path: Path) -> None:
    assert site.run("render", "--site", SITE).code == 0
    before = fingerprint(site.root)
    keyless = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent"}
    # Only kubectl and kubeconform are reachable: no kubeseal, no age key.
    tools = tmp_path / "only-kubectl"
    tools.mkdir()
    for tool in ("kubectl", "kubeconform", "sops"):
        (tools / tool).symlink_to(find(tool))
    result = site.run("render", "--site", SITE, GENERATOR_TOOLS_PATH=str(tools), **keyless)
    assert result.code == 0, result.text
    assert "nothing to do" in result.out
    assert fingerprint(site.root) == before
    check = site.run("render", "--site", SITE, "--check", GENERATOR_TOOLS_PATH=str(tools), **keyless)
    assert check.code == 0, check.text


def test_one_set_changes_exactly_one_ciphertext(site: SecretSite) -> None:
    assert site.run("render", "--site", SITE).code == 0
    before = site.sealed()["spec"]["encryptedData"]
    result = site.run("secrets", "set", "--site", SITE, "ADMIN_PASSWORD", stdin="a-new-password-value\n")
    assert result.code == 0 and "updated   ADMIN_PASSWORD" in result.out, result.text
    assert site.run("render", "--site", SITE).code == 0
    after = site.sealed()["spec"]["encryptedData"]
    assert {k for k in after if after[k] != before.get(k)} == {"ADMIN_PASSWORD"}
    assert _plain(site.unseal())["ADMIN_PASSWORD"] == "a-new-password-value"
    # Setting the same value again writes nothing at all.
    sops_before = (site.root / f"sites/{SITE}/secrets.sops.yaml").read_bytes()
    same = site.run("secrets", "set", "--site", SITE, "ADMIN_PASSWORD", stdin="a-new-password-value\n")
    assert same.code == 0 and "unchanged ADMIN_PASSWORD" in same.out
    assert (site.root / f"sites/{SITE}/secrets.sops.yaml").read_bytes() == sops_before
    # A new key adds one ciphertext and leaves the others alone.
    assert site.run("secrets", "set", "--site", SITE, "DATABASE_URL", stdin="postgresql://u:p@db:5432/litellm").code == 0
    assert site.run("render", "--site", SITE).code == 0
    final = site.sealed()["spec"]["encryptedData"]
    assert {k for k in final if final[k] != after.get(k)} == {"DATABASE_URL"}


def test_a_new_certificate_reseals_everything(site: SecretSite, tmp_path: Path) -> None:
    assert site.run("render", "--site", SITE).code == 0
    before = site.sealed()["spec"]["encryptedData"]
    cert, private = sealing_pair(tmp_path / "rotated")
    imported = site.run("cert", "import", "--site", SITE, str(cert))
    assert imported.code == 0 and "reseals every key" in imported.out, imported.text
    assert site.run("render", "--site", SITE).code == 0
    after = site.sealed()["spec"]["encryptedData"]
    assert set(after) == set(before) and all(after[k] != before[k] for k in after)
    assert _plain(site.unseal(key=private)) == site.sops_values()
    assert site.unseal(key=site.private_key).returncode != 0  # the old controller key no longer opens it


def test_ciphertext_moved_to_another_name_or_namespace_fails(site: SecretSite) -> None:
    assert site.run("render", "--site", SITE).code == 0
    for field, value in (("namespace", "elsewhere"), ("name", "other-secrets")):
        doc = site.sealed()
        doc["metadata"][field] = value
        doc["spec"]["template"]["metadata"][field] = value
        moved = site.unseal(doc)
        assert moved.returncode != 0, f"decrypted after moving to another {field}"


def test_keyless_render_after_a_secret_change_fails_cleanly(site: SecretSite) -> None:
    assert site.run("render", "--site", SITE).code == 0
    assert site.run("secrets", "set", "--site", SITE, "CLIENT_SECRET", stdin="keycloak-client-secret-1").code == 0
    before = fingerprint(site.root)
    check = site.run("render", "--site", SITE, "--check", SOPS_AGE_KEY="")
    assert check.code == 1 and "stale: overlays/demo/setup/sealed-secret.yaml is out of date" in check.out
    result = site.run("render", "--site", SITE, SOPS_AGE_KEY="")
    assert result.code == 1
    assert f"sites/{SITE}/secrets.sops.yaml: cannot decrypt: no age key available decrypts it (recipients: {site.age.recipient})" in result.err
    assert result.err.count("\n") == 1
    assert fingerprint(site.root) == before


def test_an_edited_template_is_not_trusted_keyless(site: SecretSite) -> None:
    """The committed SealedSecret is reused keyless only when everything it was sealed for still holds, its
    template included (shared with the engines' credential, whose template carries the repository url)."""
    assert site.run("render", "--site", SITE).code == 0
    good = (site.root / SEALED).read_bytes()
    doc = site.sealed()
    doc["spec"]["template"]["metadata"]["labels"] = {"app": "someone-else"}
    (site.root / SEALED).write_text(yaml.safe_dump(doc))
    check = site.run("render", "--site", SITE, "--check", SOPS_AGE_KEY="")
    assert check.code == 1 and "stale: overlays/demo/setup/sealed-secret.yaml is out of date" in check.out
    again = site.run("render", "--site", SITE)  # decrypted: every value's HMAC matches, nothing sealed anew
    assert again.code == 0 and "sealed" not in again.err, again.text
    assert (site.root / SEALED).read_bytes() == good


def test_wrong_age_key_writes_nothing(site: SecretSite) -> None:
    sops_file = site.root / f"sites/{SITE}/secrets.sops.yaml"
    before = sops_file.read_bytes()
    result = site.run("secrets", "set", "--site", SITE, "ADMIN_PASSWORD", stdin="whatever-value", SOPS_AGE_KEY=age_key().identity)
    assert result.code == 1
    assert result.err.endswith(f"no age key available decrypts it (recipients: {site.age.recipient}); SOPS_AGE_KEY holds "
                               "no identity of these recipients; SOPS_AGE_KEY_FILE names /nonexistent, which does not "
                               "exist\n"), result.err
    assert sops_file.read_bytes() == before
    assert sorted(p.name for p in sops_file.parent.iterdir()) == ["sealing-cert.pem", "secrets.sops.yaml", "site.yaml"]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file and directory under ``root`` (caches included) -> (content, inode, mtime_ns): a write, a
    replace, a touch, a new or a removed file all change it."""
    found: dict[str, tuple[bytes, int, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        found[path.relative_to(root).as_posix()] = (content, info.st_ino, info.st_mtime_ns)
    return found


@pytest.mark.parametrize("args", [("secrets", "list", "--site", SITE), ("secrets", "set", "--site", SITE, "ADMIN_PASSWORD"),
                                  ("render", "--site", SITE)], ids=["list", "set", "render"])
def test_corrupted_sops_file_is_reported(site: SecretSite, args: tuple[str, ...]) -> None:
    """A damaged ciphertext (a value that is no longer base64) is bad input: exit 2, one line naming the file,
    and nothing written, neither by the command that only reads nor by those that would write."""
    assert site.run("render", "--site", SITE).code == 0
    sops_file = site.root / f"sites/{SITE}/secrets.sops.yaml"
    text = sops_file.read_text()
    sops_file.write_text(text.replace("ENC[AES256_GCM,data:", "ENC[AES256_GCM,data:AA", 1))
    before = _snapshot(site.root)
    result = site.run(*args, stdin="a-new-admin-password")
    assert result.code == 2, result.text
    assert result.err.startswith(f"error: sites/{SITE}/secrets.sops.yaml: cannot decrypt: the file is corrupted ("), \
        result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    assert _snapshot(site.root) == before, "a command on a corrupted sops file wrote to the tree"


def test_rotation_rules(site: SecretSite) -> None:
    assert site.run("render", "--site", SITE).code == 0
    salt = site.run("secrets", "rotate", "--site", SITE, "LITELLM_SALT_KEY")
    assert salt.code == 2 and "makes every model credential LiteLLM stored in its database unreadable" in salt.err
    assert "--force" in salt.err
    assert site.run("secrets", "rotate", "--site", SITE, "DATABASE_URL").code == 2
    before_values = site.sops_values()
    before = site.sealed()["spec"]["encryptedData"]
    assert site.run("secrets", "rotate", "--site", SITE, "LITELLM_MASTER_KEY").code == 0
    after_values = site.sops_values()
    assert after_values["LITELLM_MASTER_KEY"] != before_values["LITELLM_MASTER_KEY"]
    assert after_values["LITELLM_MASTER_KEY"].startswith("sk-")
    assert site.run("render", "--site", SITE).code == 0
    after = site.sealed()["spec"]["encryptedData"]
    assert {k for k in after if after[k] != before[k]} == {"LITELLM_MASTER_KEY"}
    forced = site.run("secrets", "rotate", "--site", SITE, "LITELLM_SALT_KEY", "--force")
    assert forced.code == 0 and site.sops_values()["LITELLM_SALT_KEY"] != before_values["LITELLM_SALT_KEY"]


def test_expired_certificate_refused_and_expiring_one_warned(site: SecretSite, tmp_path: Path) -> None:
    expired, _ = sealing_pair(tmp_path / "old", days=-1)
    result = site.run("cert", "import", "--site", SITE, str(expired))
    assert result.code == 2 and "the sealing certificate expired on" in result.err
    soon, _ = sealing_pair(tmp_path / "soon", days=10)
    result = site.run("cert", "import", "--site", SITE, str(soon))
    assert result.code == 0 and "warning:" in result.err and "days left" in result.err
    render = site.run("render", "--site", SITE)
    assert render.code == 0 and "expires on" in render.err
    shutil.copy(expired, site.root / f"sites/{SITE}/sealing-cert.pem")
    before = fingerprint(site.root)
    render = site.run("render", "--site", SITE)
    assert render.code == 2 and "expired" in render.err
    assert fingerprint(site.root) == before


def test_private_key_is_refused_as_a_certificate(site: SecretSite) -> None:
    result = site.run("cert", "import", "--site", SITE, str(site.private_key))
    assert result.code == 2 and "holds a private key" in result.err


def test_no_secret_value_in_any_child_argv(site: SecretSite, tmp_path: Path) -> None:
    """Every child process runs through a wrapper that records its argv; no value may appear there."""
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    log = tmp_path / "argv.log"
    for tool in ("sops", "kubeseal", "kubectl", "kubeconform"):
        script = wrappers / tool
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0 $*" >> {log}\nexec {find(tool)} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {"GENERATOR_TOOLS_PATH": str(wrappers)}
    steps = [
        site.run("render", "--site", SITE, **env),
        site.run("secrets", "set", "--site", SITE, "CLIENT_SECRET", stdin="client-secret-from-keycloak", **env),
        site.run("secrets", "rotate", "--site", SITE, "ADMIN_PASSWORD", **env),
        site.run("render", "--site", SITE, **env),
        site.run("validate", "--site", SITE, **env),
        site.run("secrets", "list", "--site", SITE, **env),
    ]
    assert all(step.code == 0 for step in steps), [s.text for s in steps]
    recorded = log.read_text()
    assert "sops" in recorded and "kubeseal" in recorded
    values = site.sops_values()
    for key, value in values.items():
        assert value not in recorded, f"{key} appeared in a child's argv"
        for step in steps:
            assert value not in step.text, f"{key} appeared in the generator's output"


def test_audit_finds_plaintext_in_tree_and_history(site: SecretSite) -> None:
    assert site.run("render", "--site", SITE).code == 0
    git = lambda *a: subprocess.run(["git", "-C", str(site.root), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "clean")
    clean = site.run("audit")
    assert clean.code == 0 and "audit passed" in clean.out, clean.text
    password = site.sops_values()["ADMIN_PASSWORD"]
    leak = site.root / "notes.txt"
    leak.write_text(f"admin password is {password}\n")
    dirty = site.run("audit")
    assert dirty.code == 1 and "PLAINTEXT demo/ADMIN_PASSWORD: working tree: notes.txt" in dirty.out
    assert password not in dirty.text
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "oops")
    leak.unlink()
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "remove")
    history = site.run("audit")
    assert history.code == 1 and "PLAINTEXT demo/ADMIN_PASSWORD: git history: commit" in history.out
    encoded = base64.b64encode(site.sops_values()["LITELLM_MASTER_KEY"].encode()).decode()
    (site.root / "overlays/demo/leaked-secret.yaml").write_text(f"data:\n  K: {encoded}\n")
    assert "PLAINTEXT demo/LITELLM_MASTER_KEY: working tree: overlays/demo/leaked-secret.yaml" in site.run("audit").out


def test_flux_sops_mode(tmp_path: Path) -> None:
    operator, cluster = age_key(), age_key()
    root = tmp_path / "repo"
    flux_only = MINIMAL_SITE.replace('  argocd: {repoUrl: "ssh://git@git.example.com/platform/litellm-gitops.git"}', "  argocd: {enabled: false}")
    build_file_tree(root, {
        f"sites/{SITE}/site.yaml": flux_only + f"secrets:\n  mode: sops\n  fluxRecipients: [{cluster.recipient}]\n",
        ".sops.yaml": sops_rules([operator.recipient]),
    })
    env = {"SOPS_AGE_KEY": operator.identity}
    assert generator(root, "secrets", "init", "--site", SITE, env=env).code == 0
    result = generator(root, "render", "--site", SITE, env=env)
    assert result.code == 0, result.text
    secret_file = root / f"overlays/{SITE}/setup/secret.sops.yaml"
    doc = yaml.safe_load(secret_file.read_text())
    assert doc["kind"] == "Secret" and doc["sops"]["age"][0]["recipient"] == cluster.recipient
    assert all(str(v).startswith("ENC[") for v in doc["stringData"].values())
    setup, migrate, app = yaml.safe_load_all((root / f"deploy/flux/{SITE}/litellm.yaml").read_text())
    # The stage that applies the Secret decrypts it; the others hold no Secret.
    assert setup["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    assert "decryption" not in migrate["spec"] and "decryption" not in app["spec"]
    decrypted = subprocess.run([str(find("sops")), "decrypt", "--output-type", "json", str(secret_file)],
                               env={**os.environ, "SOPS_AGE_KEY": cluster.identity, "SOPS_DISABLE_VERSION_CHECK": "1"},
                               capture_output=True, check=True)
    values = json.loads(decrypted.stdout)["stringData"]
    assert set(values) == {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "ADMIN_PASSWORD"}
    before = fingerprint(root)
    assert "nothing to do" in generator(root, "render", "--site", SITE, env={"SOPS_AGE_KEY": ""}).out
    assert fingerprint(root) == before
    assert generator(root, "validate", "--site", SITE).code == 0
    assert not (root / "deploy/argocd").exists()


def test_committed_tree_holds_no_private_key() -> None:
    # The markers are assembled here so that this file does not itself look like key material.
    markers = [b"AGE-SECRET-" + b"KEY-1", b"BEGIN " + b"PRIVATE KEY", b"BEGIN RSA " + b"PRIVATE KEY"]
    tracked = subprocess.run(["git", "-C", str(PROJECT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        path = PROJECT / name
        if path.is_file():
            data = path.read_bytes()
            assert not any(marker in data for marker in markers), f"{name} holds private key material"
    sealed = yaml.safe_load((PROJECT / "overlays/prod/setup/sealed-secret.yaml").read_text())
    assert sealed["kind"] == "SealedSecret" and sealed["spec"]["encryptedData"]
