"""This repository's pre-commit hooks (.pre-commit-hooks.yaml), run by the real pre-commit from PyPI as a team
runs them: in a GitOps repository of its own, on what a commit stages (`pre-commit try-repo` without
--all-files stashes what is not staged, as `git commit` does). After each fix, the hook that blocked passes
on every file; the clean tree, and the tree with a repaired extension, pass every hook.

The hooks are `language: system`: pre-commit takes nothing from the hooks repository but its manifest and runs
the `generator` on PATH. So the repository pre-commit clones here holds only this working tree's manifest,
committed: the test sees the manifest being edited, committed or not, exactly as a clone of a tag would serve it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT, Run, copy_repo, generator

pytestmark = pytest.mark.tools

HOOK_IDS = ("litellm-render-check", "litellm-validate", "litellm-audit", "litellm-schema-check")
MANIFEST = PROJECT / ".pre-commit-hooks.yaml"
VENV_BIN = Path(sys.executable).parent  # the project's venv: its `generator`, as a team puts its checkout's on PATH
# No age key: the audit's shape search is what is checked, whatever keys this machine holds.
NO_KEY = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent/keys.txt"}
# try-repo clones into a throwaway store; pre-commit's own store (its db) goes here, not into ~/.cache/pre-commit.
PRE_COMMIT_HOME = Path(os.environ.get("GENERATOR_CACHE", Path.home() / ".cache" / "litellm-gitops")) / "pre-commit"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
                   cwd=root, check=True, capture_output=True, env=_env())


def _env(path: str | None = None) -> dict[str, str]:
    outer = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # as if run from a git hook: not ours
    return {**outer, **NO_KEY, "PRE_COMMIT_HOME": str(PRE_COMMIT_HOME),
            "PATH": path if path is not None else f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _hook_names() -> dict[str, str]:
    return {hook["id"]: hook["name"] for hook in yaml.safe_load(MANIFEST.read_text())}


def try_repo(user_repo: Path, hooks_repo: Path, *args: str, path: str | None = None) -> tuple[Run, dict[str, str]]:
    """`pre-commit try-repo REPO [HOOK] [--all-files]` in the user's repository: the run and each hook's status."""
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hooks_repo), *args, "--color", "never"],
                          cwd=user_repo, capture_output=True, text=True, env=_env(path), timeout=300)
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    statuses = {}
    for hook_id, name in _hook_names().items():
        found = re.search(rf"^{re.escape(name)}\.+(?:\(no files to check\))?(Passed|Failed|Skipped)$", run.out, re.M)
        if found:
            statuses[hook_id] = found.group(1)
    return run, statuses


ALL_PASSED = dict.fromkeys(HOOK_IDS, "Passed")


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hooks") / "litellm-gitops"
    root.mkdir()
    shutil.copy2(MANIFEST, root / ".pre-commit-hooks.yaml")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "hooks")
    return root


@pytest.fixture(scope="module")
def rendered_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A team's repository: this project's sites and rendered tree, the schema copy its editors read, committed.

    Rendered again first, so the clean state is what this generator renders (`make test` checks the committed
    tree itself with `render --all --check`)."""
    root = copy_repo(tmp_path_factory.mktemp("gitops") / "repo")
    shutil.copy2(PROJECT / ".sops.yaml", root / ".sops.yaml")
    (root / ".gitignore").write_text("/.generator/\n")  # the generator's scratch space and caches
    for args in (("schema",), ("render", "--all", "--no-validate")):
        result = generator(root, *args)
        assert result.code == 0, result.text
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "rendered tree")
    return root


@pytest.fixture
def repo(rendered_repo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rendered_repo, tmp_path / "repo", symlinks=True))


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: pick another edit"
    path.write_text(text.replace(old, new, 1))


def test_the_hooks_are_the_ones_the_readme_names_and_a_clean_tree_passes_them_all(hooks_repo: Path, repo: Path) -> None:
    assert tuple(_hook_names()) == HOOK_IDS
    run, statuses = try_repo(repo, hooks_repo, "--all-files")
    assert run.code == 0 and statuses == ALL_PASSED, run.text


def test_a_hand_edited_overlay_is_blocked_by_render_check_with_the_diff(hooks_repo: Path, repo: Path) -> None:
    _replace(repo / "overlays/prod/app/config.yaml", "    ttl: 3600\n", "    ttl: 60\n")
    _git(repo, "add", "-u")
    run, statuses = try_repo(repo, hooks_repo)
    assert run.code == 1, run.text
    assert statuses == {"litellm-render-check": "Failed", "litellm-validate": "Passed", "litellm-audit": "Passed",
                        "litellm-schema-check": "Skipped"}, run.text
    assert "--- a/overlays/prod/app/config.yaml\n" in run.out and "-    ttl: 60\n+    ttl: 3600\n" in run.out, run.out
    assert "stale: 1 file(s) differ from what the site files produce; run 'generator render' and commit" in run.out
    # what the message says fixes it
    assert generator(repo, "render", "--all").code == 0
    run, statuses = try_repo(repo, hooks_repo, "litellm-render-check", "--all-files")
    assert run.code == 0 and statuses == {"litellm-render-check": "Passed"}, run.text


def test_a_plaintext_secret_is_blocked_by_the_audit_and_only_the_audit_runs(hooks_repo: Path, repo: Path) -> None:
    key = f"sk-proj-{secrets.token_urlsafe(36)}"
    planted = repo / "docs" / "notes.md"
    planted.parent.mkdir()
    planted.write_text(f"# Deployment notes\nOwner: platform\nOPENAI_API_KEY={key}\n")
    _git(repo, "add", "docs/notes.md")
    run, statuses = try_repo(repo, hooks_repo)
    assert run.code == 1, run.text
    assert statuses == {"litellm-audit": "Failed", "litellm-render-check": "Skipped", "litellm-validate": "Skipped",
                        "litellm-schema-check": "Skipped"}, run.text  # their files did not change
    assert "SECRET SHAPE sk- API key: working tree: docs/notes.md:3\n" in run.out, run.out
    assert "audit failed: 1 place(s) hold a secret in plaintext" in run.out
    assert key not in run.text
    _git(repo, "rm", "-q", "--cached", "docs/notes.md")
    planted.unlink()
    run, statuses = try_repo(repo, hooks_repo, "litellm-audit", "--all-files")
    assert run.code == 0 and statuses == {"litellm-audit": "Passed"}, run.text


def test_an_invalid_site_file_is_blocked_with_the_file_line_and_field(hooks_repo: Path, repo: Path) -> None:
    site = repo / "sites/prod/site.yaml"
    original = site.read_text()
    found = re.search(r"^replicas: \d+$", original, re.M)
    assert found, "sites/prod/site.yaml no longer pins replicas: pick another field"
    line = original.count("\n", 0, found.start()) + 1
    site.write_text(original[:found.start()] + "replicas: two" + original[found.end():])
    _git(repo, "add", "-u")
    run, statuses = try_repo(repo, hooks_repo)
    assert run.code == 1, run.text
    assert statuses == {"litellm-render-check": "Failed", "litellm-validate": "Passed", "litellm-audit": "Passed",
                        "litellm-schema-check": "Skipped"}, run.text  # validate reads the rendered tree, unchanged
    assert f"error: sites/prod/site.yaml:{line}: replicas: Input should be a valid integer (found a string: 'two')\n" \
        in run.out, run.out
    site.write_text(original)
    _git(repo, "add", "-u")
    run, statuses = try_repo(repo, hooks_repo, "litellm-render-check", "--all-files")
    assert run.code == 0 and statuses == {"litellm-render-check": "Passed"}, run.text


def test_a_broken_extension_passes_render_check_and_is_blocked_by_validate(hooks_repo: Path, repo: Path) -> None:
    """The generator never writes sites/<site>/extensions/, so only validate sees a mistake there."""
    extension = repo / "sites/prod/extensions"
    extension.mkdir()
    (extension / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [notes.yaml]\n")
    notes = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-notes}\ndata: {owner: ai-platform}\n"
    (extension / "notes.yaml").write_text(notes)
    site = repo / "sites/prod/site.yaml"
    site.write_text(site.read_text() + "extensions: resources\n")
    assert generator(repo, "render", "--all", "--no-validate").code == 0  # the hooks validate it below
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "the team's notes")
    (extension / "notes.yaml").write_text(notes.replace("data: {owner", "dta: {owner"))
    _git(repo, "add", "-u")
    run, statuses = try_repo(repo, hooks_repo)
    assert run.code == 1, run.text
    assert statuses == {"litellm-render-check": "Passed", "litellm-validate": "Failed", "litellm-audit": "Passed",
                        "litellm-schema-check": "Skipped"}, run.text
    assert "error: 1 object(s) failed strict validation:\n  overlays/prod: ConfigMap/team-notes: " in run.out, run.out
    assert "additional properties 'dta' not allowed" in run.out
    (extension / "notes.yaml").write_text(notes)
    _git(repo, "add", "-u")
    run, statuses = try_repo(repo, hooks_repo, "--all-files")
    assert run.code == 0 and statuses == ALL_PASSED, run.text


def test_a_schema_copy_older_than_the_generator_is_blocked_by_schema_check(hooks_repo: Path, repo: Path) -> None:
    _replace(repo / "schema/site.schema.json", '"title": "LiteLLM GitOps site', '"title": "An older LiteLLM GitOps site')
    _git(repo, "add", "-u")
    run, statuses = try_repo(repo, hooks_repo)
    assert run.code == 1, run.text
    assert statuses == {"litellm-schema-check": "Failed", "litellm-render-check": "Skipped",
                        "litellm-validate": "Skipped", "litellm-audit": "Passed"}, run.text
    assert "schema/site.schema.json is stale; run 'generator schema'\n" in run.out, run.out
    assert generator(repo, "schema").code == 0
    run, statuses = try_repo(repo, hooks_repo, "litellm-schema-check", "--all-files")
    assert run.code == 0 and statuses == {"litellm-schema-check": "Passed"}, run.text


def test_without_generator_on_path_every_hook_fails_saying_so(hooks_repo: Path, repo: Path) -> None:
    git_only = str(Path(shutil.which("git") or "/usr/bin/git").parent)
    assert shutil.which("generator", path=git_only) is None
    run, statuses = try_repo(repo, hooks_repo, "--all-files", path=git_only)
    assert run.code == 1 and statuses == dict.fromkeys(HOOK_IDS, "Failed"), run.text
    assert run.out.count("Executable `generator` not found") == len(HOOK_IDS), run.out
