"""LiteLLM's config.yaml for one site (the ConfigMap litellm-config).

Flaw 6 of the original is fixed: database_url sits under general_settings. Every secret is an
``os.environ/NAME`` reference resolved inside the pod; no value is ever written here.
"""

from __future__ import annotations

from typing import Any

from generator.model import SecretHeader, Site


def environ(name: str) -> str:
    return f"os.environ/{name}"


def litellm_config(site: Site) -> dict[str, Any]:
    config: dict[str, Any] = {"model_list": [_model(entry) for entry in site.models]}
    general = site.general_settings
    settings: dict[str, Any] = {
        "master_key": environ("LITELLM_MASTER_KEY"),
        "database_url": environ("DATABASE_URL"),
        "database_connection_pool_limit": general.database_connection_pool_limit,
        "proxy_batch_write_at": general.proxy_batch_write_at,
        "allow_requests_on_db_unavailable": general.allow_requests_on_db_unavailable,
        "ui_access_mode": general.ui_access_mode,
        "disable_password_login_when_sso_enabled": not site.ui.password_login,
        "disable_spend_logs": general.disable_spend_logs,
        "store_model_in_db": general.store_model_in_db,
    }
    if site.pass_through_endpoints:
        settings["pass_through_endpoints"] = [_pass_through(e) for e in site.pass_through_endpoints]
    if site.drain.enabled:
        # the token comes from DRAIN_ENDPOINT_TOKEN in the pod's env (a secretKeyRef), never from here
        settings["enable_drain_endpoint"] = True
    if site.redis.enabled:
        # key and team rate limits, budgets, spend counters: shared by every pod (fails loudly when unreachable)
        settings["coordination_redis"] = _redis(site, "host", "port", "password", "ssl")
    if site.jwt_auth.enabled:
        settings["enable_jwt_auth"] = True
        settings["litellm_jwtauth"] = _jwt_settings(site)
        # enforce_rbac: a token must be a proxy admin's (the admin scope) or an allowed role's; a user's token
        # may call the model API and read its own info, nothing else (checked before any database lookup)
        settings["role_permissions"] = [{"role": "internal_user", "routes": ["llm_api_routes", "info_routes"]}]
    config["general_settings"] = settings
    config["litellm_settings"] = {**_cache_settings(site), **_callbacks(site), **_user_defaults(site)}
    router = _router_settings(site)
    if site.redis.enabled:
        # the router's usage counters (a model's rpm/tpm, cooldowns) in the same Redis
        router.update(_redis(site, "redis_host", "redis_port", "redis_password", None))
        if site.redis.tls:
            router["cache_kwargs"] = {"ssl": True}
    if router:
        config["router_settings"] = router
    return config


def _user_defaults(site: Site) -> dict[str, Any]:
    """A new user's record (LiteLLM 1.108.7 applies these when SSO, /user/new or JWT upsert creates it): a user
    whose token names no LiteLLM role is a viewer; an internal user's own keys are held to the site's budget."""
    users = site.users
    return {
        "default_internal_user_params": {"user_role": "internal_user_viewer",
                                         "models": list(users.models) or ["no-default-models"],
                                         "max_budget": users.max_budget, "budget_duration": users.budget_duration},
        "max_internal_user_budget": users.max_budget,
        "internal_user_budget_duration": users.budget_duration,
    }


def _router_settings(site: Site) -> dict[str, Any]:
    settings = site.router
    out: dict[str, Any] = {key: value for key in ("routing_strategy", "num_retries", "timeout", "retry_after",
                                                  "allowed_fails", "cooldown_time")
                           if (value := getattr(settings, key)) is not None}
    for key in ("fallbacks", "context_window_fallbacks"):
        if getattr(settings, key):
            out[key] = [{f.model: list(f.to)} for f in getattr(settings, key)]
    return out


def _model(entry: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": entry.model}
    if entry.api_key_secret:
        params["api_key"] = environ(entry.api_key_secret)
    for key in ("api_base", "rpm", "tpm", "timeout", "max_tokens"):
        value = getattr(entry, key)
        if value is not None:
            params[key] = value
    return {"model_name": entry.name, "litellm_params": params}


def _pass_through(endpoint: Any) -> dict[str, Any]:
    headers = {
        name: environ(value.secret_key) if isinstance(value, SecretHeader) else value
        for name, value in sorted(endpoint.headers.items())
    }
    doc: dict[str, Any] = {"path": endpoint.path, "target": endpoint.target}
    if headers:
        doc["headers"] = headers
    if endpoint.forward_headers:
        doc["forward_headers"] = True
    doc["auth"] = endpoint.auth
    return doc


def _cache_settings(site: Site) -> dict[str, Any]:
    if not site.cache.enabled:
        return {"cache": False}
    params: dict[str, Any] = {
        "type": "s3",
        "s3_bucket_name": environ("S3_BUCKET_NAME"),
        "s3_region_name": environ("S3_REGION_NAME"),
        "s3_endpoint_url": environ("S3_ENDPOINT_URL"),
        "s3_aws_access_key_id": environ("S3_AWS_ACCESS_KEY_ID"),
        "s3_aws_secret_access_key": environ("S3_AWS_SECRET_ACCESS_KEY"),
    }
    if site.cache.path:
        params["s3_path"] = site.cache.path
    params["supported_call_types"] = list(site.cache.call_types)
    if site.cache.ttl is not None:
        # A literal integer: an os.environ/ reference arrives as a string and LiteLLM then drops
        # every cache write without a log line.
        params["ttl"] = site.cache.ttl
    return {"cache": True, "cache_params": params}


def _redis(site: Site, host: str, port: str, password: str, ssl: str | None) -> dict[str, Any]:
    redis = site.redis
    out: dict[str, Any] = {host: redis.host, port: redis.port}
    if redis.password_secret:
        out[password] = environ(redis.password_secret)
    if ssl and redis.tls:
        out[ssl] = True
    return out


def _jwt_settings(site: Site) -> dict[str, Any]:
    """LiteLLM's JWT auth against the site's realm: admin by the admin scope (which bootstrap grants only to
    holders of the admin role), the user by the claims bootstrap writes. LiteLLM 1.108.7 takes any token with a
    user id for an internal user (user_allowed_roles only decides for tokens without one), so every user of
    the realm who can get a token for the client may call the model API, as every one may sign in by SSO."""
    claims = site.keycloak.claims
    return {
        "admin_jwt_scope": site.keycloak.admin_scope,
        # LiteLLM's default leaves the model API out of an admin token's routes
        "admin_allowed_routes": ["management_routes", "spend_tracking_routes", "global_spend_tracking_routes",
                                 "info_routes", "llm_api_routes"],
        "user_id_jwt_field": claims.user_id,
        "user_email_jwt_field": claims.email,
        "user_id_upsert": True,  # Keycloak is the user registry: a realm user is created in LiteLLM on first call
        "enforce_rbac": True,
        "public_key_ttl": site.jwt_auth.public_key_ttl,
    }


def _callbacks(site: Site) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if site.metrics.enabled:
        out["callbacks"] = ["prometheus"]  # a logger for successes and failures; mounts /metrics on the proxy port
    langfuse = site.callbacks.langfuse
    success = ["langfuse"] if langfuse and "success" in langfuse.events else []
    failure = ["langfuse"] if langfuse and "failure" in langfuse.events else []
    if success:
        out["success_callback"] = success
    if failure:
        out["failure_callback"] = failure
    return out
