"""`generator site new` and `generator site remove`: a site in one command, and out again.

``site new`` writes sites/<name>/site.yaml (a Jinja2 template, or a copy of another site), adds the site's
creation rule to .sops.yaml (a round-trip edit: the other rules and the comments stay), installs the sealing
certificate, creates the sops file and renders. Any failure undoes every step, so a half-made site never
stays behind; run again on the same inputs, it changes nothing.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined
from ruamel.yaml import YAML

from generator.errors import GeneratorError, UsageError
from generator.inputs import read_input
from generator.layout import CLUSTERS_DIR, FLEET_DIR, SITE_NAME, Repo, site_output_dirs
from generator.model import AGE_RECIPIENT_RE, DEFAULT_IMAGE_TAG, HOSTNAME_RE, Flux
from generator.model.base import GIT_URL_RE
from generator.redact import looks_secret, shown_text, shown_url
from generator.secrets.cert import MAX_CERT_BYTES

SOPS_CONFIG = ".sops.yaml"


@dataclass(frozen=True)
class NewSite:
    name: str
    domain: str
    source: str | None = None  # --from: an existing site to copy
    recipients: tuple[str, ...] = ()
    cert: Path | None = None
    fetch_cert: bool = False
    wave: int = 0
    controller: tuple[str, str] = ("sealed-secrets-controller", "kube-system")  # --fetch-cert's: name, namespace
    kubeconfig: Path | None = None  # --fetch-cert's cluster (kubectl's defaults when None)
    context: str | None = None
    git_url: str | None = None  # --git-url: else platform.yaml's repository, else the fleet's
    branch: str | None = None
    cluster: str | None = None  # --cluster: one platform.yaml names


def _check(request: NewSite) -> None:
    if looks_secret(request.name):  # it would name a directory, and every message about the site
        raise UsageError("the site name looks like a credential (a key or token): choose another name")
    if not SITE_NAME.match(request.name):
        raise UsageError(f"site name {shown_text(request.name)} is invalid: use lowercase letters, digits and '-' (at most 40)")
    if not HOSTNAME_RE.match(request.domain):
        raise UsageError(f"--domain {shown_text(request.domain)} is not a DNS name (lowercase labels separated by dots)")
    for recipient in request.recipients:
        if not AGE_RECIPIENT_RE.match(recipient):
            raise UsageError(f"--age-recipient {shown_text(recipient)} is not an age recipient (age1...)")
    if request.cert and request.fetch_cert:
        raise UsageError("give --cert FILE or --fetch-cert, not both")
    if request.source and (request.git_url or request.branch):
        raise UsageError("--from keeps the fleet's repository (one per fleet): give --git-url/--branch without --from")
    if request.git_url is not None and (not GIT_URL_RE.match(request.git_url) or request.git_url != shown_url(request.git_url)):
        raise UsageError("--git-url: not a git URL the engines can read (https:// or ssh://, without a password)")
    if request.branch is not None and not re.match(r"^[A-Za-z0-9._/-]+$", request.branch):
        raise UsageError("--branch: not a branch name")


def site_text(repo: Repo, request: NewSite) -> str:
    """The new site file: a copy of --from with the domain changed, or the commented template."""
    if request.source:
        repo.check_site_name(request.source)
        return _copy(repo, request)
    git = _fleet_git(repo, request)
    env = Environment(loader=PackageLoader("generator", "templates/site"), undefined=StrictUndefined,
                      keep_trailing_newline=True, autoescape=False)
    namespace = free_namespace(repo, request.name, "litellm", request.cluster)
    return env.get_template("site.yaml.j2").render(name=request.name, domain=request.domain, tag=DEFAULT_IMAGE_TAG,
                                                   wave=request.wave, namespace=namespace, cluster=request.cluster,
                                                   **git)


def free_namespace(repo: Repo, name: str, wanted: str, cluster: str | None) -> str:
    """``wanted``, unless another site of the same cluster has it (render refuses two sites on one namespace of
    one cluster): then ``<wanted>-<name>``."""
    from generator.loader import load_platform, load_site

    settings = load_platform(repo)
    default = settings.cluster_names()[0] if len(settings.cluster_names()) == 1 else None
    taken = set()
    for other in repo.site_names():
        if other != name:
            site = load_site(repo, other)
            taken.add((site.namespace, site.cluster or default))
    return f"{wanted}-{name}" if (wanted, cluster or default) in taken else wanted


def _names_placeholder(text: str) -> bool:
    return f"url: {Flux().url}" in text


def _fleet_git(repo: Repo, request: NewSite) -> dict[str, Any]:
    """The repository the new site's engines read: --git-url, else the one `generator init` recorded in
    platform.yaml, else the fleet's (one per fleet: render/fleet.py), else the placeholder (with a warning)."""
    from generator.loader import load_platform, load_site

    settings = load_platform(repo)
    recorded = settings.repository
    engines = recorded.engines if recorded else "both"
    flux_secret = None if recorded and settings.git_credential == "sealed" else "flux-system"
    git = {"flux": engines in ("flux", "both"), "argocd": engines in ("argocd", "both"), "flux_secret": flux_secret}
    if request.git_url:
        return {**git, "git_url": request.git_url, "branch": request.branch or (recorded.branch if recorded else "main")}
    if recorded:
        return {**git, "git_url": recorded.url, "branch": request.branch or recorded.branch}
    names = repo.site_names()
    if names:
        flux = load_site(repo, names[0]).gitops.flux
        return {**git, "git_url": flux.url, "branch": request.branch or flux.branch, "flux_secret": flux.secret_ref}
    default = Flux()
    return {**git, "git_url": default.url, "branch": request.branch or default.branch}


def _copy(repo: Repo, request: NewSite) -> str:
    from generator.loader import load_site

    source = load_site(repo, request.source)  # a broken source stops here, with its own message
    yaml = YAML()
    yaml.preserve_quotes = True
    shown = repo.rel(repo.site_file(request.source))
    tree = yaml.load(read_input(repo.site_file(request.source), shown, root=repo.root).decode())
    old = source.domain
    tree["domain"] = request.domain
    if isinstance(tree.get("hostname"), str):
        tree["hostname"] = re.sub(rf"{re.escape(old)}$", request.domain, tree["hostname"])
    if "rollout" in tree or request.wave:
        tree["rollout"] = {"wave": request.wave}
    if request.cluster:
        tree["cluster"] = request.cluster
    namespace = free_namespace(repo, request.name, source.namespace, request.cluster or source.cluster)
    if namespace != source.namespace:  # the source's would be two sites on one namespace of one cluster
        tree["namespace"] = namespace
    for path in (("keycloak", "url"), ("image", "repository"), ("bootstrap", "keycloak", "url")):
        _replace_in(tree, path, old, request.domain)  # the hosts derived from the domain, not the git URLs
    text = io.StringIO()
    yaml.dump(tree, text)
    return text.getvalue()


def _replace_in(tree: Any, path: tuple[str, ...], old: str, new: str) -> None:  # noqa: ANN401
    node = tree
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(path[-1]), str):
        node[path[-1]] = node[path[-1]].replace(old, new)


def run_site_new(repo: Repo, request: NewSite, out: TextIO = sys.stdout) -> int:
    from generator.rendering import RenderRequest, run_render
    from generator.secrets.commands import cert_fetch, cert_import, secrets_init

    _check(request)
    target = repo.site_file(request.name)
    shown = repo.rel(target)
    if target.exists():
        if target.read_bytes() != _text_or_none(repo, request):
            raise UsageError(f"{shown} exists; edit it, or remove the site first (generator site remove {request.name})")
        print(f"unchanged {shown}", file=out)
    text = site_text(repo, request)
    sops_path = repo.root / SOPS_CONFIG
    sops_before = sops_path.read_bytes() if sops_path.is_file() else None
    created = not target.exists()
    try:
        if created:
            target.parent.mkdir(parents=True)
            cert = _cert_file(repo, request)  # before anything is written: a missing certificate stops here
            target.write_text(text)
            print(f"created   {shown}", file=out)
            if _names_placeholder(text):
                print(f"note: {shown} names the placeholder git URL {Flux().url}: give --git-url, or record the "
                      "repository once with 'generator init --git-url URL' (platform.yaml)", file=out)
            if cert is None:  # --fetch-cert
                cert_fetch(repo, request.name, *request.controller, out, kubeconfig=request.kubeconfig,
                           context=request.context)
            else:
                cert_import(repo, request.name, cert, out)
        sops_rule(repo, request, out)
        secrets_init(repo, request.name, out)
        code = run_render(repo, RenderRequest((request.name,)), out)
        if code != 0:
            raise UsageError(f"render of site {request.name} failed (exit {code})")
    except BaseException:
        undone = _roll_back(repo, request.name, created, sops_before) if created else []
        if undone:  # beside the per-file report above; the error itself stays one line
            print(f"rolled back: {'; '.join(undone)} (a file an error names below was this run's own; rerun "
                  "site new once the cause is fixed)", file=out)
        raise
    print(f"next: review and commit sites/{request.name}, the rendered tree and {SOPS_CONFIG}", file=out)
    return 0


def _roll_back(repo: Repo, name: str, created: bool, sops_before: bytes | None) -> list[str]:
    """Undo a new site: its directory, and .sops.yaml as it was (removed when this run made it)."""
    undone = []
    if created and repo.site_dir(name).exists():
        shutil.rmtree(repo.site_dir(name), ignore_errors=True)
        undone.append(f"removed sites/{name}/")
    sops_path = repo.root / SOPS_CONFIG
    if sops_before is None and sops_path.is_file():
        sops_path.unlink()
        undone.append(f"removed {SOPS_CONFIG}")
    elif sops_before is not None and sops_path.is_file() and sops_path.read_bytes() != sops_before:
        sops_path.write_bytes(sops_before)
        undone.append(f"restored {SOPS_CONFIG}")
    return undone


def _text_or_none(repo: Repo, request: NewSite) -> bytes | None:
    try:
        return site_text(repo, request).encode()
    except GeneratorError:  # the existing file (or a sibling) does not load: it is not what this run would write
        return None


def _cert_file(repo: Repo, request: NewSite) -> Path | None:
    """The certificate to import, or None to fetch it from the cluster (--fetch-cert)."""
    if request.cert:
        read_input(request.cert, str(request.cert), limit=MAX_CERT_BYTES)  # readable, a certificate's size
        return request.cert
    if request.fetch_cert:
        return None
    if request.source and (repo.site_dir(request.source) / "sealing-cert.pem").is_file():
        return repo.site_dir(request.source) / "sealing-cert.pem"
    raise UsageError("no sealing certificate: give --cert FILE, --fetch-cert (from the cluster in the current "
                     "kubeconfig context), or --from a site that has one")


def sops_rule(repo: Repo, request: NewSite, out: TextIO) -> None:
    """The site's own creation rule, first (sops takes the first rule that matches), the others untouched."""
    path = repo.root / SOPS_CONFIG
    yaml = YAML()
    yaml.preserve_quotes = True
    config = yaml.load(path.read_text()) if path.is_file() else None
    config = config if config is not None else {"creation_rules": []}
    rules = config.setdefault("creation_rules", [])
    secrets_path = f"sites/{request.name}/secrets.sops.yaml"
    own = rf"^sites/{re.escape(request.name)}/secrets\.sops\.yaml$"
    mine = next((r for r in rules if r.get("path_regex") == own), None)
    if request.recipients:
        wanted = ",".join(request.recipients)
        if mine is not None and mine.get("age") == wanted:
            print(f"unchanged {SOPS_CONFIG} (rule for {secrets_path})", file=out)
            return
        if mine is not None:
            raise UsageError(f"{SOPS_CONFIG}: the rule for {secrets_path} names other recipients; edit it by hand")
        rules.insert(0, {"path_regex": own, "age": wanted})
        buffer = io.StringIO()
        yaml.dump(config, buffer)
        path.write_text(buffer.getvalue())
        print(f"updated   {SOPS_CONFIG} (rule for {secrets_path})", file=out)
        return
    if not any(re.search(str(r.get("path_regex", "")), secrets_path) for r in rules):
        raise UsageError(f"{SOPS_CONFIG}: no creation rule matches {secrets_path}: give --age-recipient "
                         "(the public keys that may decrypt the site's secrets)")


def run_site_remove(repo: Repo, name: str, out: TextIO = sys.stdout) -> int:
    """Remove the site's file, secrets, certificate and rendered outputs, then re-render the fleet layer so
    both engines' parents prune it from the cluster."""
    from generator.rendering import RenderRequest, run_render

    repo.check_site_name(name)
    for rel in (f"sites/{name}", *site_output_dirs(name)):
        if (repo.root / rel).exists():
            shutil.rmtree(repo.root / rel)
            print(f"deleted   {rel}", file=out)
    _drop_sops_rule(repo, name, out)
    if repo.site_names():
        return run_render(repo, RenderRequest(()), out)
    for rel in (FLEET_DIR, CLUSTERS_DIR, "kustomization.yaml"):
        target = repo.root / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.is_file():
            target.unlink()
    print("no site left: the fleet layer is removed", file=out)
    return 0


def _drop_sops_rule(repo: Repo, name: str, out: TextIO) -> None:
    path = repo.root / SOPS_CONFIG
    if not path.is_file():
        return
    yaml = YAML()
    yaml.preserve_quotes = True
    config = yaml.load(path.read_text())
    rules = config.get("creation_rules", []) if config else []
    own = rf"^sites/{re.escape(name)}/secrets\.sops\.yaml$"
    kept = [r for r in rules if r.get("path_regex") != own]
    if len(kept) != len(rules):
        config["creation_rules"] = kept
        buffer = io.StringIO()
        yaml.dump(config, buffer)
        path.write_text(buffer.getvalue())
        print(f"updated   {SOPS_CONFIG} (rule for sites/{name} removed)", file=out)
