"""The pure renderer: deterministic bytes, every object and env var of the original, flaws fixed."""

from __future__ import annotations

import yaml

from generator.model import Site
from generator.render import render_base, render_site
from generator.render.base import deployment
from generator.render.site import site_env

ORIGINAL_SECRET_ENV = {
    "LITELLM_MASTER_KEY": "LITELLM_MASTER_KEY", "LITELLM_SALT_KEY": "LITELLM_SALT_KEY", "UI_PASSWORD": "ADMIN_PASSWORD",
    "DATABASE_URL": "DATABASE_URL", "GENERIC_CLIENT_SECRET": "CLIENT_SECRET",
    "S3_AWS_ACCESS_KEY_ID": "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY": "S3_AWS_SECRET_ACCESS_KEY",
    # issue 26: the admin's Keycloak id, which bootstrap looks up (the original named the username 'admin')
    "PROXY_ADMIN_ID": "PROXY_ADMIN_ID",
}
ORIGINAL_LITERAL_ENV = {
    "STORE_MODEL_IN_DB": "True", "PROXY_BASE_URL": "https://litellm.example.com", "LITELLM_MODE": "PRODUCTION",
    "GENERIC_CLIENT_ID": "litellm",
    "GENERIC_AUTHORIZATION_ENDPOINT": "https://auth.example.com/realms/thinkube/protocol/openid-connect/auth",
    "GENERIC_TOKEN_ENDPOINT": "https://auth.example.com/realms/thinkube/protocol/openid-connect/token",
    "GENERIC_USERINFO_ENDPOINT": "https://auth.example.com/realms/thinkube/protocol/openid-connect/userinfo",
    "GENERIC_SCOPE": "openid profile email roles",
    # issue 26: the email claim is left out (LiteLLM links accounts by email without checking email_verified);
    # a user is their Keycloak id, the claim LiteLLM compares PROXY_ADMIN_ID with
    "GENERIC_USER_ID_ATTRIBUTE": "sub", "GENERIC_USER_EMAIL_ATTRIBUTE": "",
    "UI_USERNAME": "admin", "S3_BUCKET_NAME": "litellm-cache", "S3_REGION_NAME": "us-east-1",
    "S3_ENDPOINT_URL": "http://seaweedfs-s3.seaweedfs.svc.cluster.local:8333",
}


def _site(**overrides: object) -> Site:
    return Site.model_validate({"domain": "example.com", "gitops": {"flux": {"url": "https://git.example.com/gitops.git"}},
                                **overrides})


def _docs(files: dict[str, bytes], path: str) -> dict:
    return yaml.safe_load(files[path])


def test_same_input_same_bytes() -> None:
    site = _site(models=[{"name": "gpt", "model": "openai/gpt-4o", "apiKeySecret": "OPENAI_API_KEY"}])
    assert render_site("prod", site) == render_site("prod", _site(**site.model_dump(by_alias=True)))
    assert render_base() == render_base()


def test_every_file_has_the_generated_header() -> None:
    for path, data in {**render_site("prod", _site()), **render_base()}.items():
        assert data.startswith(b"# Generated from "), path
        assert data.endswith(b"\n"), path


def test_env_covers_the_original_and_secrets_only_by_reference() -> None:
    env = {e["name"]: e for e in deployment()["spec"]["template"]["spec"]["containers"][0]["env"] + site_env(_site())}
    for name, key in ORIGINAL_SECRET_ENV.items():
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "litellm-secrets", "key": key}}}
    for name, value in ORIGINAL_LITERAL_ENV.items():
        assert env[name].get("value") == value, name
    # Flaw 7: the role claim points at the LiteLLM role the Keycloak mapper writes, not at realm_access.roles.
    assert env["GENERIC_USER_ROLE_ATTRIBUTE"]["value"] == "litellm_role"


def test_flaws_of_the_original_are_fixed() -> None:
    files = render_site("prod", _site())
    config = _docs(files, "overlays/prod/app/config.yaml")
    assert "database_url" not in config  # flaw 6
    assert config["general_settings"]["database_url"] == "os.environ/DATABASE_URL"
    assert config["litellm_settings"]["cache_params"]["ttl"] == 3600  # an integer, never a string
    discovery = _docs(files, "overlays/prod/app/service-config.yaml")
    exported = yaml.safe_load(discovery["data"]["service.yaml"])["service"]["environment_variables"]
    assert exported == [{"name": "LITELLM_ENDPOINT", "value": "https://litellm.example.com"}]  # flaw 1: no key
    files = render_site("prod", _site(discovery={"exportMasterKey": True}))
    discovery = _docs(files, "overlays/prod/app/service-config.yaml")
    exported = yaml.safe_load(discovery["data"]["service.yaml"])["service"]["environment_variables"]
    assert {"name": "LITELLM_MASTER_KEY", "valueFrom": {"secretKeyRef": {  # exported: by reference only
        "namespace": "litellm", "name": "litellm-secrets", "key": "LITELLM_MASTER_KEY"}}} in exported
    assert all("value" not in e for e in exported if e["name"] == "LITELLM_MASTER_KEY")
    assert "overlays/prod/app/pvc.yaml" not in files  # flaw 8: no unused PVC unless asked
    assert not any("tls" in p for p in files)
    patch = _docs(files, "overlays/prod/app/deployment-patch.yaml")
    image = patch["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":v1.108.7")  # flaw 4: pinned, >= 1.84.0
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_optional_objects_follow_the_site() -> None:
    files = render_site("prod", _site(pdb={"enabled": True}, hpa={"enabled": True}, networkPolicy={"enabled": True},
                                      redis={"enabled": True},
                                      routing={"type": "ingress", "ingress": {"tlsSecretName": "litellm-tls"}}))
    for name in ("pdb", "hpa", "networkpolicy", "ingress"):
        assert f"overlays/prod/app/{name}.yaml" in files
    assert "overlays/prod/app/httproute.yaml" not in files
    assert "overlays/prod/app/pvc.yaml" not in files
    patch = _docs(files, "overlays/prod/app/deployment-patch.yaml")
    assert "replicas" not in patch["spec"]  # the HPA owns the count
    # several pods: spread over nodes and kept apart, preferably (a one-node cluster still runs them all)
    pod = patch["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    # a not-Ready pod never holds a drain up
    assert _docs(files, "overlays/prod/app/pdb.yaml")["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    ingress = _docs(files, "overlays/prod/app/ingress.yaml")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    assert ingress["spec"]["tls"] == [{"hosts": ["litellm.example.com"], "secretName": "litellm-tls"}]


def test_pod_settings_reach_every_pod_and_replace_the_default_spread() -> None:
    spread = {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
              "minDomains": 2, "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}}
    site = _site(replicas=3, discovery={"platformScaling": False}, redis={"enabled": True}, pod={
        "nodeSelector": {"kubernetes.io/os": "linux"}, "imagePullSecrets": ["harbor-pull"],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": affinity, "topologySpreadConstraints": [spread],
        "annotations": {"prometheus.io/scrape": "true"}, "labels": {"team": "ai"}})
    files = render_site("prod", site)
    template = _docs(files, "overlays/prod/app/deployment-patch.yaml")["spec"]["template"]
    job = _docs(files, "overlays/prod/migrate/job.yaml")["spec"]["template"]
    for pod in (template["spec"], job["spec"]):
        assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
        assert pod["imagePullSecrets"] == [{"name": "harbor-pull"}]
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert template["spec"]["affinity"] == affinity  # the site's, instead of the default anti-affinity
    assert template["spec"]["topologySpreadConstraints"] == [spread]
    assert "affinity" not in job["spec"]
    assert template["metadata"] == {"labels": {"team": "ai"}, "annotations": {"prometheus.io/scrape": "true"}}
    assert job["metadata"]["labels"] == {"team": "ai", "app": "litellm-migrate"}


def test_extra_env_takes_literals_secret_keys_and_whole_sources() -> None:
    site = _site(extraEnv={"LITELLM_LOG": "INFO", "LANGFUSE_SECRET_KEY": {"secret": "langfuse", "key": "secret-key"},
                           "OPTIONAL_TOKEN": {"secret": "tokens", "key": "t", "optional": True}},
                 extraEnvFrom=[{"configMapRef": "team-env", "prefix": "TEAM_"}, {"secretRef": "provider-keys"}])
    env = {e["name"]: e for e in site_env(site)}
    assert env["LITELLM_LOG"] == {"name": "LITELLM_LOG", "value": "INFO"}
    assert env["LANGFUSE_SECRET_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "langfuse", "key": "secret-key"}}
    assert env["OPTIONAL_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    container = _docs(render_site("prod", site), "overlays/prod/app/deployment-patch.yaml")[
        "spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "team-env"}, "prefix": "TEAM_"},
                                    {"secretRef": {"name": "provider-keys"}}]


def test_persistence_runs_one_pod_that_is_recreated() -> None:
    files = render_site("prod", _site(persistence={"enabled": True}))
    assert _docs(files, "overlays/prod/app/pvc.yaml")["spec"]["accessModes"] == ["ReadWriteOnce"]
    patch = _docs(files, "overlays/prod/app/deployment-patch.yaml")
    assert patch["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": None}  # a surge pod elsewhere would wait for the volume
    assert "topologySpreadConstraints" not in patch["spec"]["template"]["spec"]


def test_one_pod_is_not_spread() -> None:
    pod = _docs(render_site("prod", _site()), "overlays/prod/app/deployment-patch.yaml")["spec"]["template"]["spec"]
    assert "affinity" not in pod and "topologySpreadConstraints" not in pod
    assert "strategy" not in _docs(render_site("prod", _site()), "overlays/prod/app/deployment-patch.yaml")["spec"]


def test_model_keys_and_pass_through_secrets_become_secret_refs() -> None:
    site = _site(models=[{"name": "gpt", "model": "openai/gpt-4o", "apiKeySecret": "OPENAI_API_KEY"}],
                 passThroughEndpoints=[{"path": "/langfuse", "target": "https://langfuse.example.com",
                                        "headers": {"Authorization": {"secretKey": "LANGFUSE_AUTH"}}}])
    files = render_site("prod", site)
    config = _docs(files, "overlays/prod/app/config.yaml")
    assert config["model_list"][0]["litellm_params"]["api_key"] == "os.environ/OPENAI_API_KEY"
    endpoint = config["general_settings"]["pass_through_endpoints"][0]
    assert endpoint["headers"] == {"Authorization": "os.environ/LANGFUSE_AUTH"}
    assert endpoint["auth"] is True
    env = {e["name"]: e for e in site_env(site)}
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "OPENAI_API_KEY"
    assert env["LANGFUSE_AUTH"]["valueFrom"]["secretKeyRef"]["key"] == "LANGFUSE_AUTH"
    assert site.secret_keys()[-2:] == ["OPENAI_API_KEY", "LANGFUSE_AUTH"]


def test_cache_off_drops_s3_settings_and_secrets() -> None:
    site = _site(cache={"enabled": False})
    config = _docs(render_site("prod", site), "overlays/prod/app/config.yaml")
    assert {k: v for k, v in config["litellm_settings"].items() if k.startswith("cache")} == {"cache": False}
    assert not any(e["name"].startswith("S3_") for e in site_env(site))
    assert "S3_AWS_ACCESS_KEY_ID" not in site.secret_keys()


def test_flux_and_argocd_entry_points() -> None:
    files = render_site("prod", _site())
    setup, migrate, flux = yaml.safe_load_all(files["deploy/flux/prod/litellm.yaml"])
    assert flux["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert flux["spec"]["path"] == "./overlays/prod/app" and flux["spec"]["prune"] is True
    assert "wait" not in flux["spec"] and flux["spec"]["healthChecks"][0]["kind"] == "Deployment"
    assert [setup["spec"]["path"], migrate["spec"]["path"]] == ["./overlays/prod/setup", "./overlays/prod/migrate"]
    app = _docs(files, "deploy/argocd/prod/application.yaml")
    assert app["spec"]["syncPolicy"] == {"automated": {"prune": True, "selfHeal": True},
                                         "syncOptions": ["CreateNamespace=true", "RespectIgnoreDifferences=true"]}
    disabled = render_site("prod", _site(gitops={"flux": {"enabled": False}, "argocd": {"enabled": False}}))
    assert not any(p.startswith("deploy/") for p in disabled)


def test_published_json_schema_is_current_and_checks_site_files() -> None:
    import json

    import jsonschema

    from generator.site_schema import SCHEMA_PATH, schema_bytes
    from tests.helpers import PROJECT

    assert (PROJECT / SCHEMA_PATH).read_bytes() == schema_bytes(), "run 'generator schema'"
    schema = json.loads(schema_bytes())
    prod = yaml.safe_load((PROJECT / "sites/prod/site.yaml").read_text())
    jsonschema.validate(prod, schema)
    with_typo = {**prod, "replica": 2}
    try:
        jsonschema.validate(with_typo, schema)
    except jsonschema.ValidationError as exc:
        assert "replica" in exc.message
    else:
        raise AssertionError("the schema accepted an unknown key")
