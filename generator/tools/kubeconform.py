"""kubeconform: strict, offline schema validation against the locally built schemas."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from generator import proc
from generator.errors import ToolMissing
from generator.tools import SETUP_HINT, pinned_versions, require, schemas_dir


@dataclass(frozen=True)
class Finding:
    source: str
    kind: str
    name: str
    status: str
    message: str


def schema_locations(directory: Path) -> list[str]:
    return [
        f"{directory}/k8s/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        f"{directory}/crds/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
    ]


def check(files: list[Path]) -> tuple[int, list[Finding], dict[str, int]]:
    """Validate manifests; returns (resources checked, problems, resources per file). Never skips a missing
    schema."""
    directory = schemas_dir()
    if not (directory / "k8s").is_dir() or not (directory / "crds").is_dir():
        raise ToolMissing("kubeconform schemas", f"{directory} has no k8s/ and crds/ schemas; {SETUP_HINT}")
    argv: list[str | Path] = [
        require("kubeconform"), "-strict", "-summary", "-verbose", "-output", "json",
        "-kubernetes-version", pinned_versions().get("KUBERNETES_VERSION", "1.37.0"), "-n", "4",
    ]
    for location in schema_locations(directory):
        argv += ["-schema-location", location]
    result = proc.run([*argv, *files], check=False, timeout=300)
    try:
        report = json.loads(result.stdout or b"{}")
    except json.JSONDecodeError:
        report = {}
    findings = [
        Finding(r.get("filename", "?"), r.get("kind", "?"), r.get("name", "?"), r.get("status", "?"), r.get("msg", ""))
        for r in report.get("resources", [])
        if r.get("status") in {"statusInvalid", "statusError"}
    ]
    per_file: dict[str, int] = {}
    for r in report.get("resources", []):
        per_file[r.get("filename", "?")] = per_file.get(r.get("filename", "?"), 0) + 1
    summary = report.get("summary", {})
    checked = sum(int(summary.get(k, 0)) for k in ("valid", "invalid", "errors", "skipped"))
    if result.returncode != 0 and not findings:
        findings.append(Finding("kubeconform", "-", "-", "statusError", proc.tail(result.err_text or result.text)))
    return checked, findings, per_file
