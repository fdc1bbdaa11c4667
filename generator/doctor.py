"""`generator doctor`: which tools are found, their versions, and what is missing."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from generator.layout import Repo
from generator.output import Format, emit, mark
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


def run_doctor(repo: Repo | None, output: Format, *, live: bool = False, sites: tuple[str, ...] = (),
               context: str | None = None, kubeconfig: Path | None = None, out: TextIO = sys.stdout) -> int:
    """The tools (or with ``live`` what the cluster lacks), as a table, JSON or YAML; 1 when anything is missing."""
    if live:
        from generator.cluster_doctor import doctor_cluster

        assert repo is not None
        for site in sites:
            repo.check_site_name(site)
        checks, healthy = doctor_cluster(repo, list(sites) or repo.site_names(), context=context, kubeconfig=kubeconfig)
        emit([asdict(c) for c in checks], output, lambda: _checks_table(checks, out), out)
        return 0 if healthy else 1
    rows = check_tools()
    emit([asdict(row) for row in rows], output, lambda: _tools_table(rows, out), out)
    return 0 if all(row.ok for row in rows) else 1


def _tools_table(rows: list[ToolStatus], out: TextIO) -> str:
    return "\n".join(mark(row.ok, ("ok" if row.ok else "MISSING").ljust(8), out)
                     + f" {row.name:<12} {row.version or '-':<14} pinned {row.pinned:<10} {row.path or ''}"
                     + (f"  ({row.note})" if row.note else "") for row in rows)


def _checks_table(checks: list, out: TextIO) -> str:
    failed = sum(c.status not in ("ok", "warn") for c in checks)  # a warning is something to know, not to fix
    warned = sum(c.status == "warn" for c in checks)
    lines = [mark(c.status == "ok", f"{c.status:<9}", out) + f" {c.what}" + (f": {c.detail}" if c.detail else "")
             for c in checks]
    note = f", {warned} warning(s)" if warned else ""
    ok = len(checks) - failed - warned
    lines.append(f"{ok} ok, {failed} to fix{note}" if failed else f"all {ok} checks ok{note}")
    return "\n".join(lines)
