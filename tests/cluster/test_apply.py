"""Every rendered tree applies to a real API server: strict field validation, no warnings, server-side dry-run
once the namespaces exist, admission included. The committed tree, and sites of every shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.tools import kustomize
from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import site_yaml
from tests.cluster.kube import Kubectl
from tests.helpers import PROJECT, build_file_tree, generator
from tests.keys import age_key, sealing_pair, sops_rules

pytestmark = pytest.mark.cluster

SHAPES = {
    "shape-route": ("pdb: {enabled: true}\nnetworkPolicy: {enabled: true, allowFromNamespaces: [monitoring]}\n"
                    "extensions: component\n"),
    "shape-ingress": ("routing: {type: ingress, ingress: {tlsSecretName: litellm-tls}}\ndiscovery: {enabled: false}\n"
                      "replicas: 2\npdb: {enabled: true, minAvailable: 1}\ncache: {enabled: false}\nredis: {enabled: true}\n"),
    "shape-hpa": "hpa: {enabled: true, minReplicas: 2, maxReplicas: 5}\nnetworkPolicy: {enabled: true}\nredis: {enabled: true}\n",
    "shape-volume": ("persistence: {enabled: true, size: 1Gi}\npodSecurity: baseline\n"
                     "extraEnv: {LITELLM_LOG: INFO, LANGFUSE_SECRET_KEY: {secret: langfuse, key: secret-key}}\n"
                     "extraEnvFrom: [{configMapRef: team-env, prefix: TEAM_}, {secretRef: provider-keys}]\n"),
    # every pod knob, in the shapes the API server must accept
    "shape-placed": ("hpa: {enabled: true, minReplicas: 2}\nredis: {enabled: true}\npod:\n  nodeSelector: {kubernetes.io/os: linux}\n"
                     "  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule},"
                     " {key: dedicated, value: ai, effect: NoExecute, tolerationSeconds: 300}]\n"
                     "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms:"
                     " [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64]}]}]}},"
                     " podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 50, podAffinityTerm:"
                     " {topologyKey: topology.kubernetes.io/zone, labelSelector: {matchLabels: {app: litellm}}}}]}}\n"
                     "  topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone,"
                     " whenUnsatisfiable: DoNotSchedule, minDomains: 2, labelSelector: {matchExpressions:"
                     " [{key: app, operator: Exists}]}}]\n"
                     "  imagePullSecrets: [harbor-pull]\n  annotations: {prometheus.io/scrape: 'true'}\n"
                     "  labels: {team: ai-platform}\n"),
    # every key of issue 11's serving sections at once (JWT auth needs LITELLM_LICENSE in the site's sops file)
    "shape-serving": ("discovery: {platformScaling: false}\nreplicas: 3\n"
                      "redis: {enabled: true, host: valkey.valkey.svc.cluster.local, tls: true}\n"
                      "jwtAuth: {enabled: true, publicKeyTtl: 300}\ndrain: {seconds: 300, exitSeconds: 20}\n"
                      "callbacks: {langfuse: {events: [success]}}\n"
                      "metrics: {enabled: true, serviceMonitor: {enabled: true, interval: 1m}}\n"
                      "networkPolicy:\n  enabled: true\n  egress: {enabled: true, external: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]}\n"
                      "models: [{name: gpt, model: openai/gpt-4o, apiKeySecret: OPENAI_API_KEY}]\n"
                      # the provider key is not in the sops file: render refuses that unless the site says so (issue 28)
                      "secrets: {filledLater: [OPENAI_API_KEY]}\n"),
}
LICENSED = "shape-serving"


# the operator's own Component: an object the model lacks, and a patch over a generated one
EXTENSION = {
    "sites/shape-route/extensions/kustomization.yaml": (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [quota.yaml]\npatches:\n"
        "  - target: {kind: Deployment, name: litellm}\n    patch: |\n      - op: add\n"
        "        path: /spec/template/metadata/annotations\n        value: {example.com/owner: ai-platform}\n"),
    "sites/shape-route/extensions/quota.yaml": (
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: litellm-quota}\nspec: {hard: {pods: '10'}}\n"),
}


def _apply(kubectl: Kubectl, manifests: bytes, *extra: str) -> str:
    done = kubectl.run("apply", "--server-side", "--validate=strict", "--field-manager=cluster-test",
                       *extra, "-f", "-", stdin=manifests)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "Warning" not in stderr and "warning" not in stderr, stderr
    return done.stdout.decode()


def _namespaces(manifests: bytes) -> bytes:
    docs = [d for d in yaml.safe_load_all(manifests) if isinstance(d, dict)]
    wanted = sorted({d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")})
    return yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in wanted]).encode()


def _check_tree(cluster: ControlPlane, root: Path, site: str, *, real: bool) -> None:
    overlay = kustomize.build(root / "overlays" / site)
    flux = kustomize.build(root / "deploy" / "flux" / site)
    argocd = kustomize.build(root / "deploy" / "argocd" / site)
    for manifests in (overlay, flux, argocd):
        # the namespaces first (the overlay's own Namespace object carries its Pod Security labels)
        _apply(cluster.kubectl, _namespaces(manifests))
        _apply(cluster.kubectl, manifests, "--dry-run=server")
    if real:
        # the overlay for real (admission with every plugin, then the controllers and KWOK); the Flux entry
        # point stays a dry run here: a real one would send source-controller to an unreachable git server
        _apply(cluster.kubectl, overlay)
        _apply(cluster.kubectl, argocd)


def test_the_committed_tree_applies_strictly(cluster: ControlPlane) -> None:
    for site in sorted(p.name for p in (PROJECT / "sites").iterdir() if (p / "site.yaml").is_file()):
        _check_tree(cluster, PROJECT, site, real=True)
    # the fleet: the root registers the parent Application, which owns the fleet directory (the AppProject and
    # every site's Application, in waves); Flux's parent and its directory; against the controllers' own CRDs
    _apply(cluster.kubectl, kustomize.build(PROJECT))
    parent = cluster.api.get("Application", "litellm-fleet", "argocd")
    assert parent is not None and parent["spec"]["source"]["path"] == "deploy/fleet/argocd", parent
    _apply(cluster.kubectl, kustomize.build(PROJECT / "deploy/fleet/argocd"))
    app = cluster.api.get("Application", "litellm-prod", "argocd")
    assert app is not None and app["spec"]["source"]["path"] == "overlays/prod", app
    assert app["spec"]["project"] == "litellm" and cluster.api.get("AppProject", "litellm", "argocd") is not None
    for entry in ("deploy/fleet/flux-entry", "deploy/fleet/flux"):
        _apply(cluster.kubectl, kustomize.build(PROJECT / entry), "--dry-run=server")


def test_sites_of_every_shape_apply_strictly(cluster: ControlPlane, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    cert, _ = sealing_pair(tmp_path / "keys")
    build_file_tree(root, {f"sites/{name}/site.yaml": site_yaml(name, "https://git.example.com/gitops.git", extra)
                           for name, extra in SHAPES.items()})
    for name in SHAPES:
        (root / f"sites/{name}/sealing-cert.pem").write_bytes(cert.read_bytes())
    build_file_tree(root, EXTENSION)
    key = age_key()
    env = {"SOPS_AGE_KEY": key.identity}
    build_file_tree(root, {".sops.yaml": sops_rules([key.recipient])})
    for args, stdin in ((("secrets", "init", "--site", LICENSED), None),
                        (("secrets", "set", "--site", LICENSED, "LITELLM_LICENSE"), "a-licence\n")):
        assert generator(root, *args, stdin=stdin, env=env).code == 0
    result = generator(root, "render", "--all", env=env)
    assert result.code == 0, result.text
    for name in SHAPES:
        _check_tree(cluster, root, name, real=False)
    _apply(cluster.kubectl, kustomize.build(root), "--dry-run=server")
    _serving_values_survive(kustomize.build(root / "overlays" / LICENSED))


def _serving_values_survive(manifests: bytes) -> None:
    """The serving shape's values, in the objects the API server accepted."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(manifests) if d}
    pod = docs[("Deployment", "litellm")]["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "litellm")
    env = {e["name"]: e for e in container["env"]}
    assert pod["terminationGracePeriodSeconds"] == 320 and env["GRACEFUL_SHUTDOWN_TIMEOUT"]["value"] == "300"
    assert "/health/drain" in container["lifecycle"]["preStop"]["exec"]["command"][2]
    assert env["LITELLM_LICENSE"]["valueFrom"]["secretKeyRef"]["key"] == "LITELLM_LICENSE"
    assert "LITELLM_LICENSE" in docs[("SealedSecret", "litellm-secrets")]["spec"]["encryptedData"]
    config = yaml.safe_load(next(d for (kind, _), d in docs.items() if kind == "ConfigMap")["data"]["config.yaml"])
    assert config["general_settings"]["coordination_redis"]["ssl"] is True
    assert config["router_settings"]["redis_host"] == "valkey.valkey.svc.cluster.local"
    assert config["litellm_settings"]["success_callback"] == ["langfuse"]
    monitor = docs[("ServiceMonitor", "litellm")]
    assert monitor["spec"]["endpoints"][0]["interval"] == "1m"
    policy = docs[("NetworkPolicy", "litellm")]["spec"]
    assert {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}} in policy["egress"][-1]["to"]


def test_the_prod_pod_is_admitted_under_restricted(cluster: ControlPlane) -> None:
    """Applied for real above: the ReplicaSet's pod passed admission (Pod Security, priority, service account)."""
    from tests.cluster.kube import wait_for

    namespace = yaml.safe_load((PROJECT / "sites/prod/site.yaml").read_text()).get("namespace", "litellm")
    ns = cluster.api.get("Namespace", namespace)
    if ns is None:
        _check_tree(cluster, PROJECT, "prod", real=True)
        ns = cluster.api.get("Namespace", namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = wait_for(lambda: [p for p in cluster.api.list("Pod", namespace, "app=litellm")
                             if p["status"].get("phase") == "Running"], 120, "a Running prod pod",
                    lambda: str([e.get("message") for e in cluster.api.list("Event", namespace)][-10:]))
    assert pods[0]["spec"]["securityContext"]["runAsNonRoot"] is True
