"""The playbooks' objects as site settings and secret values (pure: no file, no process).

Only what differs from the defaults becomes a setting; what the model does differently on purpose (a flaw of
the original the defaults fix) is a ``changed`` note; what the model cannot carry is ``left`` behind, with
where it was read. LiteLLM's own ``config.yaml`` is mapped by ``config_map``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from generator.adopt.config_map import map_config
from generator.adopt.originals import SECRET, Found, Originals
from generator.adopt.result import Adoption
from generator.errors import SiteError
from generator.model import (BOOTSTRAP_SECRET_KEYS, GENERATED_SECRET_KEYS, MANAGED_ENV, S3_SECRET_KEYS,
                             SECRET_KEY_RE, GatewayRef, HttpRoute, Ingress, Keycloak, Postgres, Resources, S3)
from generator.model.workload import image_registry

# env the tree sets from litellm-secrets -> the key of litellm-secrets it reads
SECRET_ENV = {"LITELLM_MASTER_KEY": "LITELLM_MASTER_KEY", "LITELLM_SALT_KEY": "LITELLM_SALT_KEY",
              "UI_PASSWORD": "ADMIN_PASSWORD", "DATABASE_URL": "DATABASE_URL", "GENERIC_CLIENT_SECRET": "CLIENT_SECRET",
              "S3_AWS_ACCESS_KEY_ID": "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY": "S3_AWS_SECRET_ACCESS_KEY"}
NO_OPS = {"ALLOWED_IPS": "", "DROP_PARAMS": "False", "LITELLM_PROXY_ADMIN_ROLE": None}  # None: mapped on its own
OIDC = re.compile(r"^(?P<url>https?://[^/\s]+(?:/[^\s]*?)?)/realms/(?P<realm>[^/\s]+)/protocol/openid-connect/auth$")
THINKUBE_DEFAULT_PRIORITY = "thinkube-workload"  # the cluster's globalDefault: naming it changes nothing
IMAGE_NAME = "litellm-non_root"
PLAYBOOK_INIT = {"wait-for-postgres", "wait-for-seaweedfs", "init-db"}
# Keys of the playbooks' Secret that are settings, not secrets: the site file carries them (s3.*, ui.username) and
# the pod gets them as plain values; kept in sops they would be plaintext in the tree, which `audit` refuses.
SETTINGS_KEYS = {"S3_BUCKET_NAME": "s3.bucket", "S3_REGION_NAME": "s3.region", "S3_ENDPOINT_URL": "s3.endpoint",
                 "ADMIN_USERNAME": "ui.username"}


def adopt_objects(originals: Originals) -> Adoption:
    result = Adoption()
    env, refs = _env(originals.deployment, result)
    host = _routing(originals, env, result)
    domain, hostname = _domain(host, env.get("GENERIC_AUTHORIZATION_ENDPOINT"))
    result.set(("domain",), domain, f"the domain of {host}")
    result.set(("hostname",), hostname, "the original's host (PROXY_BASE_URL and the route)")
    result.set(("namespace",), originals.namespace, "the namespace the playbooks deployed into")
    result.set(("keepNamespace",), True, "it holds the original's PVC: no engine deletes it, even with the site")
    values = originals.secret_values()
    _secrets(originals, values, refs, result)
    _identity(originals, env, values, refs, domain, result)
    _workload(originals.deployment, domain, result)
    _data(originals, env, values, refs, result)
    map_config(originals, set(values) | set(env) | set(refs), result)
    _extra_env(originals.deployment, env, refs, result)
    _discovery(originals.discovery, result)
    return result


def _container(deployment: Found) -> tuple[dict, int]:
    containers = deployment.get("spec", "template", "spec", "containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise deployment.error("no containers", "spec", "template", "spec", "containers")
    index = next((i for i, c in enumerate(containers) if c.get("name") == "litellm"), 0)
    return containers[index], index


def _env(deployment: Found, result: Adoption) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Literal env values, and env read from a Secret: name -> (secret, key)."""
    container, index = _container(deployment)
    path = ("spec", "template", "spec", "containers", index, "env")
    entries = container.get("env") or []
    if not isinstance(entries, list):
        raise deployment.error("expected a list of env entries", *path)
    literal: dict[str, str] = {}
    refs: dict[str, tuple[str, str]] = {}
    for position, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise deployment.error("an env entry without a name", *path, position)
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef") if isinstance(entry.get("valueFrom"), dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("name"), str) and isinstance(ref.get("key"), str):
            refs[name] = (ref["name"], ref["key"])
        elif "valueFrom" in entry:
            result.leave(deployment.where(*path, position), f"env {name}: a valueFrom the site cannot express")
        else:
            literal[name] = "" if entry.get("value") is None else str(entry.get("value"))
    return literal, refs


def _routing(originals: Originals, env: dict[str, str], result: Adoption) -> str:
    base = urlsplit(env.get("PROXY_BASE_URL", "")).hostname
    route, ingress = originals.httproute, originals.ingress
    if route is not None:
        hosts = route.get("spec", "hostnames")
        if not isinstance(hosts, list) or not hosts or not isinstance(hosts[0], str):
            raise route.error("no hostnames", "spec", "hostnames")
        parent = route.get("spec", "parentRefs", 0) or {}
        default = GatewayRef()
        for key, value, wanted in (("name", parent.get("name"), default.name),
                                   ("namespace", parent.get("namespace"), default.namespace),
                                   ("sectionName", parent.get("sectionName"), default.section_name)):
            if value is not None and value != wanted:
                result.set(("routing", "httproute", "gateway", key), value, "the original HTTPRoute's Gateway")
        timeout = route.get("spec", "rules", 0, "timeouts", "request")
        if isinstance(timeout, str) and timeout != HttpRoute().request_timeout:
            result.set(("routing", "httproute", "requestTimeout"), timeout, "the original route's request timeout")
        return hosts[0]
    if ingress is not None:
        host = ingress.get("spec", "rules", 0, "host")
        if not isinstance(host, str):
            raise ingress.error("no host", "spec", "rules", 0, "host")
        result.set(("routing", "type"), "ingress", "the original serves through an Ingress")
        klass = ingress.get("spec", "ingressClassName") or ingress.get("metadata", "annotations",
                                                                        "kubernetes.io/ingress.class")
        result.set(("routing", "ingress", "className"), str(klass or Ingress().class_name), "the original's class")
        tls = ingress.get("spec", "tls", 0, "secretName")
        if isinstance(tls, str):
            result.set(("routing", "ingress", "tlsSecretName"), tls, "the certificate the original Ingress serves")
        found = ingress.get("metadata", "annotations")
        annotations = dict(found) if isinstance(found, dict) else {}
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        if annotations and annotations != Ingress().annotations:
            result.set(("routing", "ingress", "annotations"), {str(k): str(v) for k, v in annotations.items()},
                       "the original Ingress's annotations")
        return host
    if not base:
        raise originals.deployment.error("no route and no PROXY_BASE_URL: the proxy's host is unknown", "spec")
    result.change(originals.deployment.where(), f"no HTTPRoute or Ingress found: the tree adds the HTTPRoute "
                  f"litellm-route for {base}")
    return base


def _domain(host: str, authorization: str | None) -> tuple[str, str]:
    if host.startswith("litellm."):
        return host.removeprefix("litellm."), host
    auth = urlsplit(OIDC.match(authorization).group("url")).hostname if authorization and OIDC.match(authorization) else None
    if auth and auth.startswith("auth."):
        return auth.removeprefix("auth."), host
    return host.partition(".")[2] or host, host


def _secrets(originals: Originals, values: dict[str, str], refs: dict[str, tuple[str, str]], result: Adoption) -> None:
    """Every secret of litellm-secrets into sops, unchanged; the settings the playbooks kept there go to the site
    file; the keys the tree reads under another name than the original's env did are added under the tree's name."""
    secret = originals.secret
    moved = sorted(k for k in SETTINGS_KEYS if k in values)
    if moved:
        result.change(secret.where("data"), f"{', '.join(moved)}: settings, not secrets: the site file carries them "
                      f"({', '.join(SETTINGS_KEYS[k] for k in moved)}) and the pod gets the same values in plain env")
    for key, value in values.items():
        if key in SETTINGS_KEYS:
            continue
        if not SECRET_KEY_RE.match(key):
            result.leave(secret.where("data", key), f"key {key!r} of {SECRET}: sops keys are UPPER_SNAKE_CASE")
        elif not value:
            result.leave(secret.where("data", key), f"key {key} of {SECRET} is empty: nothing to carry")
        else:
            result.secrets[key] = value
    for env_name, key in SECRET_ENV.items():
        source = refs.get(env_name)
        if source and source[0] == SECRET and source[1] != key and source[1] in values:
            result.secrets[key] = values[source[1]]
    for key in (*GENERATED_SECRET_KEYS, *BOOTSTRAP_SECRET_KEYS):
        if key not in result.secrets:
            raise SiteError(secret.shown, f"has no {key}: the adopted site must keep the original's value "
                            "(a new one would lose data or access); is this the playbooks' Secret?",
                            field=f"{secret.ident} data.{key}", line=secret.line("data"))


def _identity(originals: Originals, env: dict[str, str], values: dict[str, str], refs: dict[str, tuple[str, str]],
              domain: str, result: Adoption) -> None:
    where = originals.deployment.where()
    keycloak = Keycloak()
    found = OIDC.match(env.get("GENERIC_AUTHORIZATION_ENDPOINT", ""))
    if found:
        if found.group("url").rstrip("/") != f"https://auth.{domain}":
            result.set(("keycloak", "url"), found.group("url"), "the original's Keycloak")
        if found.group("realm") != keycloak.realm:
            result.set(("keycloak", "realm"), found.group("realm"), "the original's realm")
    simple = (("GENERIC_CLIENT_ID", ("keycloak", "clientId"), keycloak.client_id),
              ("GENERIC_SCOPE", ("keycloak", "scope"), keycloak.scope),
              ("PROXY_ADMIN_ID", ("keycloak", "proxyAdmin"), keycloak.proxy_admin),
              ("LITELLM_PROXY_ADMIN_ROLE", ("keycloak", "adminRole"), keycloak.admin_role))
    for name, path, default in simple:
        if env.get(name) not in (None, default):
            result.set(path, env[name], f"the original's {name}")
    if env.get("GENERIC_USER_ROLE_ATTRIBUTE") not in (None, keycloak.claims.role):
        result.change(where, f"GENERIC_USER_ROLE_ATTRIBUTE {env['GENERIC_USER_ROLE_ATTRIBUTE']}: the tree reads the "
                      f"LiteLLM role from {keycloak.claims.role!r}, which bootstrap's mapper fills from the realm roles")
    user_id = env.get("GENERIC_USER_ID_ATTRIBUTE")
    if user_id not in (None, keycloak.claims.user_id):
        result.change(where, f"GENERIC_USER_ID_ATTRIBUTE {user_id}: the tree names a user by the Keycloak id "
                      f"({keycloak.claims.user_id}), a name nobody else can take; the SSO users LiteLLM recorded under "
                      f"their {user_id} get a new record at their next sign-in (their keys stay with the old one)")
    if env.get("GENERIC_USER_EMAIL_ATTRIBUTE"):
        result.change(where, "GENERIC_USER_EMAIL_ATTRIBUTE: left out (LiteLLM links accounts by an unverified "
                      "email); set keycloak.claims.email if the realm guarantees verified, unique emails")
    user = env.get("UI_USERNAME")
    if user is None and refs.get("UI_USERNAME", ("", ""))[0] == SECRET:
        user = values.get(refs["UI_USERNAME"][1])
    if user and user != "admin":
        result.set(("ui", "username"), user, "the original's UI_USERNAME")
        result.set(("keycloak", "adminUsers"), [user], "the user the playbooks gave AI_ADMIN")
    s3_key = values.get("S3_AWS_ACCESS_KEY_ID")
    if s3_key and s3_key in (user, env.get("PROXY_ADMIN_ID")):
        result.change(originals.secret.where("data", "S3_AWS_ACCESS_KEY_ID"), "S3_AWS_ACCESS_KEY_ID is the admin's "
                      "user name, which the pod also shows in plain env: `generator audit` reports it once it is 8 "
                      "characters or more; give LiteLLM an S3 identity of its own")
    if user:
        result.change(where, "UI_USERNAME/UI_PASSWORD login: off (ui.passwordLogin: false), a proxy admin without "
                      "Keycloak; the password stays in the Secret")


def _workload(deployment: Found, domain: str, result: Adoption) -> None:
    container, index = _container(deployment)
    pod = ("spec", "template", "spec")
    image = container.get("image")
    registry = f"registry.{domain}"
    if isinstance(image, str):
        name = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
        host, project = image_registry(name), "/".join(name.split("/")[1:-1]) or "library"
        if host != "docker.io" and (host, project) != (registry, "library"):
            result.set(("image", "repository"), f"{host}/{project}/{IMAGE_NAME}", "the original's registry mirror")
        result.change(deployment.where(*pod, "containers", index, "image"),
                      f"image {image}: the tree runs the non-root image at a pinned release; mirror "
                      f"ghcr.io/berriai/{IMAGE_NAME} there before the first sync")
    resources = container.get("resources")
    if isinstance(resources, dict) and resources:
        try:
            found = Resources.model_validate(resources)
        except ValueError:
            result.leave(deployment.where(*pod, "containers", index, "resources"), "resources the model cannot read")
        else:
            if found != Resources():
                result.set(("resources",), found.model_dump(), "the original's requests and limits")
    priority = deployment.get(*pod, "priorityClassName")
    if isinstance(priority, str) and priority != THINKUBE_DEFAULT_PRIORITY:
        result.set(("priorityClassName",), priority, "the original's PriorityClass")
    selector = deployment.get(*pod, "nodeSelector")
    if isinstance(selector, dict) and selector:
        result.set(("pod", "nodeSelector"), {str(k): str(v) for k, v in selector.items()}, "the original's")
    for field in ("tolerations", "affinity", "topologySpreadConstraints", "imagePullSecrets", "hostAliases"):
        if deployment.get(*pod, field):
            result.leave(deployment.where(*pod, field), f"pod {field}: not carried; set pod.{field} by hand")
    for position, init in enumerate(deployment.get(*pod, "initContainers") or []):
        name = init.get("name") if isinstance(init, dict) else None
        if name not in PLAYBOOK_INIT:
            result.leave(deployment.where(*pod, "initContainers", position), f"init container {name}: not carried")
    if deployment.get(*pod, "initContainers"):
        result.change(deployment.where(*pod, "initContainers"), "init containers: the tree waits for PostgreSQL and "
                      "S3 with the site's own image; init-db (database, grants, owner) is bootstrap's work")
    for position, other in enumerate(deployment.get(*pod, "containers") or []):
        if position != index:
            result.leave(deployment.where(*pod, "containers", position), f"container {other.get('name')}: not carried")
    for position, volume in enumerate(deployment.get(*pod, "volumes") or []):
        if isinstance(volume, dict) and volume.get("name") not in ("config", "data"):
            result.leave(deployment.where(*pod, "volumes", position), f"volume {volume.get('name')}: not carried")


def _data(originals: Originals, env: dict[str, str], values: dict[str, str], refs: dict[str, tuple[str, str]],
          result: Adoption) -> None:
    def value_of(name: str) -> str | None:
        if name in env:
            return env[name]
        secret, key = refs.get(name, ("", ""))
        return values.get(key) if secret == SECRET else None

    s3 = S3()
    for name, key, default in (("S3_BUCKET_NAME", "bucket", s3.bucket), ("S3_REGION_NAME", "region", s3.region),
                               ("S3_ENDPOINT_URL", "endpoint", s3.endpoint)):
        value = value_of(name)
        if value and value != default:
            result.set(("s3", key), value, f"the original's {name}")
    url = values.get("DATABASE_URL", "")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    where = originals.secret.where("data", "DATABASE_URL")
    if parts is None or parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        result.change(where, "DATABASE_URL is not a postgresql:// URL: postgres.* stay at their defaults (the value "
                      "is carried unchanged)")
        return
    postgres = Postgres()
    for key, value, default in (("host", parts.hostname, postgres.host), ("port", port or 5432, postgres.port),
                                ("database", parts.path.lstrip("/"), postgres.database)):
        if value and value != default:
            result.set(("postgres", key), value, "as DATABASE_URL names it")
    if parts.username and parts.username != postgres.role:
        # bootstrap's contract (docs/database.md): the admin login stays the admin's; the site's role is its own
        result.change(where, f"DATABASE_URL logs in as another role than postgres.role ({postgres.role}), the "
                      "playbooks' admin login: postgres.role stays the default; bootstrap gives LiteLLM that role of "
                      "its own, the database and its tables (every row kept) and rewrites DATABASE_URL")


def _extra_env(deployment: Found, env: dict[str, str], refs: dict[str, tuple[str, str]], result: Adoption) -> None:
    """Env the model has no field for: a literal or another Secret's key becomes extraEnv."""
    handled = set(MANAGED_ENV) | set(NO_OPS) | {"LITELLM_PROXY_ADMIN_ROLE", "DISABLE_SCHEMA_UPDATE"}
    models = next((s.value for s in result.settings if s.path == ("models",)), [])
    model_keys = {m.get("apiKeySecret") for m in models}
    for name, value in env.items():
        if name in NO_OPS and NO_OPS[name] is not None and value != NO_OPS[name]:
            result.set(("extraEnv", name), value, f"the original's {name}")
        elif name not in handled:
            result.set(("extraEnv", name), value, f"the original's {name}")
    for name, (secret, key) in refs.items():
        if name in handled or (secret == SECRET and name in model_keys):
            continue
        result.set(("extraEnv", name), {"secret": secret, "key": key}, f"the original's {name}"
                   + ("" if secret == SECRET else f" (Secret {secret} is not the tree's: keep it)"))


def _discovery(discovery: Found | None, result: Adoption) -> None:
    if discovery is None:
        return
    version = discovery.get("metadata", "labels", "thinkube.io/component-version")
    if isinstance(version, str) and re.match(r"^\d+\.\d+\.\d+$", version) and version != "0.1.0":
        result.set(("discovery", "componentVersion"), version, "the original's component version")
    text = discovery.get("data", "service.yaml")
    if isinstance(text, str) and "LITELLM_MASTER_KEY" in text:
        result.change(discovery.where("data", "service.yaml"),
                      "the master key was in this ConfigMap in plain text: the tree exports it only by reference, with "
                      "discovery.exportMasterKey: true; whoever could read ConfigMaps there had it")


def required_s3(adoption: Adoption) -> list[str]:
    return [k for k in S3_SECRET_KEYS if k not in adoption.secrets]
