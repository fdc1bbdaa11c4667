"""Issue 11's serving sections rendered: Redis shared state, JWT auth, the drain, callbacks, metrics, egress.

What LiteLLM does with these settings is proven against the real proxy in tests/e2e (test_serving_*.py);
here the rendered objects are checked for what each site key promises.
"""

from __future__ import annotations

import yaml

from generator.model import Site
from generator.render import render_site

EVERYTHING = {
    "domain": "example.com",
    "gitops": {"flux": {"url": "https://git.example.com/gitops.git"}},
    "discovery": {"platformScaling": False},
    "replicas": 2,
    "keycloak": {"adminScope": "llm_admins", "claims": {"userId": "sub", "email": "mail", "role": "llm_role"}},
    "redis": {"enabled": True, "host": "redis.cache.svc.cluster.local", "port": 6380, "passwordSecret": "CACHE_PASSWORD",
              "tls": True},
    "jwtAuth": {"enabled": True, "audience": "llm-api", "publicKeyTtl": 120},
    "drain": {"seconds": 120, "exitSeconds": 20, "tokenSecret": "DRAIN_TOKEN"},
    "callbacks": {"langfuse": {"host": "https://langfuse.example.com", "publicKeySecret": "LF_PUBLIC",
                               "secretKeySecret": "LF_SECRET", "events": ["failure"]}},
    "metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "interval": "1m", "prometheusNamespace": "obs",
                                                    "prometheusServiceAccount": "prom"}},
    "networkPolicy": {"enabled": True, "egress": {"enabled": True, "dnsNamespace": "dns",
                                                  "external": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}]}},
    "models": [{"name": "local", "model": "openai/llama", "apiBase": "http://vllm.models.svc.cluster.local:8000/v1"},
               {"name": "gpt", "model": "openai/gpt-4o", "apiKeySecret": "OPENAI_API_KEY"}],
}


def _render(**site: object) -> dict[str, bytes]:
    return render_site("t", Site.model_validate(site))


def _doc(files: dict[str, bytes], name: str) -> dict:
    return yaml.safe_load(files[f"overlays/t/app/{name}"])


def _container(files: dict[str, bytes]) -> dict:
    return _doc(files, "deployment-patch.yaml")["spec"]["template"]["spec"]["containers"][0]


def _env(files: dict[str, bytes]) -> dict[str, dict]:
    return {e["name"]: e for e in _container(files)["env"]}


def _secret(key: str) -> dict:
    return {"secretKeyRef": {"name": "litellm-secrets", "key": key}}


def test_every_serving_key_keeps_its_value_in_the_objects() -> None:
    files = _render(**EVERYTHING)
    config = _doc(files, "config.yaml")
    general, router = config["general_settings"], config["router_settings"]
    assert general["coordination_redis"] == {"host": "redis.cache.svc.cluster.local", "port": 6380,
                                             "password": "os.environ/CACHE_PASSWORD", "ssl": True}
    assert {k: router[k] for k in ("redis_host", "redis_port", "redis_password", "cache_kwargs")} == {
        "redis_host": "redis.cache.svc.cluster.local", "redis_port": 6380, "redis_password": "os.environ/CACHE_PASSWORD",
        "cache_kwargs": {"ssl": True}}
    assert general["enable_jwt_auth"] is True
    assert general["litellm_jwtauth"] == {"admin_jwt_scope": "llm_admins", "user_id_jwt_field": "sub",
                                          "user_email_jwt_field": "mail", "public_key_ttl": 120, "enforce_rbac": True,
                                          "user_id_upsert": True, "admin_allowed_routes": [
                                              "management_routes", "spend_tracking_routes", "global_spend_tracking_routes",
                                              "info_routes", "llm_api_routes"]}
    assert general["role_permissions"] == [{"role": "internal_user", "routes": ["llm_api_routes", "info_routes"]}]
    assert general["enable_drain_endpoint"] is True and "drain_endpoint_token" not in general
    assert config["litellm_settings"]["callbacks"] == ["prometheus"]
    assert config["litellm_settings"]["failure_callback"] == ["langfuse"]
    assert "success_callback" not in config["litellm_settings"]

    env = _env(files)
    assert env["CACHE_PASSWORD"]["valueFrom"] == _secret("CACHE_PASSWORD")
    assert env["JWT_PUBLIC_KEY_URL"]["value"] == "https://auth.example.com/realms/thinkube/protocol/openid-connect/certs"
    assert env["JWT_ISSUER"]["value"] == "https://auth.example.com/realms/thinkube"
    assert env["JWT_AUDIENCE"]["value"] == "llm-api"
    assert env["LITELLM_LICENSE"]["valueFrom"] == _secret("LITELLM_LICENSE")
    assert env["DRAIN_ENDPOINT_TOKEN"]["valueFrom"] == _secret("DRAIN_TOKEN")
    assert env["GRACEFUL_SHUTDOWN_TIMEOUT"]["value"] == "120"
    assert env["LANGFUSE_HOST"]["value"] == "https://langfuse.example.com"
    assert env["LANGFUSE_PUBLIC_KEY"]["valueFrom"] == _secret("LF_PUBLIC")
    assert env["LANGFUSE_SECRET_KEY"]["valueFrom"] == _secret("LF_SECRET")
    assert not any("value" in e and e["value"].startswith("sk-") for e in env.values())

    site = Site.model_validate(EVERYTHING)
    assert {"CACHE_PASSWORD", "LITELLM_LICENSE", "DRAIN_TOKEN", "LF_PUBLIC", "LF_SECRET"} <= set(site.secret_keys())


def test_drain_hook_and_grace_period_agree() -> None:
    files = _render(**EVERYTHING)
    pod = _doc(files, "deployment-patch.yaml")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 140  # 120 s drain + 20 s to exit
    command = _container(files)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    script = command[2]
    assert "http://127.0.0.1:4000/health/drain" in script and "X-Drain-Token" in script
    assert "os.environ['DRAIN_ENDPOINT_TOKEN']" in script and "timeout=125" in script
    compile(script, "preStop", "exec")  # the image's Python can run it

    # default: the drain covers the route's 600 s request timeout
    default = _render(domain="example.com", gitops={"flux": {"url": "https://git.example.com/g.git"}})
    assert _doc(default, "deployment-patch.yaml")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 615
    assert _env(default)["DRAIN_ENDPOINT_TOKEN"]["valueFrom"] == _secret("LITELLM_MASTER_KEY")
    off = _render(domain="example.com", gitops={"flux": {"url": "https://git.example.com/g.git"}}, drain={"enabled": False})
    assert "lifecycle" not in _container(off) and "DRAIN_ENDPOINT_TOKEN" not in _env(off)
    assert "enable_drain_endpoint" not in _doc(off, "config.yaml")["general_settings"]


def test_service_monitor_scrapes_the_metrics_path_with_read_access() -> None:
    files = _render(**EVERYTHING)
    monitor, role, binding = yaml.safe_load_all(files["overlays/t/app/servicemonitor.yaml"])
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics/", "interval": "1m", "scheme": "http"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["litellm"]}
    assert role["kind"] == "Role" and {"endpoints", "services", "pods"} <= set(role["rules"][0]["resources"])
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prom", "namespace": "obs"}]
    assert "servicemonitor.yaml" in yaml.safe_load(files["overlays/t/app/kustomization.yaml"])["resources"]
    peers = _doc(files, "networkpolicy.yaml")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}} in peers


def test_egress_is_derived_from_the_site_settings() -> None:
    spec = _doc(_render(**EVERYTHING), "networkpolicy.yaml")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    rules = {rule["to"][0].get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", "ip"):
             rule for rule in spec["egress"]}
    ports = {ns: sorted((p["protocol"], p["port"]) for p in rule["ports"]) for ns, rule in rules.items()}
    assert ports == {
        "dns": [("TCP", 53), ("UDP", 53)],
        "postgres": [("TCP", 5432)],
        "seaweedfs": [("TCP", 8333)],
        "cache": [("TCP", 6380)],      # redis.host
        "models": [("TCP", 8000)],     # a model's in-cluster apiBase
        "ip": [("TCP", 443)],          # Keycloak's public URL, the OpenAI API, Langfuse's https host
    }
    assert rules["ip"]["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]


def test_sections_off_by_default_add_nothing() -> None:
    files = _render(domain="example.com", gitops={"flux": {"url": "https://git.example.com/g.git"}},
                    networkPolicy={"enabled": True})
    config = _doc(files, "config.yaml")
    assert not {"coordination_redis", "enable_jwt_auth", "litellm_jwtauth"} & set(config["general_settings"])
    assert not {"callbacks", "success_callback", "failure_callback"} & set(config["litellm_settings"])
    assert "router_settings" not in config
    assert not {"JWT_PUBLIC_KEY_URL", "LITELLM_LICENSE", "LANGFUSE_HOST"} & set(_env(files))
    assert "overlays/t/app/servicemonitor.yaml" not in files
    assert _doc(files, "networkpolicy.yaml")["spec"]["policyTypes"] == ["Ingress"]


def test_the_names_extra_env_may_not_take_are_the_ones_rendered() -> None:
    """model.py refuses extraEnv names from serving.serving_env_names; render/site.py renders serving_env."""
    from generator.render.site import serving_env
    from generator.model.serving import serving_env_names

    base = {"domain": "example.com", "gitops": {"flux": {"url": "https://git.example.com/g.git"}}}
    for site in (Site.model_validate(EVERYTHING), Site.model_validate(base),
                 Site.model_validate({**base, "drain": {"enabled": False}})):
        assert {e["name"] for e in serving_env(site)} == serving_env_names(site)
