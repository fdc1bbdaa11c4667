"""`generator doctor`: which tools are found, their versions, and what is missing."""

from __future__ import annotations

from dataclasses import dataclass

from generator.tools import TOOLS, find, pinned_versions, schemas_dir, version_of


@dataclass(frozen=True)
class ToolStatus:
    name: str
    path: str | None
    version: str | None
    pinned: str
    ok: bool
    note: str


def check_tools() -> list[ToolStatus]:
    pins = pinned_versions()
    rows: list[ToolStatus] = []
    for name, spec in TOOLS.items():
        pinned = pins.get(spec.pin_key, "?")
        path = find(name)
        if path is None:
            rows.append(ToolStatus(name, None, None, pinned, False, f"missing: {spec.install}"))
            continue
        version = version_of(name, path)
        note = ""
        if version.lstrip("v") != pinned.lstrip("v"):
            note = f"version differs from the pinned {pinned}"
        rows.append(ToolStatus(name, str(path), version, pinned, True, note))
    schemas = schemas_dir()
    count = len(list(schemas.glob("k8s/*.json"))) + len(list(schemas.glob("crds/*/*.json"))) if schemas.is_dir() else 0
    rows.append(ToolStatus("schemas", str(schemas), f"{count} files" if count else None,
                           pins.get("KUBERNETES_VERSION", "?"), count > 0, "" if count else "missing: run 'make setup'"))
    return rows
