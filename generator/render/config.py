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
        "disable_spend_logs": general.disable_spend_logs,
        "store_model_in_db": general.store_model_in_db,
    }
    if site.pass_through_endpoints:
        settings["pass_through_endpoints"] = [_pass_through(e) for e in site.pass_through_endpoints]
    config["general_settings"] = settings
    config["litellm_settings"] = _cache_settings(site)
    router = _router_settings(site)
    if router:
        config["router_settings"] = router
    return config


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
