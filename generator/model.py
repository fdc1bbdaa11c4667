"""The closed, typed model of ``sites/<site>/site.yaml``.

Unknown keys are errors everywhere. Defaults reproduce the original Thinkube component
(deployment facts, section 1) with its flaws (section 2) corrected. Field names are camelCase,
like Kubernetes objects; the JSON Schema for editors is generated from this module
(``generator schema``) and published as ``schema/site.schema.json``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from generator.scheduling import PodSettings
from generator.destinations import external_destinations
from generator.serving import LICENSE_KEY, Callbacks, Drain, JwtAuth, Metrics, Redis, serving_env_names

# LiteLLM releases before 1.84.0 have a Host-header auth bypass (CVE-2026-49468).
MIN_LITELLM_VERSION = (1, 84, 0)
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/berriai/litellm-non_root"
DEFAULT_IMAGE_TAG = "v1.108.7"  # the LTS release the end-to-end tests run (PyPI litellm[proxy]==1.108.7)
# Thinkube (ansible/40_thinkube/core/infrastructure/gateway-api/10_deploy.yaml) installs Envoy Gateway in
# envoy-gateway-system, and the Envoy proxy pods that carry the traffic run there too; the Gateway object
# itself lives in gateway-system, where no pod runs.
DEFAULT_GATEWAY_PROXY_NAMESPACE = "envoy-gateway-system"
# Thinkube's former ingress-nginx ran in namespace `ingress` (IngressClass nginx); current Thinkube
# routes everything through the Gateway API.
DEFAULT_INGRESS_CONTROLLER_NAMESPACE = "ingress"
# Docker Hub registries: Thinkube pulls through Harbor, never from these.
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){DNS_LABEL}(\.{DNS_LABEL})+$")
DNS_LABEL_RE = re.compile(rf"^{DNS_LABEL}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
IMAGE_REPO_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)*$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
GIT_URL_RE = re.compile(r"^(https://|ssh://|http://)[^\s]+$")


class _Checked:
    """A string rule with a friendly error message that also shows up in the published JSON Schema."""

    def __init__(self, pattern: re.Pattern[str], what: str) -> None:
        self.pattern, self.what = pattern, what

    def __get_pydantic_json_schema__(self, core_schema, handler):  # noqa: ANN001
        schema = handler(core_schema)
        schema.update(pattern=self.pattern.pattern, description=f"A {self.what}.")
        return schema


def _check(pattern: re.Pattern[str], what: str):
    def validate(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return _Checked(pattern, what), AfterValidator(validate)


Hostname = Annotated[str, *_check(HOSTNAME_RE, "DNS hostname (lowercase labels separated by dots)")]
DnsLabel = Annotated[str, *_check(DNS_LABEL_RE, "DNS label (lowercase letters, digits and '-', at most 63)")]
EnvName = Annotated[str, *_check(ENV_NAME_RE, "environment variable name")]
SecretKey = Annotated[str, *_check(SECRET_KEY_RE, "secret key name (UPPER_SNAKE_CASE)")]
Duration = Annotated[str, *_check(DURATION_RE, "duration such as 30s, 5m or 1h")]
def _number_as_text(value: object) -> object:
    # `cpu: 1` is a YAML integer; Kubernetes quantities are strings.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Quantity = Annotated[
    str, BeforeValidator(_number_as_text), *_check(QUANTITY_RE, "Kubernetes quantity such as 500m, 512Mi or 2Gi")
]
HttpUrl = Annotated[str, *_check(URL_RE, "http(s) URL")]
KeycloakName = Annotated[str, *_check(re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"), "Keycloak name (letters, digits, '_', '.', '-')")]
GitUrl = Annotated[str, *_check(GIT_URL_RE, "git URL (https:// or ssh://)")]


def _refuse_duplicates(values: list[str], what: str, field: str) -> None:
    """Raise an error whose context names the repeated entry, so the loader can point at its line."""
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            raise PydanticCustomError(
                "duplicate",
                "duplicate {what} '{value}' (first used by entry {first})",
                {"what": what, "value": value, "first": seen[value], "index": index, "field": field},
            )
        seen[value] = index


def rule_error(at: str, message: str) -> PydanticCustomError:
    """A cross-field error pointing at the field to change (``at``, a dotted camelCase path)."""
    return PydanticCustomError("site_rule", message, {"at": at})


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        use_enum_values=True,
    )


class Image(Model):
    repository: Annotated[str, *_check(IMAGE_REPO_RE, "image repository")] = DEFAULT_IMAGE_REPOSITORY
    tag: str | None = DEFAULT_IMAGE_TAG
    digest: Annotated[str, *_check(DIGEST_RE, "image digest (sha256:<64 hex>)")] | None = None
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"

    @field_validator("tag")
    @classmethod
    def _pinned_release(cls, tag: str | None) -> str | None:
        if tag is None:
            return None
        if not TAG_RE.match(tag):
            raise ValueError(f"{tag!r} is not a valid image tag")
        if "latest" in tag.lower():
            raise ValueError(f"{tag!r} is a mutable tag; pin a release tag such as {DEFAULT_IMAGE_TAG} or a digest")
        found = VERSION_RE.search(tag)
        if not found:
            raise ValueError(f"{tag!r} names no release version; pin a release tag such as {DEFAULT_IMAGE_TAG} or a digest")
        version = tuple(int(part) for part in found.groups())
        if version < MIN_LITELLM_VERSION:
            minimum = ".".join(map(str, MIN_LITELLM_VERSION))
            raise ValueError(
                f"LiteLLM {'.'.join(map(str, version))} is older than {minimum} "
                f"(Host-header auth bypass CVE-2026-49468); use {minimum} or newer"
            )
        return tag

    @model_validator(mode="after")
    def _tag_or_digest(self) -> "Image":
        if self.tag is None and self.digest is None:
            raise ValueError("set a tag or a digest")
        return self

    @property
    def reference(self) -> str:
        ref = self.repository
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


class ResourceList(Model):
    cpu: Quantity
    memory: Quantity


class Resources(Model):
    requests: ResourceList = ResourceList(cpu="100m", memory="512Mi")
    limits: ResourceList = ResourceList(cpu="1", memory="2Gi")


class GatewayRef(Model):
    name: DnsLabel = "thinkube-gateway"
    namespace: DnsLabel = "gateway-system"
    section_name: DnsLabel | None = "https"


class HttpRoute(Model):
    name: DnsLabel = "litellm-route"
    gateway: GatewayRef = GatewayRef()
    request_timeout: Duration = "600s"
    # Where the gateway's data-plane (Envoy proxy) pods run: the NetworkPolicy admits them.
    proxy_namespace: DnsLabel = DEFAULT_GATEWAY_PROXY_NAMESPACE


class Ingress(Model):
    name: DnsLabel = "litellm"
    class_name: DnsLabel = "nginx"
    # Where the ingress controller's pods run: the NetworkPolicy admits them.
    controller_namespace: DnsLabel = DEFAULT_INGRESS_CONTROLLER_NAMESPACE
    tls_secret_name: DnsLabel | None = None
    annotations: dict[str, str] = Field(
        default_factory=lambda: {
            "nginx.ingress.kubernetes.io/proxy-body-size": "10m",
            "nginx.ingress.kubernetes.io/proxy-connect-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-send-timeout": "600",
        }
    )


class Routing(Model):
    type: Literal["httproute", "ingress"] = "httproute"
    httproute: HttpRoute = HttpRoute()
    ingress: Ingress = Ingress()


class Claims(Model):
    user_id: str = "preferred_username"
    email: str = "email"
    # Flaw 7: realm_access.roles yields Keycloak role names. The bootstrap adds a protocol mapper
    # that puts the LiteLLM role (proxy_admin, internal_user, ...) into this claim.
    role: str = "litellm_role"


class Keycloak(Model):
    url: HttpUrl | None = None  # default https://auth.<domain>
    realm: KeycloakName = "thinkube"
    client_id: KeycloakName = "litellm"
    client_name: str = "LiteLLM Proxy"
    scope: str = "openid profile email roles"
    admin_scope: KeycloakName = "litellm_proxy_admin"
    admin_role: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "AI_ADMIN"
    user_role: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "AI_USER"
    admin_users: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["admin"])
    proxy_admin_id: str = "admin"
    claims: Claims = Claims()


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


class Ui(Model):
    username: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "admin"


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
            raise ValueError(f"{self.model!r} cannot fall back to itself")
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


class Flux(Model):
    enabled: bool = True
    namespace: DnsLabel = "flux-system"
    url: GitUrl = "ssh://git@git.example.com/platform/litellm-gitops.git"
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    interval: Duration = "1m"
    sync_interval: Duration = "10m"
    timeout: Duration = "5m"
    # A Secret in `namespace` that source-controller reads: identity + known_hosts for ssh://,
    # username + password (or bearerToken) for an https:// server that asks for them.
    secret_ref: DnsLabel | None = None


class ArgoDestination(Model):
    server: HttpUrl = "https://kubernetes.default.svc"


class ArgoCd(Model):
    enabled: bool = True
    namespace: DnsLabel = "argocd"
    repo_url: GitUrl = "ssh://git@git.example.com/platform/litellm-gitops.git"
    target_revision: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    # the AppProject the fleet renders for its sites (this repository, their namespaces); "default" to opt out
    project: DnsLabel = "litellm"
    destination: ArgoDestination = ArgoDestination()


class Rollout(Model):
    """The site's wave in a fleet rollout, 0 first. Flux: a wave starts once the sites of the wave before are
    healthy (dependsOn). Argo CD: sync waves in the parent Application order the creation of the sites'
    Applications only: Argo CD has no health check for an Application unless argocd-cm defines one."""

    wave: Annotated[int, Field(ge=0, le=100)] = 0


class GitOps(Model):
    flux: Flux = Flux()
    argocd: ArgoCd = ArgoCd()


class Discovery(Model):
    enabled: bool = True
    display_name: str = "LiteLLM"
    description: str = "Unified LLM API proxy with cost tracking and load balancing"
    type: str = "optional"
    category: str = "ai"
    icon: str = "/icons/tk_ai.svg"
    component_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = "0.1.0"
    dependencies: list[str] = Field(default_factory=lambda: ["postgresql", "keycloak", "seaweedfs"])
    # thinkube-control scales or disables the service by patching the Deployment's spec.replicas. When
    # true, the tree leaves that field to it (no replicas in git; Argo CD ignores the field) and the
    # ConfigMap says can_disable: true. When false, git pins `replicas` and can_disable is false.
    platform_scaling: bool = True
    # Export the master key to code-server as LITELLM_MASTER_KEY, by secretKeyRef (never the value).
    export_master_key: bool = True


class Pdb(Model):
    """A budget that never blocks a drain: ``maxUnavailable`` (default 1), or a ``minAvailable`` below the
    replicas (the HPA's minimum with an HPA)."""

    enabled: bool = False
    min_available: Annotated[int, Field(ge=0)] | None = None
    max_unavailable: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> "Pdb":
        if self.min_available is not None and self.max_unavailable is not None:
            raise rule_error("minAvailable", "set minAvailable or maxUnavailable, not both")
        return self


class Hpa(Model):
    enabled: bool = False
    min_replicas: Annotated[int, Field(ge=1)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 3
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)] = 80

    @model_validator(mode="after")
    def _ordered(self) -> "Hpa":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas})")
        return self


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block such as 203.0.113.0/24 ({exc})") from None
    return value


Cidr = Annotated[str, AfterValidator(_network)]


class ExternalBlock(Model):
    cidr: Cidr
    except_: list[Cidr] = Field(default_factory=list, alias="except")

    @model_validator(mode="after")
    def _inside(self) -> "ExternalBlock":
        outer = ipaddress.ip_network(self.cidr)
        for inner in self.except_:
            if not ipaddress.ip_network(inner).subnet_of(outer):  # type: ignore[arg-type]
                raise ValueError(f"except {inner} is not inside {self.cidr}")
        return self


class Egress(Model):
    """Where the pods may connect, derived from the site's own settings: DNS, then every in-cluster service
    the site names (PostgreSQL, S3, Redis, Langfuse, Keycloak or a model's apiBase on *.svc) by namespace and
    port. A NetworkPolicy matches addresses, not names: destinations outside the cluster (the model providers,
    Keycloak's public URL) are reached through ``external`` blocks, on the ports their URLs name."""

    enabled: bool = False
    dns_namespace: DnsLabel = "kube-system"
    external: list[ExternalBlock] = Field(default_factory=list)


class NetworkPolicy(Model):
    enabled: bool = False
    # The pods that carry the site's traffic (the gateway's Envoy proxies, or the ingress controller,
    # per routing) are always admitted; these namespaces are admitted besides (in-cluster clients).
    allow_from_namespaces: list[DnsLabel] = Field(default_factory=list)
    egress: Egress = Egress()


def image_registry(reference: str) -> str:
    """The registry host of an image reference; Docker Hub for a name without one (``busybox``)."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


class WaitFor(Model):
    """Init containers that wait for PostgreSQL and S3. By default they run the site's own LiteLLM
    image (its Python checks the port): pinned, and pulled from the same registry mirror as the app."""

    enabled: bool = True
    image: str | None = None

    @field_validator("image")
    @classmethod
    def _pinned_mirror(cls, image: str | None) -> str | None:
        if image is None:
            return None
        name, _, tag = image.rpartition(":")
        if "@sha256:" not in image and (not name or not tag or "/" in tag or tag == "latest"):
            raise ValueError(f"{image!r} is not pinned: give a tag other than latest, or a digest")
        if image_registry(image) in DOCKER_HUB:
            raise ValueError(f"{image!r} pulls from Docker Hub; name the site's registry mirror "
                             "(for example harbor.example.com/library/busybox:1.37.0)")
        return image


class Migration(Model):
    """The schema migration Job each GitOps engine runs before the serving pods roll."""

    deadline_seconds: Annotated[int, Field(ge=60, le=86400)] = 900
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 2


class Persistence(Model):
    """The original's PVC was never used by LiteLLM; it is only created when asked for. The claim is
    ReadWriteOnce, so a site with it runs one pod and rolls out by Recreate (a surge pod on another node
    would wait for the volume forever)."""

    enabled: bool = False
    size: Quantity = "5Gi"
    storage_class: DnsLabel | None = None


AGE_RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


class Secrets(Model):
    """``sealed``: a SealedSecret (Flux or Argo CD). ``sops``: a sops-encrypted Secret that Flux decrypts."""

    mode: Literal["sealed", "sops"] = "sealed"
    # sops mode: the cluster's age recipients, and the Secret in the Flux namespace holding its key.
    flux_recipients: list[Annotated[str, *_check(AGE_RECIPIENT_RE, "age recipient (age1...)")]] = Field(default_factory=list)
    flux_decryption_secret: DnsLabel = "sops-age"

    @model_validator(mode="after")
    def _recipients_for_sops(self) -> "Secrets":
        if self.mode == "sops" and not self.flux_recipients:
            raise rule_error("fluxRecipients", "list the cluster's age recipients: Flux decrypts the Secret with their key")
        return self


class BootstrapKeycloak(Model):
    url: HttpUrl | None = None  # default: keycloak.url
    admin_realm: KeycloakName = "master"
    admin_client_id: KeycloakName = "admin-cli"
    verify_tls: bool = True
    ca_bundle: str | None = None


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


class Bootstrap(Model):
    """Endpoints reachable from the operator's machine; the in-cluster ones stay in keycloak/postgres/s3."""

    keycloak: BootstrapKeycloak = BootstrapKeycloak()
    postgres: BootstrapPostgres = BootstrapPostgres()
    s3: BootstrapS3 = BootstrapS3()


# Environment variables the generator sets itself; extraEnv may not override them.
MANAGED_ENV = frozenset(
    {
        "LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "UI_USERNAME", "UI_PASSWORD", "DATABASE_URL",
        "STORE_MODEL_IN_DB", "PROXY_BASE_URL", "LITELLM_MODE", "GENERIC_CLIENT_ID", "GENERIC_CLIENT_SECRET",
        "GENERIC_AUTHORIZATION_ENDPOINT", "GENERIC_TOKEN_ENDPOINT", "GENERIC_USERINFO_ENDPOINT",
        "GENERIC_SCOPE", "PROXY_ADMIN_ID", "GENERIC_USER_ROLE_ATTRIBUTE", "GENERIC_USER_ID_ATTRIBUTE",
        "GENERIC_USER_EMAIL_ATTRIBUTE", "S3_BUCKET_NAME", "S3_REGION_NAME", "S3_ENDPOINT_URL",
        "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY",
        # REDIS_* would switch on LiteLLM's env fallback behind the redis section's back
        "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_URL", "REDIS_SSL",
    }
)
# Keys of litellm-secrets that every site has; bootstrap fills the second group.
GENERATED_SECRET_KEYS = ("LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "ADMIN_PASSWORD")
BOOTSTRAP_SECRET_KEYS = ("DATABASE_URL", "CLIENT_SECRET")
S3_SECRET_KEYS = ("S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY")


class Site(Model):
    """One deployment of LiteLLM: what ``sites/<site>/site.yaml`` holds."""

    domain: Hostname
    hostname: Hostname | None = None  # default litellm.<domain>
    namespace: DnsLabel = "litellm"
    image: Image = Image()
    replicas: Annotated[int, Field(ge=0, le=100)] = 1
    resources: Resources = Resources()
    # The Pod Security Standard the namespace enforces (labels enforce, audit and warn); the pods meet restricted.
    pod_security: Literal["restricted", "baseline"] = "restricted"
    # None: the pods take the cluster's default PriorityClass (Thinkube's is thinkube-workload, globalDefault).
    # A name here must exist in the cluster, or the API server refuses every pod.
    priority_class_name: DnsLabel | None = None
    pod: PodSettings = PodSettings()
    # The operator's own Kustomize directory, sites/<site>/extensions/ (the generator never writes there):
    # `resources` (a Kustomization: objects the model lacks) or `component` (a Component: patches over the
    # generated objects too). The app stage includes it, so validation and both engines see it.
    extensions: Literal["resources", "component"] | None = None
    routing: Routing = Routing()
    keycloak: Keycloak = Keycloak()
    postgres: Postgres = Postgres()
    s3: S3 = S3()
    cache: Cache = Cache()
    general_settings: GeneralSettings = GeneralSettings()
    ui: Ui = Ui()
    models: list[ModelEntry] = Field(default_factory=list)
    router: RouterSettings = RouterSettings()
    pass_through_endpoints: list[PassThroughEndpoint] = Field(default_factory=list)
    gitops: GitOps = GitOps()
    discovery: Discovery = Discovery()
    pdb: Pdb = Pdb()
    hpa: Hpa = Hpa()
    network_policy: NetworkPolicy = NetworkPolicy()
    wait_for: WaitFor = WaitFor()
    migration: Migration = Migration()
    rollout: Rollout = Rollout()
    persistence: Persistence = Persistence()
    secrets: Secrets = Secrets()
    bootstrap: Bootstrap = Bootstrap()
    # A literal value, or {secret, key}: a key of a Secret the operator manages (an extension's SealedSecret).
    extra_env: dict[EnvName, str | ExternalSecretKey] = Field(default_factory=dict)
    # Whole Secrets or ConfigMaps as env (the chart's envFrom).
    extra_env_from: list[EnvFrom] = Field(default_factory=list)
    redis: Redis = Redis()
    jwt_auth: JwtAuth = JwtAuth()
    drain: Drain = Drain()
    callbacks: Callbacks = Callbacks()
    metrics: Metrics = Metrics()

    @field_validator("models")
    @classmethod
    def _unique_model_names(cls, models: list[ModelEntry]) -> list[ModelEntry]:
        _refuse_duplicates([m.name for m in models], "model name", "name")
        return models

    @field_validator("pass_through_endpoints")
    @classmethod
    def _unique_paths(cls, endpoints: list[PassThroughEndpoint]) -> list[PassThroughEndpoint]:
        _refuse_duplicates([e.path for e in endpoints], "pass-through path", "path")
        return endpoints

    @field_validator("extra_env")
    @classmethod
    def _not_managed(cls, env: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(set(env) & MANAGED_ENV)
        if clash:
            raise ValueError(f"{', '.join(clash)} is set by the generator; change the matching site field instead")
        return env

    @model_validator(mode="after")
    def _consistent(self) -> "Site":
        if self.secrets.mode == "sops" and self.gitops.argocd.enabled:
            raise rule_error(
                "secrets.mode",
                "'sops' needs Flux: Argo CD cannot decrypt sops; use 'sealed' or set gitops.argocd.enabled: false",
            )
        if self.discovery.enabled and self.discovery.platform_scaling and not self.hpa.enabled and self.replicas != 1:
            raise rule_error(
                "replicas",
                f"{self.replicas} replicas cannot be pinned while the platform owns scaling "
                "(discovery.platformScaling: the tree leaves spec.replicas to thinkube-control and Kubernetes "
                "starts one pod); set discovery.platformScaling: false to pin replicas in git, or enable hpa",
            )
        floor = self.hpa.min_replicas if self.hpa.enabled else self.replicas
        if self.pdb.enabled and self.pdb.min_available is not None and self.pdb.min_available >= floor:
            raise rule_error(
                "pdb.minAvailable",
                f"minAvailable {self.pdb.min_available} with {floor} replica(s){' (hpa.minReplicas)' if self.hpa.enabled else ''} "
                "blocks every voluntary eviction, so a node drain hangs; use maxUnavailable: 1 or a minAvailable "
                "below the replicas",
            )
        model_env = {m.api_key_secret for m in self.models if m.api_key_secret}
        clash = sorted(model_env & set(self.extra_env))
        if clash:
            raise rule_error("extraEnv", f"{', '.join(clash)} clashes with a model's apiKeySecret")
        if self.persistence.enabled and (self.hpa.enabled or self.replicas > 1):
            raise rule_error(
                "persistence.enabled",
                "a ReadWriteOnce claim mounts on one node only: with more than one pod (replicas or hpa) the pods "
                "on other nodes hang on a multi-attach error; LiteLLM 1.108.7 writes nothing there, so turn it off",
            )
        if not self.general_settings.store_model_in_db:  # the config is the only source of models: names must exist
            known = {m.name for m in self.models}
            for field in ("fallbacks", "contextWindowFallbacks"):
                for index, fallback in enumerate(getattr(self.router, "fallbacks" if field == "fallbacks"
                                                         else "context_window_fallbacks")):
                    unknown = [n for n in (fallback.model, *fallback.to) if n not in known]
                    if unknown:
                        raise rule_error(f"router.{field}.{index}", f"{', '.join(map(repr, unknown))} is not in models "
                                         "(generalSettings.storeModelInDb is false, so no model comes from the UI)")
        self._serving_rules()
        # an ssh:// source without a credential is refused where the repository's credential is known
        # (platform_tree.with_git_access): the sealed one in platform/git.sops.yaml is the usual way out
        return self

    def _serving_rules(self) -> None:
        clash = sorted(set(self.extra_env) & serving_env_names(self))
        if clash:
            raise rule_error("extraEnv", f"{', '.join(clash)} is set by the generator for jwtAuth, drain or "
                             "callbacks; change those sections instead")
        several = self.hpa.enabled or self.replicas > 1
        if several and not self.redis.enabled:
            raise rule_error(
                "redis.enabled",
                f"{'the hpa' if self.hpa.enabled else f'{self.replicas} replicas'} without Redis: each pod keeps its "
                "own rate-limit, budget and router counters, so every limit is multiplied by the number of pods; "
                "enable redis (Thinkube's Valkey is the default target)",
            )
        if self.metrics.service_monitor.enabled and not self.metrics.enabled:
            raise rule_error("metrics.enabled", "the ServiceMonitor scrapes /metrics/, which LiteLLM serves only with "
                             "its Prometheus callback: set metrics.enabled: true")
        if self.network_policy.egress.enabled and not self.network_policy.enabled:
            raise rule_error("networkPolicy.enabled", "egress rules are part of the NetworkPolicy: set "
                             "networkPolicy.enabled: true")
        if self.network_policy.enabled and self.network_policy.egress.enabled and not self.network_policy.egress.external:
            outside = external_destinations(self)
            if outside:
                raise rule_error(
                    "networkPolicy.egress.external",
                    f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the cluster and a "
                    "NetworkPolicy matches addresses, not names: list the CIDR blocks they resolve to "
                    "(for example {cidr: 0.0.0.0/0, except: [<pod and service CIDRs>]})",
                )

    # Derived values: one place, used by every renderer.
    @property
    def platform_owns_replicas(self) -> bool:
        """thinkube-control scales the Deployment, so git leaves spec.replicas alone."""
        return self.discovery.enabled and self.discovery.platform_scaling

    @property
    def wait_image(self) -> str:
        return self.wait_for.image or self.image.reference

    @property
    def traffic_namespace(self) -> str:
        """Where the pods that carry the site's traffic to the proxy run."""
        if self.routing.type == "httproute":
            return self.routing.httproute.proxy_namespace
        return self.routing.ingress.controller_namespace

    @property
    def host(self) -> str:
        return self.hostname or f"litellm.{self.domain}"

    @property
    def keycloak_url(self) -> str:
        return (self.keycloak.url or f"https://auth.{self.domain}").rstrip("/")

    @property
    def oidc_base(self) -> str:
        return f"{self.keycloak_url}/realms/{self.keycloak.realm}/protocol/openid-connect"

    def secret_keys(self) -> list[str]:
        """Every key of litellm-secrets this site's Deployment reads, in a stable order."""
        keys = [*GENERATED_SECRET_KEYS, *BOOTSTRAP_SECRET_KEYS]
        if self.cache.enabled:
            keys += S3_SECRET_KEYS
        for entry in self.models:
            if entry.api_key_secret and entry.api_key_secret not in keys:
                keys.append(entry.api_key_secret)
        for endpoint in self.pass_through_endpoints:
            for value in endpoint.headers.values():
                if isinstance(value, SecretHeader) and value.secret_key not in keys:
                    keys.append(value.secret_key)
        langfuse = self.callbacks.langfuse
        serving = [
            self.redis.password_secret if self.redis.enabled else None,
            LICENSE_KEY if self.jwt_auth.enabled else None,
            self.drain.token_secret if self.drain.enabled else None,
            *((langfuse.public_key_secret, langfuse.secret_key_secret) if langfuse else ()),
        ]
        keys += [key for key in dict.fromkeys(serving) if key and key not in keys]
        return keys

    def fleet_entry(self) -> "FleetEntry":
        return FleetEntry.model_construct(namespace=self.namespace, gitops=self.gitops, rollout=self.rollout,
                                          secrets=self.secrets)


class FleetEntry(Model):
    """What the fleet layer (render/fleet.py) and the platform folder read of a site. The render cache keeps
    it for every site, so rendering one site of a fleet validates these few fields of the others, not their
    whole model (a tenth of the time)."""

    namespace: DnsLabel = "litellm"
    gitops: GitOps = GitOps()
    rollout: Rollout = Rollout()
    secrets: Secrets = Secrets()
