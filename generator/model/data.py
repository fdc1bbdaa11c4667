"""The data services the proxy keeps its state in: PostgreSQL, the S3 bucket of the response cache, and how
the bootstrap reaches both from the operator's machine."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from generator.model.base import Hostname, HttpUrl, KeycloakName, Model


class Postgres(Model):
    host: Hostname = "postgresql-official.postgres.svc.cluster.local"
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    database: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "litellm"
    role: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "litellm"


class S3(Model):
    endpoint: HttpUrl = "http://seaweedfs-s3.seaweedfs.svc.cluster.local:8333"
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = "litellm-cache"
    region: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] = "us-east-1"


CallType = Literal[
    "completion", "acompletion", "embedding", "aembedding", "atranscription", "transcription",
    "atext_completion", "text_completion", "arerank", "rerank",
]


class Cache(Model):
    enabled: bool = True
    ttl: Annotated[int, Field(ge=1)] | None = 3600
    call_types: list[CallType] = Field(default_factory=lambda: ["completion", "acompletion", "embedding", "aembedding"])
    path: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]+$")] | None = None

    @field_validator("call_types")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("call types must not repeat")
        if not values:
            raise ValueError("list at least one call type")
        return values


class BootstrapPostgres(Model):
    host: str | None = None  # default: postgres.host
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: postgres.port
    admin_database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")] = "postgres"
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ca_bundle: str | None = None


class BootstrapS3(Model):
    endpoint: HttpUrl | None = None  # default: s3.endpoint
    verify_tls: bool = True
    ca_bundle: str | None = None
    user: KeycloakName | None = None  # the S3 identity for LiteLLM; default litellm-<namespace>
