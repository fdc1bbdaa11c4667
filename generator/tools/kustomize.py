"""kustomize, as shipped inside the pinned kubectl (``kubectl kustomize``)."""

from __future__ import annotations

from pathlib import Path

from generator import proc
from generator.errors import ValidationFailed
from generator.tools import require


def build(directory: Path) -> bytes:
    result = proc.run([require("kubectl"), "kustomize", directory], check=False, timeout=120)
    if result.returncode != 0:
        raise ValidationFailed(f"kustomize build {directory}: {proc.tail(result.err_text or result.text)}")
    return result.stdout
