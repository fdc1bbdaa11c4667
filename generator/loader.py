"""Read a site file into a Site, or fail with one message naming file, line, field and problem."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generator.errors import SiteError
from generator.inputs import check_yaml_files, checked_text, read_input
from generator.layout import Repo
from generator.model import Site
from generator.yamlio import YamlSyntaxError, line_of, load_plain, load_with_lines, to_plain


def load_site(repo: Repo, name: str) -> Site:
    repo.check_site_name(name)
    site = load_site_file(repo.site_file(name), display=repo.rel(repo.site_file(name)), root=repo.root)
    if site.extensions:
        check_extensions(repo, name, site.extensions)
    return site


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
    plain = load_plain(checked_text(read_input(path, shown, root=root), shown))
    if isinstance(plain, dict) and plain:  # the fast reader vouches for it: no line numbers needed unless invalid
        try:
            return Site.model_validate(plain)
        except ValidationError:
            pass  # read again below, keeping lines, to name the line of the problem
    tree = read_mapping(path, shown, empty="file is empty: a site needs at least 'domain'", what="settings", root=root)
    try:
        return Site.model_validate(to_plain(tree))
    except ValidationError as exc:
        raise settings_error(shown, tree, exc, Site) from exc


def read_mapping(path: Path, shown: str, *, empty: str, what: str, root: Path | None = None) -> dict[str, Any]:
    """A YAML file whose top level is a mapping, with line numbers kept; SiteError otherwise."""
    text = checked_text(read_input(path, shown, root=root), shown)
    try:
        tree = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise SiteError(shown, exc.problem, line=exc.line) from exc
    if tree is None:
        raise SiteError(shown, empty)
    if not isinstance(tree, dict):
        raise SiteError(shown, f"top level must be a mapping of {what}, found {_kind(tree)}", line=1)
    return tree


def settings_error(shown: str, tree: Any, exc: ValidationError, model: Any) -> SiteError:  # noqa: ANN401
    """The most useful error, with its field path (camelCase, as written) and its line."""
    errors = sorted(exc.errors(include_url=False), key=_rank)
    first = errors[0]
    loc = tuple(first["loc"])
    ctx = first.get("ctx") or {}
    if first["type"] == "duplicate":
        loc = (*loc, ctx["index"], ctx["field"])
    path = _real_path(tree, loc, missing=first["type"] == "missing")
    if first["type"] == "site_rule":
        # the field to change, written out even where the user left the whole section to its defaults
        path = (*path, *(int(part) if part.isdigit() else part for part in str(ctx["at"]).split(".")))
    field = _format_path(path)
    problem = _problem(first)
    if first["type"] == "extra_forbidden":
        problem += _suggestion(path[-1] if path else "", first, model)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return SiteError(shown, problem + more, field=field or "(top level)", line=line_of(tree, path))


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


def _kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (dict, "a mapping"), (list, "a list"), (str, "a string"), (int, "an integer"), (float, "a number"))
    if value is None:
        return "nothing"
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


# A value found where it does not belong is shown only when it cannot be a credential: a short word, a number.
# Anything else is described by its kind and size: a pasted key must not reach a terminal or a CI log.
SHOWN_WORD = re.compile(r"[A-Za-z][A-Za-z -]{0,15}")


def _found(value: Any) -> str:
    if isinstance(value, str):
        return f"a string: {value!r}" if SHOWN_WORD.fullmatch(value) else f"a string of {len(value)} characters"
    if isinstance(value, (bool, int, float)):
        return f"{_kind(value)}: {value!r}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key{'s' if len(value) != 1 else ''}"
    return _kind(value)
