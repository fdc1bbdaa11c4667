"""LiteLLM's own settings: ``general_settings``, the models and the router over them, pass-through endpoints,
and the env the operator adds to the pod (literal values or references, never a secret's value)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from generator.redact import shown
from generator.model.base import DnsLabel, EnvName, HttpUrl, Model, SecretKey


class GeneralSettings(Model):
    """LiteLLM ``general_settings`` (deployment facts, sections 1 and 3)."""

    proxy_batch_write_at: Annotated[int, Field(ge=1)] = 60
    disable_spend_logs: bool = False
    ui_access_mode: Literal["all", "admin_only"] = "all"
    database_connection_pool_limit: Annotated[int, Field(ge=1, le=1000)] = 10
    # The original set true. LiteLLM then answers *any* bearer token, even an anonymous one, with an
    # internal-user identity whenever the database is unreachable (seen in the end-to-end test):
    # an outage becomes an open proxy. Off by default; a site may turn it on knowingly.
    allow_requests_on_db_unavailable: bool = False
    store_model_in_db: bool = True
    mode: Literal["PRODUCTION", "DEV"] = "PRODUCTION"


ModelName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]


class ModelEntry(Model):
    name: ModelName
    model: Annotated[str, Field(min_length=1, pattern=r"^\S+$")]
    api_key_secret: SecretKey | None = None
    api_base: HttpUrl | None = None
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    timeout: Annotated[int, Field(ge=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None


class Fallback(Model):
    """When `model` fails (or its context window is too small), LiteLLM retries on `to`, in order."""

    model: ModelName
    to: Annotated[list[ModelName], Field(min_length=1)]

    @model_validator(mode="after")
    def _not_itself(self) -> "Fallback":
        if self.model in self.to:
            raise ValueError(f"{shown(self.model)} cannot fall back to itself")
        return self


class RouterSettings(Model):
    """LiteLLM's `router_settings` (every key is an argument of litellm.Router in 1.108.7)."""

    routing_strategy: Literal["simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2",
                              "latency-based-routing", "cost-based-routing"] | None = None
    num_retries: Annotated[int, Field(ge=0, le=10)] | None = None
    timeout: Annotated[int, Field(ge=1)] | None = None  # seconds, per call to a provider
    retry_after: Annotated[int, Field(ge=0)] | None = None
    allowed_fails: Annotated[int, Field(ge=0)] | None = None
    cooldown_time: Annotated[int, Field(ge=0)] | None = None
    fallbacks: list[Fallback] = Field(default_factory=list)
    context_window_fallbacks: list[Fallback] = Field(default_factory=list)


class ExternalSecretKey(Model):
    secret: DnsLabel
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]{1,253}$")]
    optional: bool = False


class EnvFrom(Model):
    """Exactly one of secretRef or configMapRef (a name), with an optional variable-name prefix."""

    secret_ref: DnsLabel | None = None
    config_map_ref: DnsLabel | None = None
    prefix: EnvName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "EnvFrom":
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ValueError("give exactly one of secretRef or configMapRef")
        return self


class SecretHeader(Model):
    secret_key: SecretKey


class PassThroughEndpoint(Model):
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]*$")]
    target: HttpUrl
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")], str | SecretHeader] = Field(default_factory=dict)
    forward_headers: bool = False
    # LiteLLM only enforces its own auth on a config-file pass-through when `auth: true` is written.
    auth: bool = True
