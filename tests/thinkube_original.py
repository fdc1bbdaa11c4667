"""The objects Thinkube's optional/litellm playbooks create, written out as they create them.

Shapes from thinkube/thinkube df35039d, ``ansible/40_thinkube/optional/litellm/11_deploy.yaml`` and
``17_configure_discovery.yaml`` (the Ingress variant from the same file before 7b53c0d, "Migrate from
ingress-nginx to Cilium Gateway API"). The values are the playbooks' kinds of values: a 32-character master key
with ``sk-``, a 32-character salt key, the platform admin's name and password in DATABASE_URL and as the S3 keys,
the Keycloak client's secret. ``values()`` makes a fresh set; nothing here is a real credential.
"""

from __future__ import annotations

import base64
import secrets
import string
from typing import Any

import yaml

ALNUM = string.ascii_letters + string.digits
CONFIG_YAML = """\
database_url: os.environ/DATABASE_URL

general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  salt_key: os.environ/LITELLM_SALT_KEY
  proxy_batch_write_at: 60
  disable_spend_logs: false
  ui_access_mode: "all"
  database_connection_pool_limit: 10
  allow_requests_on_db_unavailable: true
  # Pass-through endpoints for batch processing
  # These forward requests unchanged to the target backend,
  # allowing custom fields like 'batch' to pass through
  pass_through_endpoints:
    - path: "/gptoss20/v1/chat/completions"
      target: "https://gptoss20.{domain}/v1/chat/completions"
      forward_headers: true

# Caching configuration
litellm_settings:
  cache: true
  cache_params:
    type: s3
    s3_bucket_name: os.environ/S3_BUCKET_NAME
    s3_region_name: os.environ/S3_REGION_NAME
    s3_endpoint_url: os.environ/S3_ENDPOINT_URL
    s3_aws_access_key_id: os.environ/S3_AWS_ACCESS_KEY_ID
    s3_aws_secret_access_key: os.environ/S3_AWS_SECRET_ACCESS_KEY
    supported_call_types:
      - completion
      - acompletion
      - embedding
      - aembedding
    ttl: 3600  # Cache for 1 hour by default

model_list:
  # Users will configure their own models via the UI
  # This is just a placeholder
  - model_name: "test-model"
    litellm_params:
      model: "openai/gpt-3.5-turbo"
      api_key: "os.environ/OPENAI_API_KEY"  # Will be set via UI
"""


def _random(length: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def values(admin: str = "tkadmin") -> dict[str, str]:
    """The Secret's stringData as 11_deploy.yaml fills it."""
    password = _random(20)
    return {
        "LITELLM_MASTER_KEY": f"sk-{_random(32)}",
        "LITELLM_SALT_KEY": _random(32),
        "ADMIN_USERNAME": admin,
        "ADMIN_PASSWORD": password,
        "DATABASE_URL": f"postgresql://{admin}:{password}@postgresql-official.postgres.svc.cluster.local:5432/litellm",
        "CLIENT_SECRET": _random(32),
        "S3_BUCKET_NAME": "litellm-cache",
        "S3_REGION_NAME": "us-east-1",
        "S3_ENDPOINT_URL": "http://seaweedfs-s3.seaweedfs.svc.cluster.local:8333",
        "S3_AWS_ACCESS_KEY_ID": admin,
        "S3_AWS_SECRET_ACCESS_KEY": password,
    }


def _secret_env(name: str, key: str | None = None) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "litellm-secrets", "key": key or name}}}


def objects(domain: str, secret: dict[str, str], *, namespace: str = "litellm", route: str = "httproute",
            realm: str = "thinkube", admin: str = "tkadmin") -> list[dict[str, Any]]:
    """Every object the playbooks create in the namespace, in their order. ``route``: httproute (Thinkube now),
    ingress (before the Gateway API) or both (an old install upgraded: the Ingress was never deleted)."""
    host = f"litellm.{domain}"
    oidc = f"https://auth.{domain}/realms/{realm}/protocol/openid-connect"
    harbor = f"registry.{domain}"
    meta = lambda name, **extra: {"name": name, "namespace": namespace, **extra}  # noqa: E731
    env = [
        _secret_env("LITELLM_MASTER_KEY"), _secret_env("LITELLM_SALT_KEY"),
        _secret_env("UI_USERNAME", "ADMIN_USERNAME"), _secret_env("UI_PASSWORD", "ADMIN_PASSWORD"),
        {"name": "STORE_MODEL_IN_DB", "value": "True"}, {"name": "PROXY_BASE_URL", "value": f"https://{host}"},
        {"name": "ALLOWED_IPS", "value": ""}, {"name": "DROP_PARAMS", "value": "False"},
        {"name": "LITELLM_MODE", "value": "PRODUCTION"}, _secret_env("DATABASE_URL"),
        {"name": "GENERIC_CLIENT_ID", "value": "litellm"}, _secret_env("GENERIC_CLIENT_SECRET", "CLIENT_SECRET"),
        {"name": "GENERIC_AUTHORIZATION_ENDPOINT", "value": f"{oidc}/auth"},
        {"name": "GENERIC_TOKEN_ENDPOINT", "value": f"{oidc}/token"},
        {"name": "GENERIC_USERINFO_ENDPOINT", "value": f"{oidc}/userinfo"},
        {"name": "GENERIC_SCOPE", "value": "openid profile email roles"},
        {"name": "PROXY_ADMIN_ID", "value": admin}, {"name": "LITELLM_PROXY_ADMIN_ROLE", "value": "AI_ADMIN"},
        {"name": "GENERIC_USER_ROLE_ATTRIBUTE", "value": "realm_access.roles"},
        {"name": "GENERIC_USER_ID_ATTRIBUTE", "value": "preferred_username"},
        {"name": "GENERIC_USER_EMAIL_ATTRIBUTE", "value": "email"},
        *(_secret_env(k) for k in ("S3_BUCKET_NAME", "S3_REGION_NAME", "S3_ENDPOINT_URL", "S3_AWS_ACCESS_KEY_ID",
                                   "S3_AWS_SECRET_ACCESS_KEY")),
    ]
    init_db = ("psql -h postgresql-official.postgres.svc.cluster.local -U {a} -d postgres -c "
               "\"GRANT ALL PRIVILEGES ON DATABASE litellm TO {a}\"").format(a=admin)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("litellm"),
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "litellm"}}, "template": {
            "metadata": {"labels": {"app": "litellm"}},
            "spec": {
                "priorityClassName": "thinkube-workload",
                "containers": [{
                    "name": "litellm", "image": f"{harbor}/library/litellm:latest",
                    "command": ["litellm", "--port", "4000", "--config", "/app/config.yaml"],
                    "ports": [{"containerPort": 4000, "name": "http"}], "env": env,
                    "volumeMounts": [{"name": "config", "mountPath": "/app/config.yaml", "subPath": "config.yaml"},
                                     {"name": "data", "mountPath": "/app/data"}],
                    "livenessProbe": {"httpGet": {"path": "/health/liveliness", "port": "http"},
                                      "initialDelaySeconds": 30, "periodSeconds": 10},
                    "readinessProbe": {"httpGet": {"path": "/health/readiness", "port": "http"},
                                       "initialDelaySeconds": 10, "periodSeconds": 5},
                    "resources": {"requests": {"memory": "512Mi", "cpu": "100m"},
                                  "limits": {"memory": "2Gi", "cpu": "1"}},
                }],
                "volumes": [{"name": "config", "configMap": {"name": "litellm-config"}},
                            {"name": "data", "persistentVolumeClaim": {"claimName": "litellm-data-pvc"}}],
                "initContainers": [
                    {"name": "wait-for-postgres", "image": "busybox:latest", "command": [
                        "sh", "-c", "until nc -z postgresql-official.postgres.svc.cluster.local 5432; do sleep 2; done;"]},
                    {"name": "wait-for-seaweedfs", "image": "busybox:latest", "command": [
                        "sh", "-c", "until nc -z seaweedfs-s3.seaweedfs.svc.cluster.local 8333; do sleep 2; done;"]},
                    {"name": "init-db", "image": f"{harbor}/library/postgres:18-alpine",
                     "env": [{"name": "PGPASSWORD", "value": secret["ADMIN_PASSWORD"]}],
                     "command": ["sh", "-c", init_db]},
                ],
            }}},
    }
    found: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("litellm-secrets"), "type": "Opaque",
         "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("litellm-config"),
         "data": {"config.yaml": CONFIG_YAML.format(domain=domain)}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("litellm-data-pvc"),
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}},
        deployment,
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("litellm"),
         "spec": {"selector": {"app": "litellm"}, "ports": [{"port": 80, "targetPort": 4000, "name": "http"}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta(f"{namespace}-tls-secret"), "type": "kubernetes.io/tls",
         "data": {"tls.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode(),
                  "tls.key": base64.b64encode(b"-----BEGIN " + b"PRIVATE KEY-----\n").decode()}},  # a stand-in
    ]
    if route in ("httproute", "both"):
        found.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("litellm-route"),
                      "spec": {"parentRefs": [{"name": "thinkube-gateway", "namespace": "gateway-system",
                                               "sectionName": "https"}],
                               "hostnames": [host],
                               "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                          "backendRefs": [{"name": "litellm", "port": 80}],
                                          "timeouts": {"request": "600s"}}]}})
    if route in ("ingress", "both"):
        found.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("litellm", annotations={
            "nginx.ingress.kubernetes.io/proxy-body-size": "10m",
            "nginx.ingress.kubernetes.io/proxy-connect-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-send-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "600"}),
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": [host], "secretName": f"{namespace}-tls-secret"}],
                     "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                         "service": {"name": "litellm", "port": {"number": 80}}}}]}}]}})
    service_yaml = (f"service:\n  name: litellm\n  display_name: \"LiteLLM\"\n  type: optional\n  category: ai\n"
                    f"  component_version: \"0.1.0\"\n  endpoints:\n    - name: dashboard\n      type: http\n"
                    f"      url: \"https://{host}/ui\"\n      primary: true\n    - name: api\n      type: http\n"
                    f"      url: \"https://{host}/v1\"\n  scaling:\n    resource_type: deployment\n"
                    f"    resource_name: litellm\n    namespace: \"{namespace}\"\n    min_replicas: 1\n"
                    f"    can_disable: true\n  environment_variables:\n    - name: LITELLM_ENDPOINT\n"
                    f"      value: \"https://{host}\"\n    - name: LITELLM_MASTER_KEY\n"
                    f"      value: \"{secret['LITELLM_MASTER_KEY']}\"\n")
    found.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("thinkube-service-config", labels={
        "thinkube.io/managed": "true", "thinkube.io/service-type": "optional", "thinkube.io/service-name": "litellm",
        "thinkube.io/component-version": "0.1.0"}), "data": {"service.yaml": service_yaml}})
    return found


class _Block(yaml.SafeDumper):
    """Multi-line strings as block scalars, as ``kubectl get -o yaml`` writes a ConfigMap's config."""


def _block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Block.add_representer(str, _block)


def dump(objs: list[dict[str, Any]]) -> str:
    """``kubectl get ... -o yaml`` of several objects: a List."""
    listed = [o for o in objs if o["kind"] != "Namespace"]
    return yaml.dump({"apiVersion": "v1", "kind": "List", "items": listed, "metadata": {"resourceVersion": ""}},
                     Dumper=_Block, sort_keys=False, width=1000)
