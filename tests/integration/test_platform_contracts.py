"""Conformance: the committed prod tree and sites that are not in the repository, built with the real
kustomize, read the way Thinkube's own code reads them (tests/platform_contracts.py); and the
ordering each GitOps engine gives the migration Job."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from generator.model import image_registry
from generator.model.workload import MIRROR_IMAGE
from generator.tools import find
from tests.helpers import PROJECT, build_file_tree, generator
from tests.platform_contracts import discovery_problems, gateway_problems, image_problems, scaling_problems

GIT = """gitops:
  flux: {url: "https://git.example.org/gitops.git"}
  argocd: {repoUrl: "https://git.example.org/gitops.git"}
"""
VARIANTS = {
    "plain": "domain: example.org\n",
    "harbor": "domain: thinkube.lan\nimage: {repository: registry.thinkube.lan/library/litellm-non_root, tag: v1.108.7}\n"
              "networkPolicy: {enabled: true, allowFromNamespaces: [jupyterhub]}\npdb: {enabled: true}\n",
    "ingress": "domain: example.org\nnamespace: ai\nrouting: {type: ingress}\nnetworkPolicy: {enabled: true}\n",
    "hpa": ("domain: example.org\nhpa: {enabled: true, minReplicas: 2, maxReplicas: 4}\nnetworkPolicy: {enabled: true}\n"
            "redis: {enabled: true}\n"),
    "pinned": "domain: example.org\nreplicas: 3\ndiscovery: {platformScaling: false}\nredis: {enabled: true}\n",
    "mirror": "domain: example.org\nimage: {repository: harbor.corp.example/ai/litellm-non_root, digest: "
              "'sha256:" + "a" * 64 + "'}\nwaitFor: {image: harbor.corp.example/library/busybox:1.37.0}\n",
    "nodiscovery": "domain: example.org\nreplicas: 2\ndiscovery: {enabled: false}\nredis: {enabled: true}\n",
}


def _build(path: Path) -> list[dict]:
    out = subprocess.run([str(find("kubectl")), "kustomize", str(path)], capture_output=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    # most variants keep the default namespace: on one cluster they would fight over it (render refuses that),
    # so each runs on a cluster of its own; a site's overlay and entry points do not depend on its cluster
    clusters = "gitCredential: external\nclusters:\n" + "".join(f"  {name}: {{}}\n" for name in VARIANTS)
    build_file_tree(root, {"platform.yaml": clusters, **{f"sites/{name}/site.yaml": body + GIT + f"cluster: {name}\n"
                                                        for name, body in VARIANTS.items()}})
    result = generator(root, "render", "--all")
    assert result.code == 0, result.text
    return root


def _site_objects(root: Path, name: str) -> tuple[list[dict], list[dict], list[dict], str]:
    docs = _build(root / f"overlays/{name}")
    flux = [d for d in _build(root / f"deploy/flux/{name}") if d["kind"] == "Kustomization"] \
        if (root / f"deploy/flux/{name}").is_dir() else []
    argocd = _build(root / f"deploy/argocd/{name}") if (root / f"deploy/argocd/{name}").is_dir() else []
    site = yaml.safe_load((root / f"sites/{name}/site.yaml").read_text())
    default = MIRROR_IMAGE.format(domain=site["domain"])  # Thinkube's Harbor of the site's domain
    mirror = image_registry((site.get("image") or {}).get("repository") or default)
    return docs, flux, argocd, mirror


@pytest.mark.parametrize("name", ["prod", *VARIANTS])
def test_platform_contracts_hold(name: str, fleet: Path) -> None:
    root = PROJECT if name == "prod" else fleet
    docs, flux, argocd, mirror = _site_objects(root, name)
    problems = (discovery_problems(docs) + scaling_problems(docs, flux, argocd) + gateway_problems(docs)
                + image_problems(docs, mirror))
    assert not problems, problems


@pytest.mark.parametrize("name", ["prod", *VARIANTS])
def test_migration_runs_before_the_pods_in_both_engines(name: str, fleet: Path) -> None:
    root = PROJECT if name == "prod" else fleet
    docs, flux, argocd, _ = _site_objects(root, name)
    wave = lambda d: int(d["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))  # noqa: E731
    job = next(d for d in docs if d["kind"] == "Job")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    secret = next((d for d in docs if d["kind"] in ("SealedSecret", "Secret")), None)
    # Argo CD: the Secret's wave, then the migration hook, then the Deployment.
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert wave(job) < wave(deployment)
    if secret is not None:
        assert wave(secret) < wave(job)
    assert all(wave(d) < wave(job) for d in docs if d["kind"] == "Namespace")
    for app in argocd:
        assert app["spec"]["source"]["path"] == f"overlays/{name}"
    # Flux: setup <- migrate (healthy when the Job completed) <- app.
    by_name = {ks["metadata"]["name"]: ks for ks in flux}
    if flux:
        setup, migrate, app = by_name[f"litellm-{name}-setup"], by_name[f"litellm-{name}-migrate"], by_name[f"litellm-{name}"]
        assert migrate["spec"]["dependsOn"] == [{"name": f"litellm-{name}-setup"}]
        assert app["spec"]["dependsOn"] == [{"name": f"litellm-{name}-migrate"}]
        assert {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                "namespace": job["metadata"]["namespace"]} in migrate["spec"]["healthChecks"]
        assert migrate["spec"]["force"] is True  # a changed Job is replaced, so it runs again
        staged = {ks["spec"]["path"]: _build(root / ks["spec"]["path"]) for ks in (setup, migrate, app)}
        kinds = {path.rsplit("/", 1)[-1]: {d["kind"] for d in objs} for path, objs in staged.items()}
        assert kinds["migrate"] == {"Job"} and "Deployment" in kinds["app"] and "Namespace" in kinds["setup"]
        assert sum(len(objs) for objs in staged.values()) == len(docs)  # each object in exactly one stage
    # Serving pods never migrate; the Job always does, with LiteLLM's entry point.
    env = {e["name"]: e.get("value") for c in deployment["spec"]["template"]["spec"]["containers"] for e in c["env"]}
    assert env["DISABLE_SCHEMA_UPDATE"] == "true"
    job_container = job["spec"]["template"]["spec"]["containers"][0]
    assert job_container["args"] == ["--skip_server_startup"] and "command" not in job_container
    assert {"name": "DISABLE_SCHEMA_UPDATE", "value": "false"} in job_container["env"]
    assert job["spec"]["backoffLimit"] >= 0 and job["spec"]["activeDeadlineSeconds"] > 0


def test_contract_checks_catch_the_defects_of_the_earlier_tree() -> None:
    """The checks fail on what the earlier tree rendered (a mapping, gateway-system only, busybox from Docker Hub,
    pinned replicas under can_disable)."""
    service = {"service": {"name": "litellm", "environment_variables": {"LITELLM_ENDPOINT": "https://x/v1"},
                           "scaling": {"resource_type": "deployment", "resource_name": "litellm",
                                       "namespace": "litellm", "min_replicas": 1, "can_disable": True}}}
    docs = [
        {"kind": "ConfigMap", "metadata": {"name": "thinkube-service-config", "namespace": "litellm",
                                           "labels": {"thinkube.io/managed": "true"}},
         "data": {"service.yaml": yaml.safe_dump(service)}},
        {"kind": "Deployment", "metadata": {"name": "litellm", "namespace": "litellm"}, "spec": {"replicas": 1, "template": {
            "spec": {"initContainers": [{"name": "wait", "image": "busybox:1.37.0"}],
                     "containers": [{"name": "litellm", "image": "harbor.example.com/library/litellm-non_root:v1.108.7"}]}}}},
        {"kind": "HTTPRoute", "metadata": {"name": "litellm-route"}, "spec": {"parentRefs": [{"namespace": "gateway-system"}]}},
        {"kind": "NetworkPolicy", "metadata": {"name": "litellm"}, "spec": {"ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}}}]}]}},
    ]
    argocd = [{"metadata": {"name": "litellm-prod"}, "spec": {"syncPolicy": {"syncOptions": ["CreateNamespace=true"]}}}]
    assert "not a list" in " ".join(discovery_problems(docs))
    assert "git pins spec.replicas" in " ".join(scaling_problems(docs, [], argocd))
    assert "self-heal would reset" in " ".join(scaling_problems(docs, [], argocd))
    assert "envoy-gateway-system" in " ".join(gateway_problems(docs))
    assert "Docker Hub" in " ".join(image_problems(docs, "harbor.example.com"))
    service["service"]["environment_variables"] = [{"name": "LITELLM_MASTER_KEY", "value": "sk-'quoted'"},
                                                   {"valueFrom": {}}, {"name": "K", "valueFrom": {"secretKeyRef": {
                                                       "namespace": "litellm", "name": "litellm-secrets", "key": "NOPE"}}}]
    docs[0]["data"]["service.yaml"] = yaml.safe_dump(service)
    found = " ".join(discovery_problems(docs))
    assert "cannot quote" not in found and "plain string" in found and "no valid name" in found and "NOPE" in found
