"""The schema migration Job: LiteLLM's own migration entry point, run once per rollout, before the pods.

Serving pods carry DISABLE_SCHEMA_UPDATE=true (see base.py), so only this Job touches the schema, and
with ``backup`` on (the default with the cache bucket) it first dumps the database there (backup.py).
Each engine orders it: Argo CD runs it as a Sync hook in an earlier sync wave than the Deployment
(after the wave holding the namespace and the Secret, so a first install finds DATABASE_URL); Flux
applies it from its own Kustomization that the app's Kustomization dependsOn (gitops.py).
"""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.backup import backup_containers, backup_volume
from generator.render.base import pod_defaults, writable_mounts, writable_volumes
from generator.render.common import env_secret, env_value, hardened_container_security, obj
from generator.render.waiting import wait_for_container

JOB_NAME = "litellm-migrate"
# `litellm --skip_server_startup` (the image's entrypoint runs `litellm "$@"`) applies the
# litellm-proxy-extras migrations when DATABASE_URL is set, then exits without serving.
MIGRATE_ARGS = ["--skip_server_startup"]
# LiteLLM copies its migrations here and writes a baseline migration for an existing database;
# the package directory is read-only in the pod.
MIGRATION_DIR = "/tmp/litellm-migrations"
# Argo CD: the namespace and the Secret are in wave -2, this hook in wave -1, everything else in 0.
SETUP_WAVE, MIGRATE_WAVE = "-2", "-1"


def migration_job(site: Site) -> dict[str, Any]:
    labels = {"app": JOB_NAME}
    job = obj("batch/v1", "Job", JOB_NAME, labels=labels, annotations={
        "argocd.argoproj.io/hook": "Sync",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
        "argocd.argoproj.io/sync-wave": MIGRATE_WAVE,
    })
    container = {
        "name": "migrate",
        "image": site.image.reference,
        "imagePullPolicy": site.image.pull_policy,
        "args": list(MIGRATE_ARGS),
        "env": [
            env_secret("DATABASE_URL", "DATABASE_URL"),
            env_value("DISABLE_SCHEMA_UPDATE", "false"),
            env_value("LITELLM_MIGRATION_DIR", MIGRATION_DIR),
        ],
        "resources": site.resources.model_dump(),
        "securityContext": hardened_container_security(),
        "volumeMounts": writable_mounts(),
    }
    pod: dict[str, Any] = {**pod_defaults(), "restartPolicy": "Never"}
    if site.priority_class_name:
        pod["priorityClassName"] = site.priority_class_name
    init = []
    if site.wait_for.enabled:
        init.append(wait_for_container(site, "wait-for-postgres", site.postgres.host, site.postgres.port))
    if site.backup_enabled:  # a copy of the database before the schema moves (render/backup.py)
        init += backup_containers(site)
    if init:
        pod["initContainers"] = init
    pod["containers"] = [container]
    pod["volumes"] = writable_volumes() + ([backup_volume(site)] if site.backup_enabled else [])
    pod.update(site.pod.placement())
    meta = site.pod.metadata()
    template_meta = {**meta, "labels": {**meta.get("labels", {}), **labels}}
    job["spec"] = {
        "backoffLimit": site.migration.backoff_limit,
        "activeDeadlineSeconds": site.migration.deadline_seconds,
        "template": {"metadata": template_meta, "spec": pod},
    }
    return job
