"""`generator ci init`: the CI workflow of a GitOps repository, linted by the real actionlint and proven by
running its steps with bash in fresh clones of a generated repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from generator import __version__
from generator.tools import find, pinned_versions
from tests.helpers import PROJECT, copy_repo, generator

GENERATOR_GIT = "https://git.example.com/thinkube/litellm-gitops-generator.git"
WORKFLOWS = {"gitea": ".gitea/workflows/litellm-gitops.yaml", "github": ".github/workflows/litellm-gitops.yaml",
             "gitlab": ".gitlab-ci.yml"}
SETUP_STEP = "Install the generator and its pinned tools"
CHECKS = ["generator render --all --check", "generator validate --all", "generator audit"]
# What a developer machine and CI have after scripts/setup.sh: the generator, kubectl and sops in the venv,
# kubeconform, kubeseal and actionlint in .tools/bin.
TOOLS_PATH = [str(Path(sys.executable).parent), str(PROJECT / ".tools" / "bin")]


@dataclass(frozen=True)
class Step:
    name: str
    script: str


@dataclass(frozen=True)
class StepRun:
    name: str
    code: int
    output: str


def ci_init(repo: Path, provider: str, *extra: str):  # noqa: ANN201 - tests.helpers.Run
    return generator(repo, "ci", "init", "--provider", provider, "--generator-git", GENERATOR_GIT, *extra)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=ci-test", "-c", "user.email=ci-test@example.com", "-c", "init.defaultBranch=main",
                    *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def workflow(path: Path, provider: str) -> tuple[list[Step], list[Step], dict[str, str]]:
    """(set-up steps, check steps, env): the steps in order, as the CI runs them."""
    doc = yaml.safe_load(path.read_text())
    if provider == "gitlab":
        job = doc["litellm-gitops"]
        assert "allow_failure" not in job and "when" not in job  # a failing line fails the job
        setup = [Step(f"before_script[{i}]", line) for i, line in enumerate(job["before_script"])]
        return setup, [Step(line, line) for line in job["script"]], {k: str(v) for k, v in doc["variables"].items()}
    steps = doc["jobs"]["check"]["steps"]
    names = [step["name"] for step in steps]
    cut = names.index(SETUP_STEP) + 1
    assert not any("if" in step or "continue-on-error" in step for step in steps)  # the first failure ends the job
    assert all("uses" in step for step in steps[:cut - 1]), names  # checkout, Python, Go, cache
    assert all("run" in step and "uses" not in step for step in steps[cut:]), names
    setup = [Step(step["name"], step.get("run", step.get("uses"))) for step in steps[:cut]]
    return setup, [Step(step["name"], step["run"]) for step in steps[cut:]], {k: str(v) for k, v in doc["env"].items()}


def run_steps(steps: list[Step], cwd: Path, env: dict[str, str]) -> list[StepRun]:
    """Each step's script with bash as GitHub runs `shell: bash` (-eo pipefail); the first failure ends the job."""
    ran: list[StepRun] = []
    for step in steps:
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.script], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)
        ran.append(StepRun(step.name, done.returncode, done.stdout + done.stderr))
        if done.returncode != 0:
            break
    return ran


def step_env(workflow_env: dict[str, str], path: list[str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GENERATOR_")}  # no --repo, tools path, ...
    if "GENERATOR_CACHE" in os.environ:
        base["GENERATOR_CACHE"] = os.environ["GENERATOR_CACHE"]  # the download cache scripts/setup.sh filled
    env = {**base, **{k: v for k, v in workflow_env.items() if "$" not in v}}
    env["PATH"] = os.pathsep.join([*path, base.get("PATH", "")])
    return env


def gitops_repo(tmp_path: Path, provider: str, *extra: str) -> Path:
    """A GitOps repository as a user has it: this project's sites and rendered tree, and the CI workflow."""
    origin = copy_repo(tmp_path / "origin")
    result = ci_init(origin, provider, *extra)
    assert result.code == 0, result.text
    git(origin, "init", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "GitOps tree and its CI")
    return origin


def generator_source(source: Path) -> Path:
    """A git repository of this generator: its working tree (tracked and new files) in one commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (PROJECT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / rel, source / rel)
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "generator")
    return source


def fresh_clone(origin: Path, dest: Path) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(dest))
    return dest


def test_actionlint_passes_on_the_github_and_gitea_workflows(repo: Path, tmp_path: Path) -> None:
    """The real actionlint (pinned in scripts/versions.env, installed by scripts/setup.sh) on both files. The
    actions are pinned by release tag, which actionlint's table of action inputs does not list; a copy with
    major tags (`@v6.1.0` -> `@v6`) has every `with:` input checked against the action's own inputs too."""
    actionlint = find("actionlint")
    assert actionlint is not None, "actionlint not found: run 'make setup' (scripts/setup.sh installs it)"
    files: list[Path] = []
    for provider in ("github", "gitea"):
        result = ci_init(repo, provider)
        assert result.code == 0, result.text
        path = repo / WORKFLOWS[provider]
        major = tmp_path / f"{provider}-major-tags.yaml"
        major.write_text(re.sub(r"(uses: [\w./-]+@v\d+)\.\d+\.\d+", r"\1", path.read_text()))
        files += [path, major]
    for path in files:
        lint = subprocess.run([str(actionlint), "-no-color", "-oneline", str(path)], cwd=repo, capture_output=True,
                              text=True, timeout=60)
        assert lint.returncode == 0, f"{path.name}:\n{lint.stdout}{lint.stderr}"
    assert "@v6\n" in files[1].read_text() and "@v4\n" in files[3].read_text()  # the copies did change


@pytest.mark.parametrize("provider", ["gitea", "github", "gitlab"])
def test_check_steps_pass_on_a_clean_clone_and_stop_at_the_render_check_on_a_stale_overlay(
        tmp_path: Path, provider: str) -> None:
    """Runs the workflow's check steps' scripts (GitHub/Gitea `run:`, GitLab `script:`), in order, with bash, in a
    fresh clone of a generated GitOps repository that commits the workflow.

    The set-up steps are NOT run here: checkout is the fresh clone itself, and the steps that install Python,
    Go, the generator and its pinned tools are skipped because this machine already has them on PATH
    (.venv/bin and .tools/bin, installed by scripts/setup.sh). test_install_step_installs_the_pinned_generator
    runs the install step."""
    origin = gitops_repo(tmp_path, provider)
    path = origin / WORKFLOWS[provider]
    _, checks, env = workflow(path, provider)
    assert [step.script.strip() for step in checks] == CHECKS
    env = step_env(env, TOOLS_PATH)

    clean = run_steps(checks, fresh_clone(origin, tmp_path / "clean"), env)
    assert [(run.name, run.code) for run in clean] == [(step.name, 0) for step in checks], clean
    assert "up to date" in clean[0].output and "audit passed" in clean[2].output

    pdb = origin / "overlays/prod/app/pdb.yaml"
    assert "maxUnavailable: 1\n" in pdb.read_text()
    pdb.write_text(pdb.read_text().replace("maxUnavailable: 1\n", "maxUnavailable: 2\n"))  # a hand edit
    git(origin, "commit", "-q", "-am", "hand-edited overlay")
    stale = run_steps(checks, fresh_clone(origin, tmp_path / "stale"), env)
    assert [(run.name, run.code) for run in stale] == [(checks[0].name, 1)], stale  # later steps never ran
    assert "-  maxUnavailable: 2\n+  maxUnavailable: 1" in stale[0].output
    assert "stale: 1 file(s) differ" in stale[0].output


def test_install_step_installs_the_pinned_generator(tmp_path: Path) -> None:
    """The GitHub workflow's install step for real, against a git copy of this generator (its working tree
    committed in a temporary repository, fetched over file://): it fetches GENERATOR_REF, checks the pins, runs
    the generator's scripts/setup.sh (pip, Go and built tools from the download cache `make setup` filled) and
    puts the new venv on GITHUB_PATH. The check steps then pass with only that venv on PATH. A workflow whose
    pins differ from the generator's stops before anything is installed."""
    source = generator_source(tmp_path / "generator-src")
    origin = gitops_repo(tmp_path, "github")
    setup, checks, workflow_env = workflow(origin / WORKFLOWS["github"], "github")
    install = next(step for step in setup if step.name == SETUP_STEP)
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    github_path = runner_temp / "path"
    github_path.write_text("")
    env = step_env({**workflow_env, "GENERATOR_GIT": f"file://{source}", "GENERATOR_REF": "main"}, [])
    env.update(RUNNER_TEMP=str(runner_temp), GITHUB_PATH=str(github_path))
    clone = fresh_clone(origin, tmp_path / "clone")

    mismatch = run_steps([install], clone, {**env, "KUBECONFORM_VERSION": "v0.6.0"})
    assert mismatch[0].code == 1
    assert (f"the generator at main pins KUBECONFORM_VERSION={pinned_versions()['KUBECONFORM_VERSION']}, "
            "this file KUBECONFORM_VERSION=v0.6.0") in mismatch[0].output
    assert not (runner_temp / "litellm-gitops-generator/.venv").exists()

    installed = run_steps([install], clone, env)
    assert installed[0].code == 0, installed[0].output[-3000:]
    venv_bin = runner_temp / "litellm-gitops-generator/.venv/bin"
    assert github_path.read_text() == f"{venv_bin}\n"
    path = [line for line in github_path.read_text().splitlines() if line]
    checked = run_steps(checks, clone, step_env(workflow_env, path))
    assert [(run.name, run.code) for run in checked] == [(step.name, 0) for step in checks], checked
    which = subprocess.run(["bash", "-c", "command -v generator"], env=step_env(workflow_env, path),
                           capture_output=True, text=True)
    assert which.stdout.strip() == str(venv_bin / "generator")


def test_writes_once_then_reports_unchanged_and_refuses_a_different_file_without_force(repo: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True, text=True,
                          check=True).stdout.strip()
    pinned = f"generator ref {head} (the commit this generator runs from; make release tags v{__version__})\n"
    first = ci_init(repo, "gitlab")
    assert (first.code, first.out) == (0, pinned + "created   .gitlab-ci.yml\n"), first.text
    written = (repo / ".gitlab-ci.yml").read_text()
    assert written.startswith("# Generated by `generator ci init --provider gitlab --generator-git "
                              f"{GENERATOR_GIT} --generator-ref {head}`")
    again = ci_init(repo, "gitlab")
    assert (again.code, again.out) == (0, pinned + "unchanged .gitlab-ci.yml\n")

    other = ci_init(repo, "gitlab", "--generator-ref", "main")
    assert other.code == 2
    assert other.err == ("error: .gitlab-ci.yml exists and differs from what ci init writes; "
                         "rerun with --force to replace it\n")
    assert (repo / ".gitlab-ci.yml").read_text() == written
    dry = ci_init(repo, "gitlab", "--generator-ref", "main", "--force", "--dry-run")
    assert (dry.code, dry.out) == (0, "would be updated   .gitlab-ci.yml\n")
    assert (repo / ".gitlab-ci.yml").read_text() == written
    forced = ci_init(repo, "gitlab", "--generator-ref", "main", "--force")
    assert (forced.code, forced.out) == (0, "updated   .gitlab-ci.yml\n")
    assert 'GENERATOR_REF: "main"' in (repo / ".gitlab-ci.yml").read_text()


def test_gitlab_job_structure(repo: Path) -> None:
    assert ci_init(repo, "gitlab").code == 0
    doc = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert doc["stages"] == ["check"]
    job = doc["litellm-gitops"]
    assert job["stage"] == "check" and re.fullmatch(r"golang:\d+\.\d+\.\d+-bookworm", job["image"])
    assert job["script"] == CHECKS
    assert "GENERATOR_EXTRAS=tools bash \"$src/scripts/setup.sh\"" in job["before_script"][-1]
    assert re.fullmatch(r"litellm-gitops-[0-9a-f]{16}", job["cache"]["key"])
    assert all(path.startswith(".tools/cache/") for path in job["cache"]["paths"])  # audit skips .tools/
    pins = {k: v for k, v in pinned_versions().items() if k in doc["variables"]}
    assert pins and pins["KUBECONFORM_VERSION"] == doc["variables"]["KUBECONFORM_VERSION"]
    assert "ACTIONLINT_VERSION" not in doc["variables"] and "KWOK_VERSION" not in doc["variables"]
    assert doc["variables"]["GIT_DEPTH"] == "0"


@pytest.mark.parametrize(("args", "message"), [
    (["--provider", "bitbucket", "--generator-git", GENERATOR_GIT],
     "Invalid value for '--provider': 'bitbucket' is not one of 'gitea', 'github', 'gitlab', 'argo'."),
    (["--provider", "github"], "Missing option '--generator-git'."),
    (["--provider", "github", "--generator-git", "https://ci:hunter2@git.example.com/g.git"],
     "error: --generator-git: the URL holds a password"),
    (["--provider", "github", "--generator-git", "https://git.example.com/${{ github.token }}"],
     "error: --generator-git 'https://git.example.com/${{ github.token }}': not a git URL"),
    (["--provider", "github", "--generator-git", GENERATOR_GIT, "--generator-ref", "v1; rm -rf /"],
     "error: --generator-ref 'v1; rm -rf /': not a tag, branch or commit"),
    (["--provider", "argo", "--generator-git", GENERATOR_GIT], "error: --provider argo: name the GitOps repository"),
    (["--provider", "github", "--generator-git", GENERATOR_GIT, "--repository", "platform/gitops"],
     "error: --repository, --argo-namespace and --argo-cache-claim go with --provider argo"),
    (["--provider", "github", "--generator-git", GENERATOR_GIT, "--generator-credential-secret", "my-token"],
     "error: --generator-credential-secret 'my-token': not a CI secret name"),
    (["--provider", "argo", "--generator-git", GENERATOR_GIT, "--repository", "platform/gitops",
      "--generator-credential-secret", "MY_TOKEN"], "error: --generator-credential-secret 'MY_TOKEN': not a Kubernetes"),
    (["--provider", "argo", "--generator-git", GENERATOR_GIT, "--repository", "platform/../x y"],
     "error: --repository 'platform/../x y': not a Gitea OWNER/NAME"),
])
def test_bad_input_exits_2_and_writes_nothing(repo: Path, args: list[str], message: str) -> None:
    result = generator(repo, "ci", "init", *args)
    assert result.code == 2
    assert message in result.err
    assert not any((repo / path).exists() for path in [*WORKFLOWS.values(), ".argo"])
