"""The site: one deployment of LiteLLM, what ``sites/<site>/site.yaml`` holds, composed of the parts beside this
module, with the rules that span parts and the values derived from several; and ``FleetEntry``, what the
fleet layer reads of it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from generator.redact import shown
from generator.model.base import HOSTNAME_RE, DnsLabel, EnvName, Hostname, Model, refuse_duplicates, rule_error
from generator.model.data import S3, BootstrapPostgres, BootstrapS3, Cache, Postgres
from generator.model.destinations import external_destinations
from generator.model.gitops import Discovery, GitOps, Rollout, Secrets
from generator.model.identity import BootstrapKeycloak, Keycloak, Ui, Users
from generator.model.proxy import (EnvFrom, ExternalSecretKey, GeneralSettings, ModelEntry, PassThroughEndpoint,
                                   RouterSettings, SecretHeader)
from generator.model.routing import NetworkPolicy, Routing
from generator.model.scheduling import PodSettings
from generator.model.serving import LICENSE_KEY, Callbacks, Drain, JwtAuth, Metrics, Redis, serving_env_names
from generator.model.workload import (BACKUP_IMAGE_NAME, DEFAULT_IMAGE_REPOSITORY, DOCKER_HUB, MIRROR_IMAGE, UPSTREAM_BACKUP_IMAGE,
                                      UPSTREAM_IMAGE_FOLDER, Backup, image_registry, Hpa, Image, Migration, Pdb,
                                      Persistence, Resources, WaitFor)


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
        "GENERIC_USER_EMAIL_ATTRIBUTE", "GENERIC_ROLE_MAPPINGS_ROLES", "GENERIC_ROLE_MAPPINGS_GROUP_CLAIM",
        "GENERIC_ROLE_MAPPINGS_DEFAULT_ROLE", "S3_BUCKET_NAME", "S3_REGION_NAME", "S3_ENDPOINT_URL",
        "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY",
        # REDIS_* would switch on LiteLLM's env fallback behind the redis section's back
        "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_URL", "REDIS_SSL",
    }
)


# Keys of litellm-secrets that every site has; bootstrap fills the second group.
GENERATED_SECRET_KEYS = ("LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "ADMIN_PASSWORD")
BOOTSTRAP_SECRET_KEYS = ("DATABASE_URL", "CLIENT_SECRET")
S3_SECRET_KEYS = ("S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY")
PROXY_ADMIN_KEY = "PROXY_ADMIN_ID"  # the Keycloak id of keycloak.proxyAdmin, which bootstrap looks up


class Site(Model):
    """One deployment of LiteLLM: what ``sites/<site>/site.yaml`` holds."""

    domain: Hostname
    hostname: Hostname | None = None  # default litellm.<domain>
    namespace: DnsLabel = "litellm"
    # The namespace outlives the site: no engine deletes it, not when the site leaves git (an adopted install's
    # namespace holds the original's PVC and whatever else was there before the tree).
    keep_namespace: bool = False
    # the cluster platform.yaml names that runs the site (its `clusters`); default: the one cluster there is
    cluster: DnsLabel | None = None
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
    users: Users = Users()
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
    backup: Backup = Backup()
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

    @model_validator(mode="before")
    @classmethod
    def _thinkube_mirror(cls, data: Any) -> Any:  # noqa: ANN401
        """image.repository defaults to Thinkube's Harbor of the site's domain: registry.<domain>."""
        if not isinstance(data, dict) or not isinstance(data.get("domain"), str) or not HOSTNAME_RE.match(data["domain"]):
            return data
        image = data.get("image")
        mirror = MIRROR_IMAGE.format(domain=data["domain"])
        if image is None:
            return {**data, "image": {"repository": mirror}}
        if isinstance(image, dict) and image.get("repository") is None:
            return {**data, "image": {**image, "repository": mirror}}
        return data

    @field_validator("models")
    @classmethod
    def _unique_model_names(cls, models: list[ModelEntry]) -> list[ModelEntry]:
        refuse_duplicates([m.name for m in models], "model name", "name")
        return models

    @field_validator("pass_through_endpoints")
    @classmethod
    def _unique_paths(cls, endpoints: list[PassThroughEndpoint]) -> list[PassThroughEndpoint]:
        refuse_duplicates([e.path for e in endpoints], "pass-through path", "path")
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
                        raise rule_error(f"router.{field}.{index}", f"{', '.join(map(shown, unknown))} is not in models "
                                         "(generalSettings.storeModelInDb is false, so no model comes from the UI)")
        if self.keycloak.proxy_admin and self.keycloak.claims.user_id != "sub":
            raise rule_error("keycloak.claims.userId", f"{shown(self.keycloak.claims.user_id)}: LiteLLM compares "
                             "PROXY_ADMIN_ID (the Keycloak id of keycloak.proxyAdmin) with this claim, so it must be "
                             "'sub'; or set keycloak.proxyAdmin: null")
        self._serving_rules()
        # an ssh:// source without a credential is refused where the repository's credential is known
        # (loader.with_git_access): the sealed one in platform/git.sops.yaml is the usual way out
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
    def backup_enabled(self) -> bool:
        """The dump goes to the cache bucket: no bucket (cache off), no backup."""
        return self.backup.enabled and self.cache.enabled

    @property
    def backup_image(self) -> str:
        """pg_dump's image: by default postgres:18-alpine from the registry folder the LiteLLM image comes from."""
        if self.backup.image:
            return self.backup.image
        repository = self.image.repository or DEFAULT_IMAGE_REPOSITORY  # filled from the domain by validation
        if image_registry(repository) in DOCKER_HUB:
            return f"docker.io/library/{BACKUP_IMAGE_NAME}"
        folder = repository.rsplit("/", 1)[0]
        if folder == UPSTREAM_IMAGE_FOLDER:  # no mirror: PostgreSQL 18's client from the same registry
            return UPSTREAM_BACKUP_IMAGE
        return f"{folder}/{BACKUP_IMAGE_NAME}"

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
    def jwt_audience(self) -> str:
        """The audience only this client's access tokens carry (bootstrap's audience mapper)."""
        return self.jwt_auth.audience or f"{self.keycloak.client_id}-api"

    @property
    def oidc_base(self) -> str:
        return f"{self.keycloak_url}/realms/{self.keycloak.realm}/protocol/openid-connect"

    def secret_keys(self) -> list[str]:
        """Every key of litellm-secrets this site's Deployment reads, in a stable order."""
        keys = [*GENERATED_SECRET_KEYS, *BOOTSTRAP_SECRET_KEYS]
        if self.keycloak.proxy_admin:
            keys.append(PROXY_ADMIN_KEY)
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
        return FleetEntry.model_construct(namespace=self.namespace, cluster=self.cluster, gitops=self.gitops,
                                          rollout=self.rollout, secrets=self.secrets)


class FleetEntry(Model):
    """What the fleet layer (render/fleet.py) and the platform folder read of a site. The render cache keeps
    it for every site, so rendering one site of a fleet validates these few fields of the others, not their
    whole model (a tenth of the time)."""

    namespace: DnsLabel = "litellm"
    cluster: DnsLabel | None = None  # as the loader placed it (loader.place_site)
    gitops: GitOps = GitOps()
    rollout: Rollout = Rollout()
    secrets: Secrets = Secrets()
