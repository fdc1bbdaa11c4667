"""Issue 28, day one: `generator init` makes a GitOps repository ready for its first site (sites/, .sops.yaml with
the operator's recipient, platform.yaml's repository record, .gitignore, README, optionally the CI), refuses to
clobber one, rolls back what it made; `site new` takes the recorded git URL and rolls back every file it made;
`secrets keygen` makes an identity the real age and sops accept."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pyrage
import pytest
import yaml

from tests.helpers import generator
from tests.keys import age_key, sealing_pair

pytestmark = pytest.mark.tools

GIT_URL = "https://git.example.org/platform/litellm-gitops.git"


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tmp_path: Path):
    key = age_key()
    cert, _ = sealing_pair(tmp_path / "keys")
    home = tmp_path / "home"
    home.mkdir()
    return tmp_path / "gitops", key, cert, {"SOPS_AGE_KEY": key.identity, "HOME": str(home)}


def test_init_then_site_new_renders_validates_and_commits_without_the_scratch_space(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    made = generator(root.parent, "init", str(root), "--git-url", GIT_URL, "--branch", "live",
                     "--age-recipient", key.recipient, env=env)
    assert made.code == 0, made.text
    for rel in ("sites/.gitkeep", ".sops.yaml", "platform.yaml", ".gitignore", "README.md"):
        assert f"created   {rel}" in made.out, made.out
    assert "/.generator/" in (root / ".gitignore").read_text().splitlines()
    settings = yaml.safe_load((root / "platform.yaml").read_text())
    assert settings["repository"] == {"url": GIT_URL, "branch": "live", "engines": "both"}
    rule = yaml.safe_load((root / ".sops.yaml").read_text())["creation_rules"][0]
    assert rule["age"] == key.recipient
    assert GIT_URL in (root / "README.md").read_text()
    before = _tree(root)
    again = generator(root, "init", "--git-url", GIT_URL, "--branch", "live", "--age-recipient", key.recipient, env=env)
    assert again.code == 0 and again.out.count("unchanged") == 5 and _tree(root) == before, again.text

    site = generator(root, "site", "new", "lab", "--domain", "lab.example.org", "--cert", str(cert), env=env)
    assert site.code == 0, site.text
    gitops = yaml.safe_load((root / "sites/lab/site.yaml").read_text())["gitops"]
    assert gitops["flux"]["url"] == gitops["argocd"]["repoUrl"] == GIT_URL
    assert gitops["flux"]["branch"] == gitops["argocd"]["targetRevision"] == "live"
    assert "placeholder" not in site.text
    validated = generator(root, "validate", "--all", env=env)
    assert validated.code == 0, validated.text

    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, timeout=30)
    staged = subprocess.run(["git", "-C", str(root), "diff", "--cached", "--name-only"], capture_output=True,
                            text=True, check=True, timeout=30).stdout.split()
    assert (root / ".generator").is_dir() and not [p for p in staged if p.startswith(".generator")]
    assert {"sites/lab/site.yaml", "sites/lab/secrets.sops.yaml", ".sops.yaml", "platform.yaml"} <= set(staged)


def test_init_reads_the_recipient_from_the_key_file_keygen_made(world) -> None:  # noqa: ANN001
    root, _, cert, env = world
    env = {"HOME": env["HOME"]}  # no SOPS_AGE_KEY: sops and init find the key file where sops looks
    missing = generator(root.parent, "init", str(root), "--git-url", GIT_URL, env=env)
    assert missing.code == 2 and "keys.txt is missing" in missing.err and "secrets keygen" in missing.err, missing.text
    assert not root.exists()

    made = generator(root.parent, "secrets", "keygen", env=env)
    assert made.code == 0, made.text
    recipient = made.out.strip()
    key_file = Path(env["HOME"]) / ".config/sops/age/keys.txt"
    assert key_file.stat().st_mode & 0o777 == 0o600
    identity = next(line for line in key_file.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    assert str(pyrage.x25519.Identity.from_str(identity).to_public()) == recipient  # the real age agrees
    again = generator(root.parent, "secrets", "keygen", env=env)
    assert again.out.strip() == recipient and "unchanged" in again.err and identity in key_file.read_text()

    assert generator(root.parent, "init", str(root), "--git-url", GIT_URL, "--engine", "flux", env=env).code == 0
    assert yaml.safe_load((root / ".sops.yaml").read_text())["creation_rules"][0]["age"] == recipient
    site = generator(root, "site", "new", "lab", "--domain", "lab.example.org", "--cert", str(cert), env=env)
    assert site.code == 0, site.text  # sops encrypted for the keygen recipient, and decrypts with its identity
    gitops = yaml.safe_load((root / "sites/lab/site.yaml").read_text())["gitops"]
    assert gitops["argocd"]["enabled"] is False and gitops["flux"].get("enabled", True) is True
    listed = generator(root, "secrets", "list", "--site", "lab", env=env)
    assert listed.code == 0 and "LITELLM_MASTER_KEY" in listed.out, listed.text


def test_init_refuses_to_clobber_and_keeps_a_readme_of_the_operators(world) -> None:  # noqa: ANN001
    root, key, _, env = world
    root.mkdir()
    (root / "README.md").write_text("# ours\n")
    (root / ".gitignore").write_text("node_modules/\n")
    made = generator(root, "init", "--git-url", GIT_URL, "--age-recipient", key.recipient, env=env)
    assert made.code == 0, made.text
    assert (root / "README.md").read_text() == "# ours\n" and "kept      README.md" in made.out
    ignored = (root / ".gitignore").read_text().splitlines()
    assert ignored[0] == "node_modules/" and "/.generator/" in ignored and "updated   .gitignore" in made.out

    before = _tree(root)
    other = generator(root, "init", "--git-url", "https://git.example.org/other.git", "--age-recipient", key.recipient,
                      env=env)
    assert other.code == 2 and "init would replace platform.yaml" in other.err and "nothing was written" in other.err
    assert "Traceback" not in other.text and _tree(root) == before


@pytest.mark.parametrize("args, words", [
    (["--git-url", "not a url"], "--git-url: not a git URL"),
    (["--git-url", "https://me:hunter2@git.example.org/x.git"], "holds a password"),
    (["--git-url", GIT_URL, "--age-recipient", "AGE-SECRET-" + "KEY-1XYZ"], "never the identity"),
    (["--git-url", GIT_URL, "--ci", "github"], "--ci needs --generator-git"),
], ids=["url", "password", "identity", "ci-without-source"])
def test_bad_init_input_exits_2_and_writes_nothing(world, args: list[str], words: str) -> None:  # noqa: ANN001
    root, key, _, env = world
    result = generator(root.parent, "init", str(root), *args, env=env)
    assert result.code == 2 and words in result.err and "Traceback" not in result.text, result.text
    assert "hunter2" not in result.text and "XYZ" not in result.text
    assert not root.exists()


def test_init_with_ci_writes_the_workflow_and_a_failure_rolls_back_everything(world) -> None:  # noqa: ANN001
    root, key, _, env = world
    ci = ["--ci", "github", "--generator-git", "https://git.example.org/tools/litellm-gitops-generator.git"]
    made = generator(root.parent, "init", str(root), "--git-url", GIT_URL, "--age-recipient", key.recipient, *ci,
                     env=env)
    assert made.code == 0 and "created   .github/workflows/litellm-gitops.yaml" in made.out, made.text

    theirs = root.parent / "theirs"  # a workflow of the operator's own: refused before anything is written
    (theirs / ".github/workflows").mkdir(parents=True)
    (theirs / ".github/workflows/litellm-gitops.yaml").write_text("name: theirs\n")
    before = _tree(theirs)
    refused = generator(theirs, "init", "--git-url", GIT_URL, "--age-recipient", key.recipient, *ci, env=env)
    assert refused.code == 2 and "exists and differs" in refused.err and "rolled back" not in refused.err, refused.text
    assert _tree(theirs) == before and not (theirs / "sites").exists()

    second = root.parent / "second"  # .github is a file: the workflow cannot be written, after the rest was
    second.mkdir()
    (second / ".github").write_text("not a directory\n")
    (second / ".gitignore").write_text("dist/\n")
    before = _tree(second)
    failed = generator(second, "init", "--git-url", GIT_URL, "--age-recipient", key.recipient, *ci, env=env)
    assert failed.code == 1 and "cannot write" in failed.err and "Traceback" not in failed.text, failed.text
    assert "rolled back: removed .sops.yaml, README.md, platform.yaml, sites/; restored .gitignore" in failed.out
    assert _tree(second) == before and not (second / "sites").exists()


def test_site_new_rolls_back_every_file_it_made_and_says_so(world) -> None:  # noqa: ANN001
    root, key, cert, env = world
    (root / "sites").mkdir(parents=True)  # no platform.yaml: the placeholder ssh:// URL has no credential
    result = generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                       "--cert", str(cert), env=env)
    assert result.code == 2 and "needs a credential" in result.err, result.text
    assert "note: sites/alpha/site.yaml names the placeholder git URL" in result.out
    assert "rolled back: removed sites/alpha/; removed .sops.yaml" in result.out
    assert result.err.count("\n") == 1  # the error: one line
    assert sorted(p.name for p in root.iterdir() if p.name != ".generator") == ["sites"]
    assert list((root / "sites").iterdir()) == []

    (root / ".sops.yaml").write_text("creation_rules: []\n")  # one of the operator's: restored byte for byte
    again = generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                      "--cert", str(cert), env=env)
    assert again.code == 2 and "restored .sops.yaml" in again.out
    assert (root / ".sops.yaml").read_text() == "creation_rules: []\n"

    made = generator(root, "site", "new", "alpha", "--domain", "alpha.example.org", "--age-recipient", key.recipient,
                     "--cert", str(cert), "--git-url", GIT_URL, env=env)
    assert made.code == 0, made.text
    copied = generator(root, "site", "new", "beta", "--domain", "beta.example.org", "--from", "alpha", "--git-url",
                       "https://git.example.org/other.git", env=env)
    assert copied.code == 2 and "--from keeps the fleet's repository" in copied.err, copied.text
    assert yaml.safe_load((root / "sites/alpha/site.yaml").read_text())["gitops"]["flux"]["url"] == GIT_URL
