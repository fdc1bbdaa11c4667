"""Talking to the test API server: a small JSON client for reads and polls, the pinned kubectl for writes.

Reads go straight to the REST API (a poll loop of kubectl processes would load the 2-core machine);
writes use the real kubectl, as an operator or CI would.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from generator.tools import require
from tests.servers import scaled

# group/version and plural of the kinds the tests read
RESOURCES = {
    "Namespace": ("v1", "namespaces", False),
    "Secret": ("v1", "secrets", True),
    "ConfigMap": ("v1", "configmaps", True),
    "Pod": ("v1", "pods", True),
    "Node": ("v1", "nodes", False),
    "Service": ("v1", "services", True),
    "Event": ("v1", "events", True),
    "Deployment": ("apps/v1", "deployments", True),
    "ReplicaSet": ("apps/v1", "replicasets", True),
    "Job": ("batch/v1", "jobs", True),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets", True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers", True),
    "PriorityClass": ("scheduling.k8s.io/v1", "priorityclasses", False),
    "Ingress": ("networking.k8s.io/v1", "ingresses", True),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "httproutes", True),
    "SealedSecret": ("bitnami.com/v1alpha1", "sealedsecrets", True),
    "GitRepository": ("source.toolkit.fluxcd.io/v1", "gitrepositories", True),
    "Kustomization": ("kustomize.toolkit.fluxcd.io/v1", "kustomizations", True),
    "Application": ("argoproj.io/v1alpha1", "applications", True),
    "AppProject": ("argoproj.io/v1alpha1", "appprojects", True),
}


class KubeError(RuntimeError):
    pass


@dataclass(frozen=True)
class Kubectl:
    """kubectl with a kubeconfig; ``run`` returns the completed process, ``__call__`` insists on success."""

    kubeconfig: Path

    def run(self, *args: str, stdin: str | bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return subprocess.run([str(require("kubectl")), "--kubeconfig", str(self.kubeconfig), *args], input=data,
                              capture_output=True, timeout=scaled(timeout))

    def __call__(self, *args: str, stdin: str | bytes | None = None, timeout: float = 120) -> str:
        done = self.run(*args, stdin=stdin, timeout=timeout)
        if done.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args)}: exit {done.returncode}: {done.stderr.decode()[-3000:]}")
        return done.stdout.decode()


class Api:
    """GETs against the API server with the admin client certificate."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path):
        self.server = server
        self._ctx = ssl.create_default_context(cafile=str(ca))
        self._ctx.load_cert_chain(str(cert), str(key))

    def raw(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.server + path, context=self._ctx, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def path(self, kind: str, name: str | None = None, namespace: str | None = None) -> str:
        version, plural, namespaced = RESOURCES[kind]
        prefix = "/api/v1" if version == "v1" else f"/apis/{version}"
        ns = f"/namespaces/{namespace}" if namespaced and namespace else ""
        return f"{prefix}{ns}/{plural}" + (f"/{name}" if name else "")

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        status, body = self.raw(self.path(kind, name, namespace))
        if status == 404:
            return None
        if status != 200:
            raise KubeError(f"GET {kind} {namespace}/{name}: {status} {body[:500]!r}")
        return json.loads(body)

    def list(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        query = f"?labelSelector={urllib.request.quote(selector)}" if selector else ""
        status, body = self.raw(self.path(kind, None, namespace) + query)
        if status != 200:
            raise KubeError(f"LIST {kind} {namespace}: {status} {body[:500]!r}")
        return json.loads(body)["items"]


def condition(obj: dict | None, kind: str = "Ready") -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def wait_for(check: Callable[[], Any], seconds: float, what: str, explain: Callable[[], str] = lambda: "") -> Any:
    """Poll ``check`` until it returns something truthy; the deadline scales with the machine's load."""
    deadline = time.monotonic() + scaled(seconds)
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {scaled(seconds):.0f} s (last: {last!r}) {explain()}")
