"""`generator doctor --cluster`: what the tree needs from a live cluster before its first sync. Read-only.

One line per check, ``ok``, ``missing`` or ``mismatch``, with what to do. The checks: the CRD of every
kind the sites' rendered files use; the sealed-secrets controller running, with a key pair whose
certificate is the site's ``sealing-cert.pem`` (fingerprints compared: a mismatch means every
SealedSecret fails to unseal); the namespaces the NetworkPolicy admits; the Gateway or IngressClass the
route names; the PriorityClass, if one is named; each engine's credential for the repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from generator.errors import ClusterError
from generator.layout import Repo, site_output_dirs
from generator.loader import load_platform, load_site_for_engines
from generator.model import Site
from generator.platform import PlatformSettings
from generator.render.platform import CONTROLLER, KEY_LABEL
from generator.secrets.cert import load_cert
from generator.secrets.credential import ARGO_SECRET_TYPE
from generator.tools import kubectl
from generator.tools.kubectl import Cluster

OK, MISSING, MISMATCH, WARN = "ok", "missing", "mismatch", "warn"  # warn: nothing to fix, something to know
# thinkube-control (backend/app/services/optional_components.py, 77f207fd) counts its optional component `litellm`
# installed when ConfigMap thinkube-service-config exists in the catalog's namespace for it (thinkube-metadata's
# optional_components.json: litellm), and then offers Uninstall: optional/litellm/19_rollback.yaml.
CATALOG_NAMESPACE, DISCOVERY_CONFIGMAP = "litellm", "thinkube-service-config"
UNINSTALL = ("its Uninstall button runs Thinkube's optional/litellm/19_rollback.yaml: DROP DATABASE litellm, the "
             "namespace litellm deleted, the Keycloak client litellm deleted; never press it for a GitOps-managed "
             "site (docs/adopt.md)")


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    detail: str = ""  # for ok: what was found; otherwise what to do


class _Reader:
    """Reads through the pinned kubectl; a cluster that cannot be reached at all is a ClusterError (exit 3)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._raw: dict[str, dict | None] = {}

    def get(self, *args: str) -> dict | None:
        """The object (or list), or None when it does not exist or may not be read."""
        result = kubectl.get(self.cluster, *args)
        if result.returncode == 0:
            return json.loads(result.stdout or b"{}")
        text = result.err_text
        if "NotFound" in text or "not found" in text or "Forbidden" in text or "the server doesn't have a resource" in text:
            return None
        raise ClusterError(f"kubectl get {' '.join(args)}: {text.strip()[-400:]}")

    def raw(self, path: str) -> dict | None:
        if path not in self._raw:
            from generator import proc

            result = proc.run(self.cluster.argv("get", "--raw", path), check=False, timeout=self.cluster.timeout * 2)
            if result.returncode != 0 and not any(s in result.err_text for s in ("NotFound", "not found", "Forbidden")):
                raise ClusterError(f"kubectl get --raw {path}: {result.err_text.strip()[-400:]}")
            self._raw[path] = json.loads(result.stdout) if result.returncode == 0 else None
        return self._raw[path]


def run_doctor(repo: Repo, sites: list[str], cluster: Cluster) -> list[Check]:
    settings = load_platform(repo)
    reader = _Reader(cluster)
    models = {name: load_site_for_engines(repo, name, settings) for name in sites}
    checks: list[Check] = []
    checks += _crds(repo, sites, reader)
    if any(site.secrets.mode == "sealed" for site in models.values()):
        checks += _controller(repo, models, settings, reader)
    for name, site in models.items():
        checks += _site_needs(name, site, reader)
    checks += _engines(models, reader)
    checks += _thinkube_control(models, reader)
    return checks


def _thinkube_control(models: dict[str, Site], reader: _Reader) -> list[Check]:
    """A warning when thinkube-control would show LiteLLM as its own installed component (it is then ours)."""
    ours = sorted(name for name, site in models.items()
                  if site.discovery.enabled and site.namespace == CATALOG_NAMESPACE)
    live = reader.get("configmap", DISCOVERY_CONFIGMAP, "-n", CATALOG_NAMESPACE)
    if not ours and live is None:
        return []
    who = f"site {', '.join(ours)}'s" if ours else "a"
    return [Check(WARN, f"thinkube-control: ConfigMap {CATALOG_NAMESPACE}/{DISCOVERY_CONFIGMAP}",
                  f"{who} discovery ConfigMap makes thinkube-control show LiteLLM as its installed optional component; "
                  + UNINSTALL)]


def _kinds(repo: Repo, sites: list[str]) -> set[tuple[str, str]]:
    """(apiVersion, kind) of every object in the sites' rendered files (patches name kinds too: harmless)."""
    found: set[tuple[str, str]] = set()
    for name in sites:
        for rel in site_output_dirs(name):
            for path in sorted((repo.root / rel).rglob("*.yaml")):
                if path.name == "kustomization.yaml":
                    continue
                for doc in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader):
                    if isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str):
                        found.add((doc["apiVersion"], doc["kind"]))
    return found


def _crds(repo: Repo, sites: list[str], reader: _Reader) -> list[Check]:
    checks = []
    for api_version, kind in sorted(_kinds(repo, sites)):
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        served = reader.raw(path)
        kinds = {r.get("kind") for r in (served or {}).get("resources", [])}
        what = f"kind {kind} ({api_version})"
        if kind in kinds:
            checks.append(Check(OK, what, "served"))
        else:
            fix = ("apply deploy/platform/sealed-secrets (or let the engine sync deploy/platform/) for its CRD"
                   if kind == "SealedSecret" else "install the CRD's controller (or choose the route/feature the cluster has)")
            checks.append(Check(MISSING, what, f"the API server does not serve it; {fix}"))
    return checks


def _fingerprint(pem: bytes) -> str | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _controller(repo: Repo, models: dict[str, Site], settings: PlatformSettings, reader: _Reader) -> list[Check]:
    ns = settings.sealed_secrets.namespace
    checks = []
    deployment = reader.get("deployment", CONTROLLER, "-n", ns)
    available = (deployment or {}).get("status", {}).get("availableReplicas", 0) or 0
    where = f"sealed-secrets controller ({ns}/{CONTROLLER})"
    if available >= 1:
        checks.append(Check(OK, where, f"{available} available"))
    else:
        how = ("apply deploy/platform/sealed-secrets (kubectl apply --server-side -k deploy/platform/sealed-secrets)"
               if settings.sealed_secrets.install else
               "platform.yaml says another team runs it (sealedSecrets.install: false): it is not running here")
        checks.append(Check(MISSING, where, "no available replica; " + how if deployment else "not installed; " + how))
    keys = reader.get("secrets", "-n", ns, "-l", KEY_LABEL)
    prints: dict[str, str] = {}
    for item in (keys or {}).get("items", []):
        pem = base64.b64decode(item.get("data", {}).get("tls.crt", "") or b"")
        found = _fingerprint(pem)
        if found:
            prints[found] = item["metadata"]["name"]
    if not prints:  # the keys may not be readable: the controller's own endpoint, as kubeseal --fetch-cert reads it
        from generator import proc

        result = proc.run(reader.cluster.argv("get", "--raw", f"/api/v1/namespaces/{ns}/services/http:{CONTROLLER}:/proxy/v1/cert.pem"),
                          check=False, timeout=reader.cluster.timeout * 2)
        found = _fingerprint(result.stdout) if result.returncode == 0 else None
        if found:
            prints[found] = "its active key (service proxy)"
    for name, site in sorted(models.items()):
        if site.secrets.mode != "sealed":
            continue
        shown = f"sites/{name}/sealing-cert.pem"
        path = repo.site_dir(name) / "sealing-cert.pem"
        what = f"site {name}: {shown} against the controller's keys"
        if not path.is_file():
            checks.append(Check(MISSING, what, f"no certificate; generator site new --fetch-cert, or kubeseal --fetch-cert > {shown}"))
            continue
        cert = load_cert(path, shown, repo.root)
        if cert.fingerprint in prints:
            checks.append(Check(OK, what, f"sha256 {cert.fingerprint[:16]} is {prints[cert.fingerprint]}"))
        elif prints:
            checks.append(Check(MISMATCH, what, f"sha256 {cert.fingerprint[:16]} is none of the controller's "
                                f"{len(prints)} key(s): every SealedSecret of the site fails to unseal; fetch the "
                                f"controller's certificate into {shown} (kubeseal --fetch-cert) and render again"))
        else:
            checks.append(Check(MISSING, what, "the controller has no key pair yet (or its keys cannot be read)"))
    return checks


def _site_needs(name: str, site: Site, reader: _Reader) -> list[Check]:
    checks = []
    if site.network_policy.enabled:
        wanted = {site.traffic_namespace, *site.network_policy.allow_from_namespaces}
        monitor = site.metrics.service_monitor
        if site.metrics.enabled and monitor.enabled:
            wanted.add(monitor.prometheus_namespace)
        for ns in sorted(wanted):
            found = reader.get("namespace", ns)
            checks.append(Check(OK, f"site {name}: namespace {ns} (the NetworkPolicy admits it)", "exists") if found else
                          Check(MISSING, f"site {name}: namespace {ns} (the NetworkPolicy admits it)",
                                "no such namespace: nothing there can reach the proxy; fix networkPolicy or routing"))
    if site.routing.type == "httproute":
        gateway = site.routing.httproute.gateway
        found = reader.get("gateways.gateway.networking.k8s.io", gateway.name, "-n", gateway.namespace)
        what = f"site {name}: Gateway {gateway.namespace}/{gateway.name}"
        checks.append(Check(OK, what, "exists") if found else
                      Check(MISSING, what, "the HTTPRoute attaches to nothing; fix routing.httproute.gateway"))
    else:
        klass = site.routing.ingress.class_name
        found = reader.get("ingressclass", klass)
        checks.append(Check(OK, f"site {name}: IngressClass {klass}", "exists") if found else
                      Check(MISSING, f"site {name}: IngressClass {klass}", "no controller serves the Ingress; fix routing.ingress.className"))
    if site.priority_class_name:
        found = reader.get("priorityclass", site.priority_class_name)
        what = f"site {name}: PriorityClass {site.priority_class_name}"
        checks.append(Check(OK, what, "exists") if found else
                      Check(MISSING, what, "the API server refuses every pod that names it; create it or unset priorityClassName"))
    return checks


def _engines(models: dict[str, Site], reader: _Reader) -> list[Check]:
    checks = []
    flux = {(s.gitops.flux.namespace, s.gitops.flux.secret_ref, s.gitops.flux.url) for s in models.values() if s.gitops.flux.enabled}
    for ns, secret, url in sorted(flux, key=str):
        what = f"Flux access to {url}"
        if not secret:
            checks.append(Check(OK, what, "no credential needed (a public https:// repository)") if url.startswith("https://")
                          else Check(MISSING, what, "no secretRef: generator secrets git-credential, then render"))
            continue
        found = reader.get("secret", secret, "-n", ns)
        checks.append(Check(OK, what, f"Secret {ns}/{secret} exists") if found else
                      Check(MISSING, what, f"no Secret {ns}/{secret}; apply deploy/platform/flux (its sealed credential) "
                            "or the Secret flux bootstrap makes"))
    argo = {(s.gitops.argocd.namespace, s.gitops.argocd.repo_url) for s in models.values() if s.gitops.argocd.enabled}
    for ns, url in sorted(argo):
        what = f"Argo CD access to {url}"
        listed = reader.get("secrets", "-n", ns, "-l", f"{ARGO_SECRET_TYPE} in (repository,repo-creds)")
        if listed is None:
            checks.append(Check(MISSING, what, f"cannot list the repository Secrets in {ns} (no access, or no Argo CD)"))
            continue
        urls = [base64.b64decode(i.get("data", {}).get("url", "") or b"").decode("utf-8", "replace")
                for i in listed.get("items", [])]
        match = [u for u in urls if u and (url == u or url.startswith(u.rstrip("/") + "/"))]
        checks.append(Check(OK, what, f"a repository Secret for {match[0]}") if match else
                      Check(MISSING, what, f"no repository Secret in {ns} for it; apply deploy/platform/argocd "
                            "(its sealed credential) or add the repository in Argo CD"))
    return checks


def doctor_cluster(repo: Repo, sites: list[str], *, context: str | None, kubeconfig: Path | None) -> tuple[list[Check], bool]:
    checks = run_doctor(repo, sites, Cluster(kubeconfig=kubeconfig, context=context))
    return checks, all(c.status in (OK, WARN) for c in checks)
