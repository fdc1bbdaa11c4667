"""``deploy/platform/``: what a stock Thinkube lacks before the first sync, as GitOps.

* ``sealed-secrets/``: the sealed-secrets controller v0.27.1 (the pinned kubeseal's), as its release
  manifest lays it out (bitnami-labs/sealed-secrets controller.jsonnet): the SealedSecret CRD, the
  controller's ServiceAccount and RBAC, its Service (``kubeseal --fetch-cert`` reads through it) and
  Deployment, in ``kube-system`` by default;
* ``argocd/`` and ``flux/``: what each engine applies before any site: the controller and that engine's
  sealed git credential. The fleet orders it first (render/fleet.py): an Argo CD Application at sync wave
  -1 in its own AppProject, a Flux Kustomization every site's first stage depends on.
"""

from __future__ import annotations

from typing import Any

from generator.layout import PLATFORM_OUTPUT_DIR
from generator.platform import PlatformSettings, SealedSecrets
from generator.render.common import obj, yaml_file
from generator.render.gitops import KUSTOMIZE_API

PLATFORM_DIR = PLATFORM_OUTPUT_DIR
CONTROLLER_DIR = f"{PLATFORM_DIR}/sealed-secrets"
ENGINE_DIRS = {"argocd": f"{PLATFORM_DIR}/argocd", "flux": f"{PLATFORM_DIR}/flux"}
CONTROLLER = "sealed-secrets-controller"
KEY_LABEL = "sealedsecrets.bitnami.com/sealed-secrets-key"  # the controller's key pairs, in its namespace
SOURCE, COMMAND = "platform.yaml", "generator render --all"
LABELS = {"app.kubernetes.io/name": "sealed-secrets", "app.kubernetes.io/part-of": "litellm-gitops-platform"}


def _out(*docs: Any) -> bytes:  # noqa: ANN401
    return yaml_file(SOURCE, COMMAND, *docs)


def _kustomization(resources: list[str]) -> bytes:
    return _out({"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": resources})


def render_platform(settings: PlatformSettings | SealedSecrets, *, sealed: bool, engines: set[str],
                    credentials: dict[str, bytes], directory: str = PLATFORM_DIR) -> dict[str, bytes]:
    """The platform folder (``directory``: one cluster's). ``sealed``: some site seals its secret (the controller
    is needed); ``engines``: those the fleet's sites enable; ``credentials``: each engine's sealed git credential
    file, if any."""
    controller_settings = settings.sealed_secrets if isinstance(settings, PlatformSettings) else settings
    files: dict[str, bytes] = {}
    controller = sealed and controller_settings.install
    if controller:
        files[f"{directory}/sealed-secrets/crd.yaml"] = _out(sealed_secret_crd())
        files[f"{directory}/sealed-secrets/controller.yaml"] = _out(*controller_objects(controller_settings))
        files[f"{directory}/sealed-secrets/kustomization.yaml"] = _kustomization(["crd.yaml", "controller.yaml"])
    for engine in sorted(engines):
        resources = (["../sealed-secrets"] if controller else []) + (["credential.yaml"] if engine in credentials else [])
        if not resources:
            continue
        if engine in credentials:
            files[f"{directory}/{engine}/credential.yaml"] = credentials[engine]
        files[f"{directory}/{engine}/kustomization.yaml"] = _kustomization(resources)
    return files


def platform_engines(files: dict[str, bytes], directory: str = PLATFORM_DIR) -> set[str]:
    """The engines that have a platform folder to apply first."""
    return {engine for engine in ENGINE_DIRS if f"{directory}/{engine}/kustomization.yaml" in files}


def sealed_secret_crd() -> dict[str, Any]:
    """The SealedSecret CRD, structural: the fields the controller reads, the rest of a template kept."""
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    condition = {"type": "object", "required": ["status", "type"], "properties": {
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "lastUpdateTime": {"type": "string", "format": "date-time"},
        "message": {"type": "string"}, "reason": {"type": "string"},
        "status": {"type": "string"}, "type": {"type": "string"}}}
    schema = {"type": "object", "required": ["spec"], "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["encryptedData"], "properties": {
            "data": {"type": "string", "format": "byte"},
            "encryptedData": {**string_map, "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "properties": {
                "data": {**string_map, "nullable": True},
                "immutable": {"type": "boolean"},
                "metadata": {"type": "object", "nullable": True, "x-kubernetes-preserve-unknown-fields": True,
                             "properties": {"annotations": string_map, "labels": string_map,
                                            "finalizers": {"type": "array", "items": {"type": "string"}},
                                            "name": {"type": "string"}, "namespace": {"type": "string"}}},
                "type": {"type": "string"}}}}},
        "status": {"type": "object", "properties": {
            "conditions": {"type": "array", "items": condition},
            "observedGeneration": {"type": "integer", "format": "int64"}}}}}
    crd = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "sealedsecrets.bitnami.com", labels=LABELS)
    crd["spec"] = {
        "group": "bitnami.com",
        "names": {"kind": "SealedSecret", "listKind": "SealedSecretList", "plural": "sealedsecrets",
                  "singular": "sealedsecret"},
        "scope": "Namespaced",
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"jsonPath": ".status.conditions[0].message", "name": "Status", "type": "string"},
                {"jsonPath": ".status.conditions[0].status", "name": "Synced", "type": "string"},
                {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}],
            "schema": {"openAPIV3Schema": schema},
        }],
    }
    return crd


def controller_objects(settings: PlatformSettings | SealedSecrets) -> list[dict[str, Any]]:
    controller = settings.sealed_secrets if isinstance(settings, PlatformSettings) else settings
    ns = controller.namespace
    selector = {"name": CONTROLLER}
    account = obj("v1", "ServiceAccount", CONTROLLER, namespace=ns, labels=LABELS)
    unsealer = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "secrets-unsealer", labels=LABELS)
    unsealer["rules"] = [
        {"apiGroups": ["bitnami.com"], "resources": ["sealedsecrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["bitnami.com"], "resources": ["sealedsecrets/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "update", "delete", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    ]
    key_admin = obj("rbac.authorization.k8s.io/v1", "Role", "sealed-secrets-key-admin", namespace=ns, labels=LABELS)
    key_admin["rules"] = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "list"]}]
    proxier = obj("rbac.authorization.k8s.io/v1", "Role", "sealed-secrets-service-proxier", namespace=ns, labels=LABELS)
    proxier["rules"] = [  # what `kubeseal --fetch-cert` needs, through the API server's service proxy
        {"apiGroups": [""], "resources": ["services"], "resourceNames": [CONTROLLER], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services/proxy"],
         "resourceNames": [f"http:{CONTROLLER}:", f"http:{CONTROLLER}:http", CONTROLLER], "verbs": ["create", "get"]},
    ]
    subject = [{"kind": "ServiceAccount", "name": CONTROLLER, "namespace": ns}]
    objects = [account, unsealer, key_admin, proxier,
               _binding("ClusterRoleBinding", CONTROLLER, None, "ClusterRole", "secrets-unsealer", subject),
               _binding("RoleBinding", CONTROLLER, ns, "Role", "sealed-secrets-key-admin", subject),
               _binding("RoleBinding", "sealed-secrets-service-proxier", ns, "Role", "sealed-secrets-service-proxier",
                        [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}])]
    service = obj("v1", "Service", CONTROLLER, namespace=ns, labels={**LABELS, **selector})
    service["spec"] = {"type": "ClusterIP", "selector": selector,
                       "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}
    deployment = obj("apps/v1", "Deployment", CONTROLLER, namespace=ns, labels={**LABELS, **selector})
    probe = {"httpGet": {"path": "/healthz", "port": "http"}}
    deployment["spec"] = {
        "replicas": 1, "revisionHistoryLimit": 10, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": {**LABELS, **selector}}, "spec": {
            "serviceAccountName": CONTROLLER,
            "securityContext": {"fsGroup": 65534, "runAsNonRoot": True, "runAsUser": 1001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": CONTROLLER, "image": controller.image, "imagePullPolicy": "IfNotPresent",
                "command": ["controller"],
                "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 8081}],
                "readinessProbe": probe, "livenessProbe": probe,
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        }},
    }
    return [*objects, service, deployment]


def _binding(kind: str, name: str, namespace: str | None, role_kind: str, role: str,
             subjects: list[dict[str, str]]) -> dict[str, Any]:
    binding = obj("rbac.authorization.k8s.io/v1", kind, name, namespace=namespace, labels=LABELS)
    binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}
    binding["subjects"] = subjects
    return binding
