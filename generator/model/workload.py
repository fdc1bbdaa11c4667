"""What the site runs and how much of it: the pinned LiteLLM image, resources, the disruption budget and the
autoscaler, the init containers that wait for the services, the migration Job and the optional volume."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from generator.redact import shown
from generator.model.base import DnsLabel, Model, Quantity, checked, rule_error

# LiteLLM releases before 1.84.0 have a Host-header auth bypass (CVE-2026-49468).
MIN_LITELLM_VERSION = (1, 84, 0)
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/berriai/litellm-non_root"
# Thinkube's Harbor is registry.<domain> (inventory/group_vars/k8s.yml: harbor_registry), project library: a
# site without image.repository pulls the non-root image from there (Site fills it in from the domain).
MIRROR_IMAGE = "registry.{domain}/library/litellm-non_root"
DEFAULT_IMAGE_TAG = "v1.108.7"  # the LTS release the end-to-end tests run (PyPI litellm[proxy]==1.108.7)
# Docker Hub registries: Thinkube pulls through Harbor, never from these.
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
IMAGE_REPO_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)*$")


class Image(Model):
    # None (a bare Image): the upstream image; in a site, Thinkube's Harbor mirror registry.<domain>/library/...
    repository: Annotated[str, *checked(IMAGE_REPO_RE, "image repository")] | None = None
    tag: str | None = DEFAULT_IMAGE_TAG
    digest: Annotated[str, *checked(DIGEST_RE, "image digest (sha256:<64 hex>)")] | None = None
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"

    @field_validator("tag")
    @classmethod
    def _pinned_release(cls, tag: str | None) -> str | None:
        if tag is None:
            return None
        if not TAG_RE.match(tag):
            raise ValueError(f"{shown(tag)} is not a valid image tag")
        if "latest" in tag.lower():
            raise ValueError(f"{shown(tag)} is a mutable tag; pin a release tag such as {DEFAULT_IMAGE_TAG} or a digest")
        found = VERSION_RE.search(tag)
        if not found:
            raise ValueError(f"{shown(tag)} names no release version; pin a release tag such as {DEFAULT_IMAGE_TAG} or a digest")
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
        ref = self.repository or DEFAULT_IMAGE_REPOSITORY
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
        return pinned_mirror(image)


def pinned_mirror(image: str | None) -> str | None:
    if image is None:
        return None
    name, _, tag = image.rpartition(":")
    if "@sha256:" not in image and (not name or not tag or "/" in tag or tag == "latest"):
        raise ValueError(f"{shown(image)} is not pinned: give a tag other than latest, or a digest")
    if image_registry(image) in DOCKER_HUB:
        raise ValueError(f"{shown(image)} pulls from Docker Hub; name the site's registry mirror "
                         "(for example harbor.example.com/library/busybox:1.37.0)")
    return image


class Migration(Model):
    """The schema migration Job each GitOps engine runs before the serving pods roll."""

    deadline_seconds: Annotated[int, Field(ge=60, le=86400)] = 900
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 2


BACKUP_IMAGE_NAME = "postgres:18-alpine"  # Thinkube's PostgreSQL is postgres:18-alpine; pg_dump's major >= the server's
# A site on the upstream image has no mirror: pg_dump then comes from the same registry (CloudNativePG's
# PostgreSQL 18 image, which carries the client programs and sh).
UPSTREAM_IMAGE_FOLDER = DEFAULT_IMAGE_REPOSITORY.rsplit("/", 1)[0]
UPSTREAM_BACKUP_IMAGE = "ghcr.io/cloudnative-pg/postgresql:18"


class Backup(Model):
    """A pg_dump of the database (custom format) into the site's bucket before every migration, the newest
    ``keep`` kept. ``image`` runs pg_dump (default: the site's registry mirror's postgres:18-alpine, the image
    Thinkube's own playbooks pull for PostgreSQL 18); the upload runs the site's LiteLLM image (boto3)."""

    enabled: bool = True
    image: str | None = None
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*/$")] = "backups/"
    keep: Annotated[int, Field(ge=1, le=1000)] = 7
    size_limit: Quantity = "2Gi"  # the pod's scratch space for one dump (an emptyDir)

    @field_validator("image")
    @classmethod
    def _pinned_mirror(cls, image: str | None) -> str | None:
        return pinned_mirror(image)


class Persistence(Model):
    """The original's PVC was never used by LiteLLM; it is only created when asked for. The claim is
    ReadWriteOnce, so a site with it runs one pod and rolls out by Recreate (a surge pod on another node
    would wait for the volume forever)."""

    enabled: bool = False
    size: Quantity = "5Gi"
    storage_class: DnsLabel | None = None
