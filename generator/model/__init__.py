"""The closed, typed model of ``sites/<site>/site.yaml``.

Unknown keys are errors everywhere. Defaults reproduce the original Thinkube component
(deployment facts, section 1) with its flaws (section 2) corrected. Field names are camelCase,
like Kubernetes objects; the JSON Schema for editors is generated from this module
(``generator schema``) and published as ``schema/site.schema.json``.

The model is a package of parts, each importing only those below it: ``base`` (the closed base model, checked
strings, field errors), then ``scheduling``, ``workload``, ``routing``, ``identity``, ``data``, ``proxy``,
``serving``, ``gitops`` and ``destinations``, then ``site`` (``Site`` and ``FleetEntry``). Every name is
exported here too, as it was when the model was one module: ``from generator.model import Site``.
"""

from __future__ import annotations

from generator.model.base import (
    DNS_LABEL, DNS_LABEL_RE, DURATION_RE, ENV_NAME_RE, GIT_URL_RE, HOSTNAME_RE, QUANTITY_RE, SECRET_KEY_RE, URL_RE,
    DnsLabel, Duration, EnvName, GitUrl, Hostname, HttpUrl, KeycloakName, Model, Quantity, SecretKey, rule_error,
)
from generator.model.scheduling import PodSettings
from generator.model.workload import (
    DEFAULT_IMAGE_REPOSITORY, DEFAULT_IMAGE_TAG, DIGEST_RE, DOCKER_HUB, IMAGE_REPO_RE, MIN_LITELLM_VERSION, TAG_RE,
    VERSION_RE, Backup, Hpa, Image, Migration, Pdb, Persistence, ResourceList, Resources, WaitFor, image_registry,
)
from generator.model.routing import (
    DEFAULT_GATEWAY_PROXY_NAMESPACE, DEFAULT_INGRESS_CONTROLLER_NAMESPACE, Cidr, Egress, ExternalBlock, GatewayRef,
    HttpRoute, Ingress, NetworkPolicy, Routing,
)
from generator.model.identity import BootstrapKeycloak, Claims, Keycloak, Ui
from generator.model.data import S3, BootstrapPostgres, BootstrapS3, Cache, CallType, Postgres
from generator.model.proxy import (
    EnvFrom, ExternalSecretKey, Fallback, GeneralSettings, ModelEntry, ModelName, PassThroughEndpoint,
    RouterSettings, SecretHeader,
)
from generator.model.serving import LICENSE_KEY, Callbacks, Drain, JwtAuth, Metrics, Redis, serving_env_names
from generator.model.gitops import AGE_RECIPIENT_RE, ArgoCd, ArgoDestination, Discovery, Flux, GitOps, Rollout, Secrets
from generator.model.destinations import external_destinations
from generator.model.site import (
    BOOTSTRAP_SECRET_KEYS, GENERATED_SECRET_KEYS, MANAGED_ENV, PROXY_ADMIN_KEY, S3_SECRET_KEYS, Bootstrap, FleetEntry, Site,
)
