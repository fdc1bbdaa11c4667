"""kubectl against a live cluster: server-side dry-run diffs and reads. Never writes to the cluster."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from generator import proc
from generator.tools import require

# kubectl diff's own exit codes: 0 no differences, 1 differences, more than 1 an error
SAME, DIFFERENT = 0, 1


@dataclass(frozen=True)
class Cluster:
    """Which cluster: a kubeconfig file and context (kubectl's defaults when None)."""

    kubeconfig: Path | None = None
    context: str | None = None
    timeout: float = 60.0

    def argv(self, *args: str) -> list[str]:
        argv = [str(require("kubectl"))]
        if self.kubeconfig:
            argv += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            argv += ["--context", self.context]
        return [*argv, f"--request-timeout={int(self.timeout)}s", *args]


def diff(cluster: Cluster, manifests: bytes, *, field_manager: str) -> proc.Result:
    """``kubectl diff --server-side``: the API server dry-runs the apply (admission, defaulting, the field
    manager's ownership) and kubectl prints the unified diff of live against merged."""
    env = proc.child_env({"KUBECTL_EXTERNAL_DIFF": "diff -u -N"})
    return proc.run(cluster.argv("diff", "--server-side", "--force-conflicts", f"--field-manager={field_manager}",
                                 "-f", "-"),
                    stdin=manifests, env=env, check=False, timeout=cluster.timeout * 3)


def get(cluster: Cluster, *args: str) -> proc.Result:
    return proc.run(cluster.argv("get", *args, "-o", "json"), check=False, timeout=cluster.timeout * 2)


def items(result: proc.Result) -> list[dict]:
    return json.loads(result.stdout or b"{}").get("items", [])
