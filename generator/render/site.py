"""One site's overlay (overlays/<site>/) and its GitOps entry points (deploy/*/<site>/)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from generator.model import PROXY_ADMIN_KEY, SecretHeader, Site
from generator.model.serving import LICENSE_KEY
from generator.render import gitops
from generator.render.common import APP, CONFIG_NAME, CONTAINER_PORT, env_secret, env_value, obj, yaml_file
from generator.render.config import litellm_config
from generator.render.discovery import service_config
from generator.render.migration import SETUP_WAVE, migration_job
from generator.render.monitoring import monitoring_objects
from generator.render.network import network_policy
from generator.render.waiting import wait_for_container

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"


# The overlay is split by the order in which the engines must apply it. Flux applies each stage
# from its own Kustomization (setup, then migrate, then app: dependsOn); Argo CD applies the whole
# overlay as one Application, ordered by sync waves. Both see the same objects.
SETUP, MIGRATE, APP_STAGE = "setup", "migrate", "app"
STAGES = (SETUP, MIGRATE, APP_STAGE)
ARGO_WAVE = "argocd.argoproj.io/sync-wave"
PSA_MODES = ("enforce", "audit", "warn")  # Pod Security admission: refuse, log, and tell the client
# Outlives the tree: neither engine deletes it, not when it leaves git, not with the site (Flux: no prune, also
# when its Kustomization is deleted; Argo CD: no prune, no delete with the Application).
KEEP_DATA = {"kustomize.toolkit.fluxcd.io/prune": "disabled", "argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}


def render_site(name: str, site: Site, extra_resources: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """All files of one site. ``extra_resources`` are setup files made at the edge (the sealed Secret)."""
    source = f"sites/{name}/site.yaml"
    command = f"generator render --site {name}"
    prefix = f"overlays/{name}"

    def out(*docs: Any) -> bytes:
        return yaml_file(source, command, *docs)

    namespace = obj("v1", "Namespace", site.namespace,
                    labels={f"pod-security.kubernetes.io/{mode}": site.pod_security for mode in PSA_MODES},
                    annotations=KEEP_DATA if site.keep_namespace else None)
    setup: dict[str, bytes] = {"namespace.yaml": out(namespace), **(extra_resources or {})}
    migrate: dict[str, bytes] = {"job.yaml": out(migration_job(site))}
    app: dict[str, bytes] = {
        "config.yaml": out(litellm_config(site)),
        "deployment-patch.yaml": out(deployment_patch(site)),
    }
    if site.discovery.enabled:
        app["service-config.yaml"] = out(service_config(site))
    route = httproute(site) if site.routing.type == "httproute" else ingress(site)
    app[f"{site.routing.type}.yaml"] = out(route)
    optional = {
        "pdb.yaml": pdb(site) if site.pdb.enabled else None,
        "hpa.yaml": hpa(site) if site.hpa.enabled else None,
        "networkpolicy.yaml": network_policy(site) if site.network_policy.enabled else None,
        "pvc.yaml": pvc(site) if site.persistence.enabled else None,
    }
    app.update({file: out(doc) for file, doc in optional.items() if doc is not None})
    if site.metrics.enabled and site.metrics.service_monitor.enabled:
        app["servicemonitor.yaml"] = out(*monitoring_objects(site))

    setup["kustomization.yaml"] = out(stage_kustomization(name, site, sorted(setup),
                                                          annotations={ARGO_WAVE: SETUP_WAVE}))
    migrate["kustomization.yaml"] = out(stage_kustomization(name, site, sorted(migrate)))
    listed = sorted(f for f in app if f not in {"config.yaml", "deployment-patch.yaml"})
    app["kustomization.yaml"] = out(app_kustomization(name, site, listed))
    whole = {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": list(STAGES)}

    files = {f"{prefix}/kustomization.yaml": out(whole)}
    for stage, stage_files in ((SETUP, setup), (MIGRATE, migrate), (APP_STAGE, app)):
        files.update({f"{prefix}/{stage}/{file}": data for file, data in stage_files.items()})
    files.update(gitops.render_site_entry_points(name, site, source, command))
    return dict(sorted(files.items()))



def _instance_labels(name: str) -> list[dict[str, Any]]:
    # on the pod templates too (the recommended labels belong on the pods), never on the immutable selectors
    return [{"pairs": {"app.kubernetes.io/instance": f"litellm-{name}"}, "includeSelectors": False,
             "includeTemplates": True}]


def stage_kustomization(name: str, site: Site, resources: list[str],
                        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        # The same namespace the Secret is sealed for: the transformer never changes a sealed name.
        "namespace": site.namespace,
        "resources": resources,
        "labels": _instance_labels(name),
    }
    if annotations:
        doc["commonAnnotations"] = annotations
    return doc


def app_kustomization(name: str, site: Site, listed: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "namespace": site.namespace,
        "resources": ["../../../base", *listed],
        "labels": _instance_labels(name),
        # A hash suffix on the generated name rolls the pods whenever the config changes.
        "configMapGenerator": [{"name": CONFIG_NAME, "files": ["config.yaml"]}],
        "patches": [{"path": "deployment-patch.yaml", "target": {"kind": "Deployment", "name": APP}}],
    }
    if site.extensions:
        where = f"../../../{extensions_dir(name)}"
        doc["components" if site.extensions == "component" else "resources"] = (
            [where] if site.extensions == "component" else [*doc["resources"], where])
    return doc


def extensions_dir(name: str) -> str:
    """The operator's own Kustomize directory of a site (never written by the generator)."""
    return f"sites/{name}/extensions"


def site_env(site: Site) -> list[dict[str, Any]]:
    """Env that depends on the site; secrets only as secretKeyRef."""
    oidc = site.oidc_base
    claims = site.keycloak.claims
    env = [
        env_value("PROXY_BASE_URL", f"https://{site.host}"),
        env_value("LITELLM_MODE", site.general_settings.mode),
        env_value("STORE_MODEL_IN_DB", "True" if site.general_settings.store_model_in_db else "False"),
        env_value("UI_USERNAME", site.ui.username),
        env_value("GENERIC_CLIENT_ID", site.keycloak.client_id),
        env_value("GENERIC_AUTHORIZATION_ENDPOINT", f"{oidc}/auth"),
        env_value("GENERIC_TOKEN_ENDPOINT", f"{oidc}/token"),
        env_value("GENERIC_USERINFO_ENDPOINT", f"{oidc}/userinfo"),
        env_value("GENERIC_SCOPE", site.keycloak.scope),
        env_value("GENERIC_USER_ROLE_ATTRIBUTE", claims.role),
        *role_mapping_env(site),
        env_value("GENERIC_USER_ID_ATTRIBUTE", claims.user_id),
        env_value("GENERIC_USER_EMAIL_ATTRIBUTE", claims.email),
    ]
    if site.keycloak.proxy_admin:  # the admin's Keycloak id, which bootstrap looked up and stored in sops
        env.append(env_secret(PROXY_ADMIN_KEY, PROXY_ADMIN_KEY))
    if site.cache.enabled:
        env += [
            env_value("S3_BUCKET_NAME", site.s3.bucket),
            env_value("S3_REGION_NAME", site.s3.region),
            env_value("S3_ENDPOINT_URL", site.s3.endpoint),
            env_secret("S3_AWS_ACCESS_KEY_ID", "S3_AWS_ACCESS_KEY_ID"),
            env_secret("S3_AWS_SECRET_ACCESS_KEY", "S3_AWS_SECRET_ACCESS_KEY"),
        ]
    referenced: list[str] = [m.api_key_secret for m in site.models if m.api_key_secret]
    referenced += [
        h.secret_key for e in site.pass_through_endpoints for h in e.headers.values() if isinstance(h, SecretHeader)
    ]
    if site.redis.enabled and site.redis.password_secret:
        referenced.append(site.redis.password_secret)  # config.yaml reads os.environ/<key>
    env += [env_secret(key, key) for key in dict.fromkeys(referenced)]
    env += serving_env(site)
    for key, value in sorted(site.extra_env.items()):
        if isinstance(value, str):
            env.append(env_value(key, value))
        else:
            ref = {"name": value.secret, "key": value.key, **({"optional": True} if value.optional else {})}
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


def role_mapping_env(site: Site) -> list[dict[str, Any]]:
    """LiteLLM 1.108.7's role mappings for the generic SSO provider: every sign-in yields a valid role, which
    overwrites the stored one (``_build_sso_user_update_data``), so a user whose claim lost a role is demoted. A
    claim naming no LiteLLM role yields the viewer role; without the mappings LiteLLM would keep the stored role."""
    roles = {"proxy_admin": ["proxy_admin"], "internal_user": ["internal_user"]}  # the client roles bootstrap maps
    return [env_value("GENERIC_ROLE_MAPPINGS_ROLES", json.dumps(roles, separators=(",", ":"))),
            env_value("GENERIC_ROLE_MAPPINGS_GROUP_CLAIM", site.keycloak.claims.role),
            env_value("GENERIC_ROLE_MAPPINGS_DEFAULT_ROLE", "internal_user_viewer")]


def serving_env(site: Site) -> list[dict[str, Any]]:
    """Env of the JWT auth, the drain and Langfuse: names LiteLLM reads, values from litellm-secrets."""
    env: list[dict[str, Any]] = []
    if site.jwt_auth.enabled:
        issuer = f"{site.keycloak_url}/realms/{site.keycloak.realm}"
        env += [
            env_value("JWT_PUBLIC_KEY_URL", f"{site.oidc_base}/certs"),
            # both set: PyJWT checks iss and aud, so tokens of other realms and of other clients are refused
            env_value("JWT_ISSUER", issuer),
            env_value("JWT_AUDIENCE", site.jwt_audience),
            env_secret(LICENSE_KEY, LICENSE_KEY),
        ]
    if site.drain.enabled:
        env += [env_secret("DRAIN_ENDPOINT_TOKEN", site.drain.token_secret),
                env_value("GRACEFUL_SHUTDOWN_TIMEOUT", str(site.drain.seconds))]
    langfuse = site.callbacks.langfuse
    if langfuse:
        env += [env_value("LANGFUSE_HOST", langfuse.host),
                env_secret("LANGFUSE_PUBLIC_KEY", langfuse.public_key_secret),
                env_secret("LANGFUSE_SECRET_KEY", langfuse.secret_key_secret)]
    return env


# The preStop hook, run by the image's Python inside the container (its env holds the token): LiteLLM's
# /health/drain turns readiness and liveness to 503 (the pod leaves the Service) and returns once no request
# is in flight, or after GRACEFUL_SHUTDOWN_TIMEOUT. The kubelet sends SIGTERM when the hook returns.
DRAIN_HOOK = (
    "import os, urllib.request\n"
    "request = urllib.request.Request('http://127.0.0.1:{port}/health/drain',\n"
    "                                 headers={{'X-Drain-Token': os.environ['DRAIN_ENDPOINT_TOKEN']}})\n"
    "with urllib.request.urlopen(request, timeout={timeout}) as response:\n"
    "    print(response.read().decode(), flush=True)\n"
)


def drain_hook(site: Site) -> dict[str, Any]:
    script = DRAIN_HOOK.format(port=CONTAINER_PORT, timeout=site.drain.seconds + 5)
    return {"preStop": {"exec": {"command": ["python", "-c", script]}}}


def deployment_patch(site: Site) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": APP,
        "image": site.image.reference,
        "imagePullPolicy": site.image.pull_policy,
        "env": site_env(site),
        "resources": site.resources.model_dump(),
    }
    if site.extra_env_from:
        container["envFrom"] = [_env_from(source) for source in site.extra_env_from]
    pod: dict[str, Any] = {}
    if site.drain.enabled:
        container["lifecycle"] = drain_hook(site)
        # the drain, then time to exit: the kubelet kills the container after this, counted from the hook's start
        pod["terminationGracePeriodSeconds"] = site.drain.grace_period
    if site.priority_class_name:
        pod["priorityClassName"] = site.priority_class_name
    if site.wait_for.enabled:
        pod["initContainers"] = wait_for_containers(site)
    pod["containers"] = [container]
    if site.persistence.enabled:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/app/data"}]
        pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "litellm-data-pvc"}}]
    pod.update(site.pod.placement())
    several = site.hpa.enabled or site.replicas > 1
    if site.pod.topology_spread_constraints is not None:
        pod["topologySpreadConstraints"] = [c.render() for c in site.pod.topology_spread_constraints]
    elif several:
        # spread the replicas over nodes, preferably: a one-node cluster still schedules them all
        pod["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                             "whenUnsatisfiable": "ScheduleAnyway",
                                             "labelSelector": {"matchLabels": {"app": APP}}}]
    if site.pod.affinity is not None:
        pod["affinity"] = site.pod.affinity.render()
    elif several:
        pod["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                "labelSelector": {"matchLabels": {"app": APP}}}}]}}
    spec: dict[str, Any] = {}
    if site.persistence.enabled:
        # ReadWriteOnce: the old pod lets go of the volume before the new one mounts it
        spec["strategy"] = {"type": "Recreate", "rollingUpdate": None}  # null: the patch deletes the base's
    if not site.hpa.enabled and not site.platform_owns_replicas:
        # Git pins the count. Otherwise the HPA, or thinkube-control's scale button, owns it.
        spec["replicas"] = site.replicas
    spec["template"] = {**({"metadata": site.pod.metadata()} if site.pod.metadata() else {}), "spec": pod}
    patch = obj("apps/v1", "Deployment", APP)
    patch["spec"] = spec
    return patch


def _env_from(source: Any) -> dict[str, Any]:
    out: dict[str, Any] = ({"secretRef": {"name": source.secret_ref}} if source.secret_ref
                           else {"configMapRef": {"name": source.config_map_ref}})
    if source.prefix:
        out["prefix"] = source.prefix
    return out


def wait_for_containers(site: Site) -> list[dict[str, Any]]:
    s3 = urlsplit(site.s3.endpoint)
    targets = [("wait-for-postgres", site.postgres.host, site.postgres.port)]
    if site.cache.enabled:
        targets.append(("wait-for-s3", s3.hostname or "", s3.port or (443 if s3.scheme == "https" else 80)))
    return [wait_for_container(site, name, host, port) for name, host, port in targets]


def httproute(site: Site) -> dict[str, Any]:
    config = site.routing.httproute
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                              "name": config.gateway.name, "namespace": config.gateway.namespace}
    if config.gateway.section_name:
        parent["sectionName"] = config.gateway.section_name
    route = obj("gateway.networking.k8s.io/v1", "HTTPRoute", config.name, labels={"app": APP})
    route["spec"] = {
        "parentRefs": [parent],
        "hostnames": [site.host],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": APP, "port": 80}],
                "timeouts": {"request": config.request_timeout},
            }
        ],
    }
    return route


def ingress(site: Site) -> dict[str, Any]:
    config = site.routing.ingress
    resource = obj("networking.k8s.io/v1", "Ingress", config.name, labels={"app": APP}, annotations=config.annotations)
    spec: dict[str, Any] = {"ingressClassName": config.class_name}
    if config.tls_secret_name:
        spec["tls"] = [{"hosts": [site.host], "secretName": config.tls_secret_name}]
    spec["rules"] = [
        {
            "host": site.host,
            "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                "backend": {"service": {"name": APP, "port": {"name": "http"}}}}]},
        }
    ]
    resource["spec"] = spec
    return resource


def pdb(site: Site) -> dict[str, Any]:
    doc = obj("policy/v1", "PodDisruptionBudget", APP, labels={"app": APP})
    rule = ({"minAvailable": site.pdb.min_available} if site.pdb.min_available is not None
            else {"maxUnavailable": site.pdb.max_unavailable or 1})
    # A pod that is not Ready serves nothing: evicting it never costs availability, and keeping it would let a
    # crash-looping pod block every drain (the default, IfHealthyBudget, protects it while the budget is spent).
    doc["spec"] = {**rule, "selector": {"matchLabels": {"app": APP}}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    return doc


def hpa(site: Site) -> dict[str, Any]:
    doc = obj("autoscaling/v2", "HorizontalPodAutoscaler", APP, labels={"app": APP})
    doc["spec"] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
        "minReplicas": site.hpa.min_replicas,
        "maxReplicas": site.hpa.max_replicas,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": site.hpa.target_cpu_utilization}}}],
    }
    return doc


def pvc(site: Site) -> dict[str, Any]:
    doc = obj("v1", "PersistentVolumeClaim", "litellm-data-pvc", labels={"app": APP}, annotations=KEEP_DATA)
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": site.persistence.size}}}
    if site.persistence.storage_class:
        spec["storageClassName"] = site.persistence.storage_class
    doc["spec"] = spec
    return doc
