"""CI that starts: the ref `ci init` pins exists, `make release` makes the tag it then pins, a private generator
repository is read with the CI's secret, and Thinkube's own CI (Argo Workflows started by Argo Events) is
validated against the real CRDs and its steps run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from generator import __version__
from generator.tools import find
from tests.cluster.gitserver import GitServer
from tests.helpers import PROJECT
from tests.integration.test_ci_init import (
    GENERATOR_GIT, SETUP_STEP, TOOLS_PATH, WORKFLOWS, Step, ci_init, fresh_clone, generator_source, git, gitops_repo,
    run_steps, step_env, workflow)

TOKEN = "gt-7c1d0e5f9a2b4c6d8e0f1a3b5c7d9e1f"  # what a Gitea access token looks like; never printed
ARGO_FILES = (".argo/litellm-gitops-workflowtemplate.yaml", ".argo/litellm-gitops-sensor.yaml")
SCHEMAS = PROJECT / ".tools" / "schemas"
TAGGER = {"GIT_AUTHOR_NAME": "release", "GIT_AUTHOR_EMAIL": "release@example.com",
          "GIT_COMMITTER_NAME": "release", "GIT_COMMITTER_EMAIL": "release@example.com"}


def pinned_ref(path: Path) -> str:
    match = re.search(r'GENERATOR_REF\n? *(?:value)?: "([^"]+)"', path.read_text())
    assert match, path
    return match.group(1)


def rev_parse(repo: Path, ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=repo, capture_output=True,
                          text=True, timeout=30)


def test_the_pinned_ref_resolves_in_the_generators_repository(repo: Path) -> None:
    """Without --generator-ref, every provider pins a ref the generator's own repository has: here the commit
    the generator runs from (this checkout has no v<version> tag at HEAD)."""
    head = rev_parse(PROJECT, "HEAD").stdout.strip()
    for provider, path in [*WORKFLOWS.items(), ("argo", ARGO_FILES[0])]:
        extra = ("--repository", "platform/litellm-gitops") if provider == "argo" else ()
        result = ci_init(repo, provider, *extra)
        assert result.code == 0, result.text
        ref = pinned_ref(repo / path)
        resolved = rev_parse(PROJECT, ref)
        assert resolved.returncode == 0, (provider, ref, resolved.stderr)
        assert (ref, resolved.stdout.strip()) == (head, head)


def test_make_release_tags_the_version_and_ci_init_then_pins_the_tag(tmp_path: Path) -> None:
    """scripts/release.sh (make release) in a git copy of this generator: it refuses a dirty tree, runs the checks,
    tags v<version>; a second release of the same version is refused. The generator run from that copy then pins
    the tag, and the commit again once HEAD moves past it; the README's pre-commit rev names what ci init pins."""
    source = generator_source(tmp_path / "generator")
    env = {**os.environ, **TAGGER, "GENERATOR": str(PROJECT / ".venv" / "bin" / "generator")}
    release = ["bash", "scripts/release.sh"]

    (source / "scratch.txt").write_text("not committed\n")
    dirty = subprocess.run(release, cwd=source, env=env, capture_output=True, text=True, timeout=300)
    assert (dirty.returncode, dirty.stderr) == (1, "error: the working tree has changes; commit or stash them, "
                                                   "then make release\n")
    (source / "scratch.txt").unlink()
    tagged = subprocess.run(release, cwd=source, env=env, capture_output=True, text=True, timeout=300)
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    assert f"tagged v{__version__} at " in tagged.stdout and "valid: " in tagged.stdout
    head = rev_parse(source, "HEAD").stdout.strip()
    assert rev_parse(source, f"v{__version__}").stdout.strip() == head
    again = subprocess.run(release, cwd=source, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and f"error: tag v{__version__} exists (at {head[:7]}" in again.stderr

    gitops = tmp_path / "gitops"
    (gitops / "sites").mkdir(parents=True)
    from_copy = {**os.environ, "PYTHONPATH": str(source)}  # the generator as that checkout runs it

    def pin() -> str:
        done = subprocess.run([sys.executable, "-m", "generator", "ci", "init", "--provider", "gitlab",
                               "--generator-git", GENERATOR_GIT, "--force"], cwd=gitops, env=from_copy,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return pinned_ref(gitops / ".gitlab-ci.yml")

    assert pin() == f"v{__version__}"
    (source / "NEWS").write_text("after the release\n")
    git(source, "add", "NEWS")
    git(source, "commit", "-q", "-m", "after the release")
    moved = pin()
    assert moved == rev_parse(source, "HEAD").stdout.strip() != head
    assert rev_parse(source, moved).returncode == 0

    readme = (PROJECT / "README.md").read_text()
    revs = re.findall(r"^\s+rev: (\S+)", readme, re.MULTILINE)
    assert revs == ["<GENERATOR_REF>"], revs  # the README sends the operator to the ref ci init pinned
    assert "the GENERATOR_REF that `generator ci init` pins" in readme


def served_generator(tmp_path: Path) -> tuple[Path, Path]:
    """(a git copy of this generator, the root GitServer serves it from as generator.git)."""
    source = generator_source(tmp_path / "generator-src")
    served = tmp_path / "served"
    served.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(source), str(served / "generator.git"))
    return source, served


def test_a_private_generator_repository_is_read_with_the_ci_secret_never_printed(tmp_path: Path) -> None:
    """The GitHub, Gitea and GitLab install steps for real against a git server that requires the token (as a
    Gitea that needs sign-in does): with the secret the fetch succeeds (the step then stops at the pin check,
    by a planted mismatch, before installing anything); without it, or with a wrong one, the fetch fails; the
    token appears in no output. Also the argo install container, with its Secret's token in its env."""
    source, served = served_generator(tmp_path)
    head = rev_parse(source, "HEAD").stdout.strip()
    outputs: list[str] = []
    with GitServer(served, token=TOKEN) as server:
        url = server.repo_url("generator.git")
        for provider in ("github", "gitea", "gitlab", "argo"):
            extra = ["--generator-ref", head, "--generator-credential-secret",
                     "generator-token" if provider == "argo" else "GENERATOR_READ_TOKEN"]
            if provider == "argo":
                extra += ["--repository", "platform/litellm-gitops"]
            origin = gitops_repo(tmp_path / provider, provider, *extra)
            text = (origin / (ARGO_FILES[0] if provider == "argo" else WORKFLOWS[provider])).read_text()
            assert TOKEN not in text
            if provider == "argo":
                install, workflow_env = argo_container(origin, "install")
            else:
                setup, _, workflow_env = workflow(origin / WORKFLOWS[provider], provider)
                install = setup[-1] if provider == "gitlab" else next(s for s in setup if s.name == SETUP_STEP)
            runner = tmp_path / provider / "runner"
            runner.mkdir()
            env = step_env({**workflow_env, "GENERATOR_GIT": url, "KUBECONFORM_VERSION": "v0.6.0"}, [])
            env.update(RUNNER_TEMP=str(runner), GITHUB_PATH=str(runner / "path"), CI_PROJECT_DIR=str(runner),
                       GIT_TERMINAL_PROMPT="0")  # a runner has no terminal to ask for a password on
            clone = fresh_clone(origin, tmp_path / provider / "clone")
            signed = run_steps([install], clone, {**env, "GENERATOR_TOKEN": TOKEN})[0]
            assert signed.code == 1 and f"the generator at {head} pins KUBECONFORM_VERSION=" in signed.output, \
                (provider, signed.output)
            wrong = run_steps([install], clone, {**env, "GENERATOR_TOKEN": TOKEN[:-4] + "0000"})[0]
            assert wrong.code != 0 and "pins KUBECONFORM_VERSION" not in wrong.output, (provider, wrong.output)
            unset = run_steps([install], clone, env)[0]
            assert unset.code == 1 and "error: GENERATOR_TOKEN is empty: set the CI secret " in unset.output
            outputs += [signed.output, wrong.output, unset.output]
    assert all(TOKEN not in out and TOKEN[:12] not in out for out in outputs)


def argo_container(origin: Path, name: str, workspace: Path | None = None,
                   parameters: dict[str, str] | None = None) -> tuple[Step, dict[str, str]]:
    """One container of the WorkflowTemplate's containerSet as Argo runs it: its bash script, and its env with
    the workflow parameters filled in (Secret references left out: the test gives their values). The shared
    volume's mount path is ``workspace``."""
    doc = yaml.safe_load((origin / ARGO_FILES[0]).read_text())
    mount = doc["spec"]["templates"][0]["containerSet"]["volumeMounts"][0]["mountPath"]
    container = next(c for c in doc["spec"]["templates"][0]["containerSet"]["containers"] if c["name"] == name)
    assert container["command"] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            value = item["value"]
            for key, given in (parameters or {}).items():
                value = value.replace(f"{{{{workflow.parameters.{key}}}}}", given)
            env[item["name"]] = value
    script = container["args"][0]
    if workspace is not None:
        script = script.replace(mount, str(workspace))
    return Step(name, script), env


def argo_order(origin: Path) -> list[str]:
    """The containers in the order their dependencies run them: each depends on the one before."""
    doc = yaml.safe_load((origin / ARGO_FILES[0]).read_text())
    containers = doc["spec"]["templates"][0]["containerSet"]["containers"]
    assert "dependencies" not in containers[0]
    assert all(c["dependencies"] == [p["name"]] for p, c in zip(containers, containers[1:], strict=False))
    return [c["name"] for c in containers]


def test_argo_workflowtemplate_and_sensor_pass_their_crds_strictly(repo: Path, tmp_path: Path) -> None:
    """kubeconform -strict against schemas scripts/setup.sh built from the pinned modules' own definitions
    (Argo Workflows' full CRD, Argo Events' api/jsonschema): the files pass; a misspelt field in each fails."""
    kubeconform = find("kubeconform")
    assert kubeconform is not None
    assert ci_init(repo, "argo", "--repository", "platform/litellm-gitops", "--generator-credential-secret",
                   "generator-token", "--argo-cache-claim", "litellm-gitops-cache").code == 0
    volumes = yaml.safe_load((repo / ARGO_FILES[0]).read_text())["spec"]["volumes"]
    assert volumes[1] == {"name": "cache", "persistentVolumeClaim": {"claimName": "litellm-gitops-cache"}}
    location = f"{SCHEMAS}/crds/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"
    assert (SCHEMAS / "crds/argoproj.io/sensor_v1alpha1.json").is_file()
    sources = (SCHEMAS / "SOURCES.txt").read_text()
    assert "go module github.com/argoproj/argo-events@" in sources and "github.com/argoproj/argo-workflows/v3@" in sources

    def check(*paths: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(kubeconform), "-strict", "-summary", "-schema-location", location, *map(str, paths)],
                              capture_output=True, text=True, timeout=60)

    good = check(*(repo / f for f in ARGO_FILES))
    assert good.returncode == 0 and "Valid: 2, Invalid: 0, Errors: 0, Skipped: 0" in good.stdout, good.stdout
    bad_template = tmp_path / "template.yaml"
    bad_template.write_text((repo / ARGO_FILES[0]).read_text().replace("dependencies: [toolchain]", "dependsOn: [toolchain]"))
    bad_sensor = tmp_path / "sensor.yaml"
    bad_sensor.write_text((repo / ARGO_FILES[1]).read_text().replace("dataKey: body.after", "dataKey: body.after\n                extra: 1"))
    bad = check(bad_template, bad_sensor)
    assert bad.returncode == 1 and "Invalid: 2" in bad.stdout
    assert "additional properties 'dependsOn' not allowed" in bad.stdout
    assert "additional properties 'extra' not allowed" in bad.stdout

    sensor = yaml.safe_load((repo / ARGO_FILES[1]).read_text())
    dependency = sensor["spec"]["dependencies"][0]
    assert (dependency["eventSourceName"], dependency["eventName"]) == ("gitea-webhook", "gitea")  # Thinkube's
    pattern = next(f["value"][0] for f in dependency["filters"]["data"] if f["path"] == "body.repository.full_name")
    assert re.fullmatch(pattern.replace("[.]", r"\."), "platform/litellm-gitops")
    trigger = sensor["spec"]["triggers"][0]["template"]["k8s"]
    assert trigger["operation"] == "create" and trigger["source"]["resource"]["kind"] == "Workflow"
    template = yaml.safe_load((repo / ARGO_FILES[0]).read_text())
    assert trigger["source"]["resource"]["spec"]["workflowTemplateRef"]["name"] == template["metadata"]["name"]
    names = [p["name"] for p in template["spec"]["arguments"]["parameters"]]
    given = {p["dest"]: p["src"]["dataKey"] for p in trigger["parameters"]}
    assert given == {f"spec.arguments.parameters.{names.index('repo-url')}.value": "body.repository.clone_url",
                     f"spec.arguments.parameters.{names.index('revision')}.value": "body.after"}


def test_argo_steps_check_out_the_pushed_commit_with_the_secret_and_stop_at_a_stale_overlay(tmp_path: Path) -> None:
    """The WorkflowTemplate's containers, in their dependency order, run with bash in one shared workspace as the
    pod shares its volume: checkout clones the pushed commit from a git server that requires the token (the
    Secret's), then the three checks pass. The set-up containers (Go's toolchain, the generator's install)
    are not run here: this machine has the tools on PATH; the install container's fetch is run by
    test_a_private_generator_repository_is_read_with_the_ci_secret_never_printed. A hand-edited overlay pushed
    next stops at render-check."""
    origin = gitops_repo(tmp_path, "argo", "--repository", "platform/litellm-gitops", "--generator-credential-secret",
                         "generator-token")
    order = argo_order(origin)
    assert order == ["toolchain", "checkout", "install", "render-check", "validate", "audit"]
    served = tmp_path / "served"
    served.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(served / "gitops.git"))

    def run(workspace: Path, url: str, revision: str, token: str) -> list:
        workspace.mkdir()
        steps, env = [], {}
        for name in order[1:2] + order[3:]:
            step, step_vars = argo_container(origin, name, workspace, {"repo-url": url, "revision": revision})
            steps.append(step)
            env.update(step_vars)
        base = {**step_env(env, TOOLS_PATH), "GIT_TERMINAL_PROMPT": "0"}
        ran = run_steps(steps[:1], workspace, {**base, "GENERATOR_TOKEN": token})
        if ran[-1].code == 0:
            ran += run_steps(steps[1:], workspace / "repo", base)
        return ran

    with GitServer(served, token=TOKEN) as server:
        url = server.repo_url("gitops.git")
        head = rev_parse(origin, "HEAD").stdout.strip()
        clean = run(tmp_path / "clean", url, head, TOKEN)
        assert [(r.name, r.code) for r in clean] == [(n, 0) for n in ["checkout", *order[3:]]], clean
        assert "up to date" in clean[1].output and "audit passed" in clean[3].output
        denied = run(tmp_path / "denied", url, head, "not-the-token")
        assert [(r.name, r.code) for r in denied] == [("checkout", 128)], denied

        pdb = origin / "overlays/prod/app/pdb.yaml"
        pdb.write_text(pdb.read_text().replace("maxUnavailable: 1\n", "maxUnavailable: 2\n"))
        git(origin, "commit", "-q", "-am", "hand-edited overlay")
        git(origin, "push", "-q", str(served / "gitops.git"), "HEAD:main")
        stale = run(tmp_path / "stale", url, rev_parse(origin, "HEAD").stdout.strip(), TOKEN)
        assert [(r.name, r.code) for r in stale] == [("checkout", 0), ("render-check", 1)], stale
        assert "stale: 1 file(s) differ" in stale[1].output
    assert all(TOKEN not in r.output for r in [*clean, *denied, *stale])
