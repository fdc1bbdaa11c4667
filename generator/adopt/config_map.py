"""LiteLLM's ``config.yaml`` of the ConfigMap ``litellm-config`` as site settings (pure).

Each key the model has becomes a setting when it differs from the default; a key it lacks is left behind with
the line it was on (the line of the dump when the config is a block scalar there, else its line in config.yaml).
A config that is not YAML, or not a mapping, is bad input: exit 2.
"""

from __future__ import annotations

from typing import Any

from generator.adopt.originals import CONFIG_KEY, Originals
from generator.adopt.result import Adoption
from generator.errors import SiteError
from generator.inputs import YamlLimitExceeded, check_yaml_limits, kind_of
from generator.model import Cache, GeneralSettings, PassThroughEndpoint, RouterSettings
from generator.yamlio import YamlSyntaxError, line_of, load_with_lines

ENV_REFS = {"master_key": "os.environ/LITELLM_MASTER_KEY", "salt_key": "os.environ/LITELLM_SALT_KEY"}
GENERAL = {"proxy_batch_write_at": "proxyBatchWriteAt", "disable_spend_logs": "disableSpendLogs",
           "ui_access_mode": "uiAccessMode", "database_connection_pool_limit": "databaseConnectionPoolLimit"}
CACHE_ENV = {"s3_bucket_name": "S3_BUCKET_NAME", "s3_region_name": "S3_REGION_NAME",
             "s3_endpoint_url": "S3_ENDPOINT_URL", "s3_aws_access_key_id": "S3_AWS_ACCESS_KEY_ID",
             "s3_aws_secret_access_key": "S3_AWS_SECRET_ACCESS_KEY"}
MODEL_PARAMS = {"model": "model", "api_base": "apiBase", "rpm": "rpm", "tpm": "tpm", "timeout": "timeout",
                "max_tokens": "maxTokens"}
ROUTER = {"routing_strategy": "routingStrategy", "num_retries": "numRetries", "timeout": "timeout",
          "retry_after": "retryAfter", "allowed_fails": "allowedFails", "cooldown_time": "cooldownTime"}
ENV_PREFIX = "os.environ/"


class _Where:
    """file:line of a node of config.yaml."""

    def __init__(self, originals: Originals, tree: Any) -> None:  # noqa: ANN401
        self.found, self.tree = originals.config, tree
        self.start = originals.config.text_start(CONFIG_KEY)

    def line(self, inner: int | None) -> str:
        if inner is not None and self.start is not None:
            return f"{self.found.shown}:{self.start + inner - 1}"
        suffix = f":{inner}" if inner is not None else ""
        return f"{self.found.shown} ({self.found.ident}, {CONFIG_KEY}{suffix})"

    def __call__(self, *path: Any) -> str:
        return self.line(line_of(self.tree, path))


def parse_config(originals: Originals) -> tuple[dict, _Where]:
    text = originals.config_text()
    found = originals.config
    where = _Where(originals, None)
    try:
        check_yaml_limits(text)
        tree = load_with_lines(text)
    except (YamlSyntaxError, YamlLimitExceeded) as exc:
        located = where.line(exc.line)
        raise SiteError(located, f"{CONFIG_KEY} of {found.ident}: {exc.problem}") from None
    if not isinstance(tree, dict):
        raise SiteError(where.line(1), f"{CONFIG_KEY} of {found.ident}: expected LiteLLM's config (a mapping), "
                                       f"found {kind_of(tree)}")
    where.tree = tree
    return tree, where


def map_config(originals: Originals, env_names: set[str], result: Adoption) -> None:
    tree, where = parse_config(originals)
    for key in tree:
        handler = _TOP.get(key)
        if handler is None:
            result.leave(where(key), f"{key}: not a setting the site model has")
        else:
            handler(tree[key], where, env_names, result)


def _database_url(value: Any, where: _Where, env: set[str], result: Adoption) -> None:  # noqa: ANN401
    if value != "os.environ/DATABASE_URL":
        result.leave(where("database_url"), "database_url: the tree reads DATABASE_URL from litellm-secrets only")


def _general(value: Any, where: _Where, env: set[str], result: Adoption) -> None:  # noqa: ANN401
    if not isinstance(value, dict):
        result.leave(where("general_settings"), f"general_settings: expected a mapping, found {kind_of(value)}")
        return
    defaults = GeneralSettings()
    for key, item in value.items():
        at = where("general_settings", key)
        if key in ENV_REFS:
            if item != ENV_REFS[key]:
                result.leave(at, f"general_settings.{key}: the tree reads it from litellm-secrets "
                             f"({ENV_REFS[key]}); this config did not")
        elif key in GENERAL:
            if item != getattr(defaults, _snake(GENERAL[key])):
                result.set(("generalSettings", GENERAL[key]), item, f"config.yaml general_settings.{key}")
        elif key == "allow_requests_on_db_unavailable":
            if item is True:
                result.change(at, "allow_requests_on_db_unavailable: true lets any bearer token in while the "
                              "database is down; off in the tree (generalSettings.allowRequestsOnDbUnavailable)")
        elif key == "pass_through_endpoints":
            _pass_through(item, where, result)
        else:
            result.leave(at, f"general_settings.{key}: not a setting the site model has")


def _pass_through(value: Any, where: _Where, result: Adoption) -> None:  # noqa: ANN401
    endpoints = []
    for index, entry in enumerate(value if isinstance(value, list) else []):
        at = where("general_settings", "pass_through_endpoints", index)
        if not isinstance(entry, dict):
            result.leave(at, "pass-through endpoint: expected a mapping")
            continue
        unknown = sorted(set(entry) - {"path", "target", "forward_headers", "headers", "auth"})
        headers = entry.get("headers") or {}
        if unknown or not isinstance(headers, dict) or any(not isinstance(v, str) for v in headers.values()):
            result.leave(at, f"pass-through endpoint {entry.get('path')}: "
                         f"{'keys ' + ', '.join(unknown) if unknown else 'headers'} the model cannot carry")
            continue
        if any(v.startswith(ENV_PREFIX) for v in headers.values()) or any(
                not v.startswith(ENV_PREFIX) and k.lower() in ("authorization", "x-api-key") for k, v in headers.items()):
            result.leave(at, f"pass-through endpoint {entry.get('path')}: a header holding a credential; store it "
                         "with generator secrets set and name it as {secretKey: KEY}")
            continue
        item = {"path": entry.get("path"), "target": entry.get("target")}
        if entry.get("forward_headers"):
            item["forwardHeaders"] = True
        if headers:
            item["headers"] = dict(headers)
        try:
            PassThroughEndpoint.model_validate({**item, "auth": True})
        except ValueError as exc:
            result.leave(at, f"pass-through endpoint: {str(exc).splitlines()[-1].strip()}")
            continue
        if entry.get("auth") is not True:
            result.change(at, f"pass-through endpoint {entry.get('path')}: LiteLLM's auth is on in the tree "
                          "(auth: true); the original let anyone reach the target through the proxy")
        endpoints.append(item)
    if endpoints:
        result.set(("passThroughEndpoints",), endpoints, "config.yaml general_settings.pass_through_endpoints")


def _litellm_settings(value: Any, where: _Where, env: set[str], result: Adoption) -> None:  # noqa: ANN401
    if not isinstance(value, dict):
        result.leave(where("litellm_settings"), f"litellm_settings: expected a mapping, found {kind_of(value)}")
        return
    defaults = Cache()
    for key, item in value.items():
        at = where("litellm_settings", key)
        if key == "cache":
            if item is False:
                result.set(("cache", "enabled"), False, "config.yaml litellm_settings.cache")
        elif key == "cache_params" and isinstance(item, dict):
            for param, setting in item.items():
                inner = where("litellm_settings", "cache_params", param)
                if param == "type" and setting != "s3":
                    result.leave(inner, f"cache type {setting}: the tree caches in S3 only")
                elif param in CACHE_ENV and setting != f"{ENV_PREFIX}{CACHE_ENV[param]}":
                    result.leave(inner, f"cache_params.{param}: the tree reads it from {CACHE_ENV[param]}")
                elif param == "supported_call_types" and setting != defaults.call_types:
                    result.set(("cache", "callTypes"), list(setting or []), "config.yaml supported_call_types")
                elif param == "ttl" and setting != defaults.ttl:
                    result.set(("cache", "ttl"), setting, "config.yaml cache_params.ttl")
                elif param not in CACHE_ENV and param not in ("type", "supported_call_types", "ttl"):
                    result.leave(inner, f"cache_params.{param}: not a setting the site model has")
        else:
            result.leave(at, f"litellm_settings.{key}: not a setting the site model has")


def _models(value: Any, where: _Where, env: set[str], result: Adoption) -> None:  # noqa: ANN401
    models = []
    for index, entry in enumerate(value if isinstance(value, list) else []):
        at = where("model_list", index)
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        name = entry.get("model_name") if isinstance(entry, dict) else None
        if not isinstance(params, dict) or not isinstance(name, str):
            result.leave(at, "model: expected model_name and litellm_params")
            continue
        extra = sorted(set(params) - set(MODEL_PARAMS) - {"api_key"}) + sorted(set(entry) - {"model_name", "litellm_params"})
        if extra:
            result.leave(at, f"model {name}: {', '.join(extra)} not carried; the model is left out")
            continue
        item: dict[str, Any] = {"name": name, **{MODEL_PARAMS[k]: v for k, v in params.items() if k in MODEL_PARAMS}}
        key = params.get("api_key")
        if isinstance(key, str) and key.startswith(ENV_PREFIX):
            secret = key.removeprefix(ENV_PREFIX)
            if secret not in env:
                result.leave(at, f"model {name}: reads {key}, which the original pod never had (the playbook's "
                             "placeholder?); add the model in the UI, or store the key with generator secrets set "
                             "and list the model in the site file")
                continue
            item["apiKeySecret"] = secret
        elif key is not None:
            result.leave(at, f"model {name}: an API key in plain text in the ConfigMap; store it with generator "
                         "secrets set and name it in apiKeySecret")
            continue
        models.append(item)
    if models:
        result.set(("models",), models, "config.yaml model_list")
    if value and not isinstance(value, list):
        result.leave(where("model_list"), f"model_list: expected a list, found {kind_of(value)}")


def _router(value: Any, where: _Where, env: set[str], result: Adoption) -> None:  # noqa: ANN401
    for key, item in (value.items() if isinstance(value, dict) else []):
        at = where("router_settings", key)
        if key in ROUTER:
            result.set(("router", ROUTER[key]), item, f"config.yaml router_settings.{key}")
        elif key in ("fallbacks", "context_window_fallbacks") and isinstance(item, list) and all(
                isinstance(f, dict) and len(f) == 1 for f in item):
            field = "fallbacks" if key == "fallbacks" else "contextWindowFallbacks"
            result.set(("router", field), [{"model": m, "to": to} for f in item for m, to in f.items()],
                       f"config.yaml router_settings.{key}")
        else:
            result.leave(at, f"router_settings.{key}: not a setting the site model has")
    try:
        RouterSettings.model_validate(result.tree().get("router", {}))
    except ValueError as exc:
        result.settings = [s for s in result.settings if s.path[0] != "router"]
        result.leave(where("router_settings"), f"router_settings: {str(exc).splitlines()[-1].strip()}")


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


_TOP = {"database_url": _database_url, "general_settings": _general, "litellm_settings": _litellm_settings,
        "model_list": _models, "router_settings": _router}
