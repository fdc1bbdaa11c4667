"""The shape of the code: no import circle, no import from a lower layer to a higher one, no file over 500 lines.

Every import counts, at the top of a module, inside a function (the lazy ones that keep start-up fast) or
under ``TYPE_CHECKING``: each is a dependency someone has to follow. A new module takes its place in LAYERS.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase
from pathlib import Path

from tests.helpers import PROJECT

PACKAGES = ("generator", "bootstrap")
MAX_LINES = 500

# Lowest first. A module may import modules of its own layer or of a layer before it, never one after it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("ground: errors, names, the dumper's style", (
        "generator", "generator.errors", "generator.redact", "generator.progress", "generator.yamlstyle", "generator.secrets",
        "generator.secrets.shapes", "bootstrap", "bootstrap.report")),
    ("primitives: processes, paths, the only writer", (
        "generator.fastyaml", "generator.proc", "generator.layout", "generator.writer", "bootstrap.credentials")),
    ("YAML and the external tools", ("generator.yamlio", "generator.output", "generator.tools", "generator.tools.*")),
    ("the input gate: reading files within limits", ("generator.inputs",)),
    ("the model's ground", ("generator.model.base",)),
    ("the model's parts", (
        "generator.model.scheduling", "generator.model.workload", "generator.model.routing",
        "generator.model.identity", "generator.model.data", "generator.model.proxy", "generator.model.serving",
        "generator.model.gitops", "generator.model.destinations")),
    ("the site", ("generator.model.site",)),
    ("the models of the inputs", ("generator.model", "generator.platform", "generator.site_schema",
                                  "generator.conflicts")),
    ("the pure renderers", ("generator.render", "generator.render.*")),
    ("the secrets files", ("generator.secrets.keys", "generator.secrets.sops_file", "generator.secrets.cert",
                           "generator.secrets.age_key")),
    ("the secrets store", ("generator.secrets.store", "bootstrap.vault")),
    ("the loader: every input read and checked", ("generator.loader",)),
    ("sealing", ("generator.secrets.sealing", "generator.secrets.credential")),
    ("the render's steps: survey, platform, validate", (
        "generator.render_cache", "generator.validate_cache", "generator.validate_conflicts", "generator.validate",
        "generator.platform_tree")),
    ("the render", ("generator.rendering",)),
    ("the commands", (
        "generator.status", "generator.scaffold", "generator.cluster_diff", "generator.cluster_doctor",
        "generator.doctor", "generator.generator_ref", "generator.ci_workflows", "generator.repo_init", "generator.secrets.commands", "generator.secrets.audit",
        "generator.adopt", "generator.adopt.*", "bootstrap.*")),
    ("the command line", ("generator.cli", "generator.cli.*")),
    ("the entry point", ("generator.__main__",)),
]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT / package).rglob("*.py")):
            parts = list(path.relative_to(PROJECT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The project modules ``name`` imports, each with the line of its first import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from generator import fastyaml` imports a module; `from generator.model import Site`, a name
            candidates = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.setdefault(candidate, node.lineno)
    return targets


def _graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(name: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(name == pattern or fnmatchcase(name, pattern) for pattern in patterns):
            return index
    return None


def test_every_module_has_a_layer() -> None:
    missing = [name for name in _modules() if _layer(name) is None]
    assert not missing, "place these modules in LAYERS: " + ", ".join(missing)


def test_no_import_runs_upward() -> None:
    upward = []
    for name, targets in sorted(_graph().items()):
        for target, line in sorted(targets.items()):
            mine, theirs = _layer(name), _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{name}:{line} imports {target} ({LAYERS[mine][0]} -> {LAYERS[theirs][0]})")
    assert not upward, "\n".join(upward)


def test_no_import_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not circles, "\n".join(" -> ".join(circle) for circle in circles)


def test_no_file_over_the_limit() -> None:
    long = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    over = [f"{name}: {lines} lines" for name, lines in sorted(long.items()) if lines > MAX_LINES]
    assert not over, "\n".join(over)
