"""kubeseal, offline: seal against a public certificate. Plaintext goes on stdin only."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from generator import proc
from generator.errors import GeneratorError
from generator.tools import require


class SealError(GeneratorError):
    """kubeseal refused to seal."""


def seal(values: dict[str, str], *, name: str, namespace: str, cert: Path) -> dict[str, str]:
    """Strict-scope ciphertext for each value: bound to ``namespace/name``."""
    if not values:
        return {}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())},
    }
    result = proc.run(
        [require("kubeseal"), "--cert", cert, "--scope", "strict", "--format", "json"],
        stdin=json.dumps(secret).encode(), check=False, timeout=120,
    )
    if result.returncode != 0:
        raise SealError(f"kubeseal could not seal {namespace}/{name} with {cert.name}: {proc.tail(result.err_text, 2)}")
    sealed = yaml.safe_load(result.stdout)
    return dict(sealed["spec"]["encryptedData"])
