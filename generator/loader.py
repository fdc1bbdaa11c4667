"""Every input a render reads, read once and checked here, or one message naming file, line, field and problem.

The site file (and its extensions), ``platform.yaml``, and what a site needs of the repository before it can be
rendered: a licence for JWT auth in its secrets file, a git credential for the engines.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generator.errors import SiteError
from generator.inputs import check_yaml_files, checked_text, kind_of, parse_mapping, read_input, read_mapping
from generator.layout import Repo
from generator.model import LICENSE_KEY, ExternalSecretKey, SecretHeader, Site
from generator.redact import may_show, shown_key, shown_url
from generator.platform import FLUX_SECRET, SETTINGS_FILE, PlatformSettings
from generator.yamlio import line_of, load_plain, to_plain


def load_site(repo: Repo, name: str) -> Site:
    return _load(repo, name)[0]


def load_site_to_render(repo: Repo, name: str, settings: PlatformSettings) -> Site:
    """The site as its render reads it: checked, licensed for what it turns on, and with the engines' git access."""
    site, text = _load(repo, name)
    check_licensed(repo, name, site, text)
    check_secret_references(repo, name, site, text)
    return with_git_access(repo, name, place_site(repo, name, site, settings, text), settings, text)


def load_site_for_engines(repo: Repo, name: str, settings: PlatformSettings) -> Site:
    """The site with the engines' git access (what the fleet layer and the cluster checks read of it)."""
    site, text = _load(repo, name)
    return with_git_access(repo, name, place_site(repo, name, site, settings, text), settings, text)


def _load(repo: Repo, name: str) -> tuple[Site, str]:
    """The site and the checked text of its file (read once: a later check names its lines from it)."""
    repo.check_site_name(name)
    path = repo.site_file(name)
    shown = repo.rel(path)
    text = checked_text(read_input(path, shown, root=repo.root), shown)
    site = _site_from_text(text, shown)
    if site.extensions:
        check_extensions(repo, name, site.extensions)
    return site, text


EXTENSION_KINDS = {"resources": "Kustomization", "component": "Component"}


def check_extensions(repo: Repo, name: str, kind: str) -> None:
    """The operator's extensions directory holds a kustomization of the kind the site names, and every YAML
    file in it passes the input gate (a pull request can make any of them hostile)."""
    directory = repo.site_dir(name) / "extensions"
    file = directory / "kustomization.yaml"
    shown = repo.rel(file)
    if not file.is_file():
        raise SiteError(repo.rel(repo.site_file(name)), f"{shown} is missing: create it (a Kustomize "
                        f"{EXTENSION_KINDS[kind]}) or remove the key", field="extensions")
    check_yaml_files(repo.root, [directory])
    tree = read_mapping(file, shown, empty="file is empty", what="Kustomize fields", root=repo.root)
    found = tree.get("kind", "Kustomization")
    if found != EXTENSION_KINDS[kind]:
        raise SiteError(shown, f"is a {found}, but the site says extensions: {kind} (a {EXTENSION_KINDS[kind]})",
                        field="kind", line=line_of(tree, ("kind",)))


def load_site_file(path: Path, *, display: str | None = None, root: Path | None = None) -> Site:
    shown = display or str(path)
    return _site_from_text(checked_text(read_input(path, shown, root=root), shown), shown)


def site_from_text(text: str, shown: str) -> Site:
    """The site model of a site file's text (exit 2 naming the line of a problem)."""
    return _site_from_text(text, shown)


def _site_from_text(text: str, shown: str) -> Site:
    plain = load_plain(text)
    if isinstance(plain, dict) and plain:  # the fast reader vouches for it: no line numbers needed unless invalid
        try:
            return Site.model_validate(plain)
        except ValidationError:
            pass  # read again below, keeping lines, to name the line of the problem
    tree = parse_mapping(text, shown, empty="file is empty: a site needs at least 'domain'", what="settings")
    try:
        return Site.model_validate(to_plain(tree))
    except ValidationError as exc:
        raise settings_error(shown, tree, exc, Site) from exc


def _site_line(repo: Repo, name: str, text: str | None, field: tuple[str, ...]) -> tuple[str, int | None]:
    """The site file as shown to the user, and the line of ``field`` in it (from the text already read)."""
    path = repo.site_file(name)
    shown = repo.rel(path)
    if text is None:  # a site loaded by the caller: its file is read here, for the line only
        tree = read_mapping(path, shown, empty="file is empty", what="settings", root=repo.root)
    else:
        tree = parse_mapping(text, shown, empty="file is empty", what="settings")
    return shown, line_of(tree, field)


def check_licensed(repo: Repo, name: str, site: Site, text: str | None = None) -> None:
    """JWT API auth is licensed in LiteLLM 1.108.7: without LITELLM_LICENSE every token gets the licence
    refusal. Refuse to render such a site (exit 2) rather than ship an API that accepts no token."""
    if not site.jwt_auth.enabled:
        return
    from generator.secrets.store import SecretsFile

    store = SecretsFile(repo, name)
    if LICENSE_KEY in store.key_names():
        return
    shown, line = _site_line(repo, name, text, ("jwtAuth", "enabled"))
    raise SiteError(shown, f"JWT auth is an enterprise feature of LiteLLM 1.108.7 and {store.rel} has no "
                    f"{LICENSE_KEY}: every token would be refused (\"JWT Auth is an enterprise only feature\"); "
                    f"add it with 'generator secrets set --site {name} {LICENSE_KEY}' or turn jwtAuth off",
                    field="jwtAuth.enabled", line=line)


def secret_references(site: Site) -> list[tuple[str, tuple[Any, ...]]]:
    """The keys of the site's own secret that the operator provides, each with the field that names it."""
    from generator.render.common import SECRET_NAME

    found: list[tuple[str, tuple[Any, ...]]] = []
    for index, entry in enumerate(site.models):
        if entry.api_key_secret:
            found.append((entry.api_key_secret, ("models", index, "apiKeySecret")))
    for index, endpoint in enumerate(site.pass_through_endpoints):
        for header, value in endpoint.headers.items():
            if isinstance(value, SecretHeader):
                found.append((value.secret_key, ("passThroughEndpoints", index, "headers", header, "secretKey")))
    for env, value in site.extra_env.items():
        if isinstance(value, ExternalSecretKey) and value.secret == SECRET_NAME and not value.optional:
            found.append((value.key, ("extraEnv", env, "key")))
    return found


def check_secret_references(repo: Repo, name: str, site: Site, text: str | None = None) -> None:
    """Every key the site names in its own secret is in its sops file (key names are plaintext there: nothing is
    decrypted), or listed in secrets.filledLater. A typo would otherwise pass render and validate and leave a
    pod that never starts. Without a sops file yet, render warns instead (overlay_secret)."""
    from generator.secrets.store import SecretsFile

    store = SecretsFile(repo, name)
    if not store.exists():
        return
    held = set(store.key_names())
    later = set(site.secrets.filled_later)
    problems = []
    for key, field in secret_references(site):
        if key in held or key in later:
            continue
        close = difflib.get_close_matches(key, sorted(k for k in held if not k.startswith("_")), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown, line = _site_line(repo, name, text, field)
        problems.append(SiteError(shown, f"{key} is not in {store.rel}; {hint}set it with 'generator secrets set "
                                  f"--site {name} {key}', or list it in secrets.filledLater if it comes later",
                                  field=_format_path(field), line=line))
    if problems:
        raise SiteError.every(problems)


def with_git_access(repo: Repo, name: str, site: Site, settings: PlatformSettings, text: str | None = None) -> Site:
    """The site as the engines will read its repository: a Flux GitRepository without a secretRef takes the
    sealed credential's Secret. An ssh:// repository with no credential at all is refused (exit 2)."""
    from generator.secrets.store import credential_store

    sealed = settings.git_credential == "sealed" and credential_store(repo).exists()
    flux, argo = site.gitops.flux, site.gitops.argocd
    if sealed and flux.enabled and flux.secret_ref is None:
        site = site.model_copy(update={"gitops": site.gitops.model_copy(update={
            "flux": flux.model_copy(update={"secret_ref": FLUX_SECRET})})})
    if settings.git_credential == "external" or sealed:
        return site
    way_out = ("run 'generator secrets git-credential --ssh-key FILE --known-hosts FILE' (sealed into deploy/platform/)"
               "{also}, or set gitCredential: external in platform.yaml (or use an https:// URL)")
    refusals = [
        (flux.enabled and flux.secret_ref is None, flux.url, ("gitops", "flux", "secretRef"),
         "source-controller answers \"invalid 'ssh' auth option: 'identity' is required\" and never fetches",
         ", name a Secret of your own in gitops.flux.secretRef"),
        (argo.enabled, argo.repo_url, ("gitops", "argocd", "repoUrl"), "Argo CD cannot read it", ""),
    ]
    for refused, url, field, why, also in refusals:
        if refused and url.startswith("ssh://"):
            shown, line = _site_line(repo, name, text, field)
            raise SiteError(shown, f"the ssh:// source {shown_url(url)} needs a credential and the repository holds none: {why}; "
                            + way_out.format(also=also), field=".".join(field), line=line)
    return site


def place_site(repo: Repo, name: str, site: Site, settings: PlatformSettings, text: str | None = None) -> Site:
    """The site on its cluster: the one platform.yaml names (``cluster:``, default the one cluster there is),
    its Argo CD destination the cluster's unless the site sets its own. With several clusters, the sites'
    AppProject is one per cluster (``<project>-<cluster>``): a hub's Argo CD holds every cluster's."""
    names = settings.cluster_names()
    cluster = site.cluster or (names[0] if len(names) == 1 else None)
    if cluster not in names:
        shown, line = _site_line(repo, name, text, ("cluster",))
        problem = (f"cluster {site.cluster!r} is not one platform.yaml names (clusters: {', '.join(names)}); add it "
                   "under clusters: in platform.yaml, or fix the name" if site.cluster else
                   f"platform.yaml names several clusters: say which one runs the site (clusters: {', '.join(names)})")
        raise SiteError(shown, problem, field="cluster", line=line)
    argo = site.gitops.argocd
    own = "destination" in argo.model_fields_set
    wanted = settings.cluster(cluster).argocd.destination
    if own and settings.multi_cluster and argo.destination.spec() != wanted.spec():
        shown, line = _site_line(repo, name, text, ("gitops", "argocd", "destination"))
        raise SiteError(shown, f"{argo.destination.spec()} differs from cluster {cluster}'s {wanted.spec()}: with "
                        "several clusters the destination is the cluster's; set it in platform.yaml",
                        field="gitops.argocd.destination", line=line)
    update: dict = {} if own else {"destination": wanted}
    if settings.multi_cluster and argo.project != "default":
        update["project"] = f"{argo.project}-{cluster}"
    gitops = site.gitops.model_copy(update={"argocd": argo.model_copy(update=update)}) if update else site.gitops
    return site.model_copy(update={"cluster": cluster, "gitops": gitops})


def load_platform(repo: Repo) -> PlatformSettings:
    """``platform.yaml``, the repository's own settings; the defaults when there is none."""
    path = repo.root / SETTINGS_FILE
    if not path.is_file() and not path.is_symlink():
        return PlatformSettings()
    text = checked_text(read_input(path, SETTINGS_FILE, root=repo.root), SETTINGS_FILE)
    plain = load_plain(text)
    if isinstance(plain, dict) and plain:
        try:
            return PlatformSettings.model_validate(plain)
        except ValidationError:
            pass  # read again below, keeping lines, to name the line of the problem
    tree = parse_mapping(text, SETTINGS_FILE, empty="file is empty (delete it for the defaults)", what="settings")
    try:
        return PlatformSettings.model_validate(to_plain(tree))
    except ValidationError as exc:
        raise settings_error(SETTINGS_FILE, tree, exc, PlatformSettings) from exc


def settings_error(shown: str, tree: Any, exc: ValidationError, model: Any) -> SiteError:  # noqa: ANN401
    """Every problem, one line each, with its field path (camelCase, as written) and its line. A union's members
    each report the same field: the most useful report of a field stands for the others."""
    problems: list[SiteError] = []
    seen: set[tuple[Any, ...]] = set()
    errors = sorted(exc.errors(include_url=False), key=_rank)
    typos = {(tuple(e["loc"])[:-1], str(e["loc"][-1])) for e in errors if e["type"] == "extra_forbidden" and e["loc"]}
    for error in errors:
        path = _error_path(tree, error)
        if path in seen or _explained_by_typo(error, typos):
            continue
        if error["type"].endswith("_type") and any(other[:len(path)] == path for other in seen):
            continue  # another member of a union got further into this value: its error says more
        seen.add(path)
        problem = _problem(error)
        if error["type"] == "extra_forbidden":
            problem += _suggestion(path[-1] if path else "", error, model)
        problems.append(SiteError(shown, problem, field=_format_path(path) or "(top level)", line=line_of(tree, path)))
    problems.sort(key=lambda problem: problem.line or 0)  # in the file's order (stable: the top level first)
    return SiteError.every(problems)


def _explained_by_typo(error: dict[str, Any], typos: set[tuple[tuple[Any, ...], str]]) -> bool:
    """A required key reported missing beside an unknown key spelled like it: the typo's line says it all."""
    if error["type"] != "missing" or not error["loc"]:
        return False
    parent, name = tuple(error["loc"])[:-1], str(error["loc"][-1])
    return any(where == parent and difflib.get_close_matches(typo, [name], n=1, cutoff=0.6) for where, typo in typos)


def _error_path(tree: Any, error: dict[str, Any]) -> tuple[Any, ...]:  # noqa: ANN401
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if error["type"] == "duplicate":
        loc = (*loc, ctx["index"], ctx["field"])
    path = _real_path(tree, loc, missing=error["type"] == "missing")
    if error["type"] == "site_rule":
        # the field to change, written out even where the user left the whole section to its defaults
        path = (*path, *(int(part) if part.isdigit() else part for part in str(ctx["at"]).split(".")))
    return path


def _rank(error: dict[str, Any]) -> tuple[int, int]:
    # Unknown keys first (a typo explains the 'missing' error that comes with it), then the most
    # specific location: for a union, the member that got furthest.
    return (0 if error["type"] == "extra_forbidden" else 1, -len(error["loc"]))


def _real_path(tree: Any, loc: tuple[Any, ...], *, missing: bool) -> tuple[Any, ...]:
    """Drop pydantic's union member tags ('str', 'SecretHeader', ...) from an error location."""
    path: list[Any] = []
    node = tree
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and last and missing:
            path.append(part)  # a required key that is absent
        # anything else is a union tag or lies below a scalar: not part of what the user wrote
    return tuple(path)


def _suggestion(key: Any, error: dict[str, Any], model: Any) -> str:  # noqa: ANN401
    known = _known_keys(model, tuple(error["loc"])[:-1])
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known_keys(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """camelCase keys accepted at ``loc`` of the Site model (best effort, for suggestions only)."""
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        match = next((f for name, f in fields.items() if (f.alias or name) == part), None)
        if match is None:
            return []
        model = _model_in(match.annotation)
    return [(f.alias or name) for name, f in getattr(model, "model_fields", {}).items()]


def _model_in(annotation: Any) -> Any:
    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _format_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        part = part if isinstance(part, int) else shown_key(part)  # a pasted credential as a key stays hidden
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see schema/site.schema.json)"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind.endswith("_type") or kind in {"literal_error", "enum"}:
        return f"{message} (found {_found(error.get('input'))})"
    return message


def _found(value: Any) -> str:
    if isinstance(value, str):
        return f"a string: {value!r}" if may_show(value) else f"a string of {len(value)} characters"
    if isinstance(value, (bool, int, float)):
        return f"{kind_of(value)}: {value!r}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key{'s' if len(value) != 1 else ''}"
    return kind_of(value)
