"""The GitOps loop through Argo CD: what the operator does (register the fleet with the README's command, ask
for a refresh as argocd-server's git webhook would) and what the cluster says about one site's Application.

One part of the platform is not in the harness: the Gateway API and ingress controllers (Cilium on Thinkube).
Argo CD's health checks wait for them (an HTTPRoute is Progressing until a Gateway controller accepts it, an
Ingress until its controller publishes an address), so ``publish_routes`` writes the status subresource as
those controllers do: the route accepted by its parent Gateway, the Ingress given an address.
"""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass

from tests.cluster.argocd import NAMESPACE
from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import CONVERGE_SECONDS, GitOpsRepo
from tests.cluster.kube import wait_for

GATEWAY_CONTROLLER = "io.cilium/gateway-controller"
REFRESH = "argocd.argoproj.io/refresh"


def argocd_site_yaml(name: str, git_url: str, extra: str = "") -> str:
    """A site for Argo CD alone (a stock Thinkube runs no Flux), its repository the local git server."""
    return (f"domain: {name}.example.com\nnamespace: litellm-{name}\n"
            f"gitops:\n  flux: {{enabled: false}}\n  argocd: {{repoUrl: \"{git_url}\"}}\n{extra}")


def register_fleet(repo: GitOpsRepo) -> None:
    """The README's one command for Argo CD, at the repository's root: the parent Application litellm-fleet."""
    repo.cluster.kubectl("apply", "-k", str(repo.root))


def refresh(cluster: ControlPlane, app: str) -> None:
    """What argocd-server does on a git webhook: ask the controller to compare the Application with git now."""
    cluster.kubectl("-n", NAMESPACE, "annotate", "--overwrite", f"application/{app}",
                    f"{REFRESH}=normal")


def application(cluster: ControlPlane, name: str) -> dict | None:
    return cluster.api.get("Application", name, NAMESPACE)


def app_status(app: dict | None) -> tuple[str | None, str | None, str | None]:
    """(sync status, health status, operation phase) as `argocd app get` shows them."""
    status = (app or {}).get("status") or {}
    return ((status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status"),
            (status.get("operationState") or {}).get("phase"))


def synced_at(app: dict | None, revision: str) -> bool:
    status = (app or {}).get("status") or {}
    operation = status.get("operationState") or {}
    return (app_status(app) == ("Synced", "Healthy", "Succeeded") and (status.get("sync") or {}).get("revision") == revision
            and (operation.get("syncResult") or {}).get("revision") == revision)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def publish_routes(cluster: ControlPlane, namespace: str) -> int:
    """The Gateway and ingress controllers' part (see the module's docstring); returns how many it wrote."""
    api, written = cluster.api, 0
    for route in api.list("HTTPRoute", namespace):
        generation = route["metadata"].get("generation")
        parents = ((route.get("status") or {}).get("parents")) or []
        if parents and all(c.get("observedGeneration") == generation for p in parents for c in p["conditions"]):
            continue
        conditions = [{"type": kind, "status": "True", "reason": kind, "message": "stand-in for the Gateway controller",
                       "observedGeneration": generation, "lastTransitionTime": _now()}
                      for kind in ("Accepted", "ResolvedRefs")]
        status = {"parents": [{"parentRef": ref, "controllerName": GATEWAY_CONTROLLER, "conditions": conditions}
                              for ref in route["spec"].get("parentRefs") or []]}
        _patch_status(cluster, "httproute", route, status)
        written += 1
    for ingress in api.list("Ingress", namespace):
        if (((ingress.get("status") or {}).get("loadBalancer")) or {}).get("ingress"):
            continue
        _patch_status(cluster, "ingress", ingress, {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})
        written += 1
    return written


def _patch_status(cluster: ControlPlane, kind: str, obj: dict, status: dict) -> None:
    meta = obj["metadata"]
    cluster.kubectl("-n", meta["namespace"], "patch", kind, meta["name"], "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": status}))


@dataclass
class Synced:
    """One site once its Application synced ``revision`` and is Healthy."""

    app: dict
    job: dict
    deployment: dict
    secret: dict[str, str]
    namespace: dict
    pods: list[dict]


def explain_app(cluster: ControlPlane, name: str) -> str:
    app = application(cluster, name) or {}
    status = app.get("status") or {}
    unhealthy = [f"{r.get('kind')}/{r.get('name')}: {r.get('status')} {(r.get('health') or {}).get('status')} "
                 f"{(r.get('health') or {}).get('message', '')}" for r in status.get("resources") or []
                 if (r.get("health") or {}).get("status") not in (None, "Healthy") or r.get("status") != "Synced"]
    operation = status.get("operationState") or {}
    return (f"\n{name}: {app_status(app)} revision {(status.get('sync') or {}).get('revision')}\n"
            f"operation: {operation.get('phase')} {operation.get('message')}\nconditions: {status.get('conditions')}\n"
            f"not synced or not healthy: {json.dumps(unhealthy, indent=1)}\n"
            f"application-controller log:\n{cluster.logs('argocd-application-controller', 3000)}")


def wait_synced(cluster: ControlPlane, name: str, namespace: str, revision: str) -> Synced:
    """Polls until the site's Application synced ``revision`` and is Healthy (the routes published meanwhile)."""
    api, app_name = cluster.api, f"litellm-{name}"

    def check() -> dict | None:
        publish_routes(cluster, namespace)
        app = application(cluster, app_name)
        return app if synced_at(app, revision) else None

    app = wait_for(check, CONVERGE_SECONDS, f"Application {app_name} Synced and Healthy at {revision[:12]}",
                   lambda: explain_app(cluster, app_name))
    secret_obj = wait_for(lambda: api.get("Secret", "litellm-secrets", namespace), 60, "the unsealed Secret",
                          lambda: cluster.logs("sealed-secrets-controller", 2000))
    secret = {k: base64.b64decode(v).decode() for k, v in (secret_obj.get("data") or {}).items()}
    return Synced(app, api.get("Job", "litellm-migrate", namespace), api.get("Deployment", "litellm", namespace),
                  secret, api.get("Namespace", namespace), api.list("Pod", namespace, "app=litellm"))
