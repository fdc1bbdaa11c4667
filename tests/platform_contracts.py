"""Thinkube's contracts, as Thinkube's own code reads the objects we render. Each check returns problems.

Sources (thinkube/thinkube at df35039d, thinkube/thinkube-control at 77f207fd):
* ``ansible/roles/code_server_env_update/tasks/main.yaml`` reads every ConfigMap labelled
  ``thinkube.io/managed=true``, key ``service.yaml``, takes ``service.environment_variables`` through
  ``flatten | selectattr('value', 'defined')`` and writes ``export NAME="VALUE"`` into a file with
  ``bash -c '...'``: an entry without a name fails the whole run, a ``'`` in a value breaks the
  command, ``"``, ``$`` and backquotes are read by the shell. A mapping is silently dropped.
  ``core/jupyterhub/templates/service-discovery-init.sh`` resolves
  ``valueFrom.secretKeyRef.{namespace,name,key}``.
* thinkube-control ``backend/app/services/k8s_manager.py`` scales or disables a service by patching
  ``spec.replicas`` of the first Deployment in ``scaling.namespace`` whose name contains
  ``service.name``.
* ``ansible/40_thinkube/core/infrastructure/gateway-api/10_deploy.yaml``: Envoy Gateway and its proxy
  pods run in ``envoy-gateway-system``; the Gateway object lives in ``gateway-system``.
* Images come through Harbor (``registry.<domain>/library/...``), never Docker Hub.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from generator.model import BOOTSTRAP_SECRET_KEYS, DOCKER_HUB, GENERATED_SECRET_KEYS, S3_SECRET_KEYS, image_registry

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SHELL_UNSAFE = set("'\"$`\\\n")
ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system"


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def discovery_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Every managed ConfigMap's environment_variables as code-server's and JupyterHub's readers take them."""
    problems: list[str] = []
    held: set[str] | None = None
    for sealed in _kind(docs, "SealedSecret"):
        held = set(sealed["spec"]["encryptedData"])
    for cm in _kind(docs, "ConfigMap"):
        if cm["metadata"].get("labels", {}).get("thinkube.io/managed") != "true":
            continue
        name = cm["metadata"]["name"]
        if "service.yaml" not in cm.get("data", {}):
            problems.append(f"{name}: a managed ConfigMap without data.service.yaml")
            continue
        service = yaml.safe_load(cm["data"]["service.yaml"]).get("service")
        if not isinstance(service, dict):
            problems.append(f"{name}: service.yaml has no service mapping")
            continue
        entries = service.get("environment_variables", [])
        if not isinstance(entries, list):
            problems.append(f"{name}: environment_variables is a {type(entries).__name__}, not a list: "
                            "the reader drops it")
            continue
        for index, entry in enumerate(entries):
            where = f"{name}: environment_variables[{index}]"
            if not isinstance(entry, dict) or not ENV_NAME.match(str(entry.get("name", ""))):
                problems.append(f"{where}: no valid name: {entry!r}")
                continue
            if ("value" in entry) == ("valueFrom" in entry):
                problems.append(f"{where}: needs exactly one of value and valueFrom")
            elif "value" in entry:
                value = entry["value"]
                if not isinstance(value, str) or SHELL_UNSAFE & set(value):
                    problems.append(f"{where}: value {value!r} is not a plain string the reader can quote")
            else:
                problems += _secret_ref_problems(where, entry["valueFrom"], cm["metadata"].get("namespace"), held)
    return problems


def _secret_ref_problems(where: str, source: Any, namespace: str | None, held: set[str] | None) -> list[str]:
    ref = source.get("secretKeyRef") if isinstance(source, dict) else None
    if not isinstance(ref, dict) or not all(isinstance(ref.get(k), str) and ref[k] for k in ("namespace", "name", "key")):
        return [f"{where}: valueFrom must be secretKeyRef with namespace, name and key"]
    problems = []
    if ref["namespace"] != namespace:
        problems.append(f"{where}: secretKeyRef namespace {ref['namespace']} is not the site's {namespace}")
    if ref["name"] != "litellm-secrets":
        problems.append(f"{where}: secretKeyRef names {ref['name']}, not the site's litellm-secrets")
    filled_later = set(BOOTSTRAP_SECRET_KEYS) | set(S3_SECRET_KEYS)  # bootstrap fills these
    available = (held if held is not None else set(GENERATED_SECRET_KEYS)) | filled_later
    if ref["key"] not in available:
        problems.append(f"{where}: secretKeyRef key {ref['key']} is neither sealed nor filled by bootstrap")
    return problems


def scaling_problems(docs: list[dict[str, Any]], flux: list[dict[str, Any]], argocd: list[dict[str, Any]]) -> list[str]:
    """What the discovery ConfigMap promises about scaling, against what the engines will do."""
    problems: list[str] = []
    deployments = _kind(docs, "Deployment")
    for cm in _kind(docs, "ConfigMap"):
        if cm["metadata"].get("labels", {}).get("thinkube.io/managed") != "true":
            continue
        service = yaml.safe_load(cm["data"]["service.yaml"])["service"]
        scaling = service["scaling"]
        namespace = scaling.get("namespace", cm["metadata"].get("namespace"))
        matches = [d for d in deployments if d["metadata"].get("namespace") == namespace
                   and service["name"] in d["metadata"]["name"]]
        if [d["metadata"]["name"] for d in matches] != [scaling["resource_name"]]:
            problems.append(f"thinkube-control would scale {[d['metadata']['name'] for d in matches]}, "
                            f"not {scaling['resource_name']}")
            continue
        pinned = "replicas" in matches[0]["spec"]
        if scaling["can_disable"] and pinned:
            problems.append(f"can_disable is true but git pins spec.replicas={matches[0]['spec']['replicas']}: "
                            "the next sync undoes the platform's scaling")
        if not scaling["can_disable"] and not pinned and not _kind(docs, "HorizontalPodAutoscaler"):
            problems.append("can_disable is false, yet nothing in git owns the replica count")
        if scaling["can_disable"]:
            for app in argocd:
                ignored = [i for i in app["spec"].get("ignoreDifferences", [])
                           if i.get("kind") == "Deployment" and "/spec/replicas" in i.get("jsonPointers", [])]
                options = app["spec"].get("syncPolicy", {}).get("syncOptions", [])
                if not ignored or "RespectIgnoreDifferences=true" not in options:
                    problems.append(f"Argo CD {app['metadata']['name']}: self-heal would reset spec.replicas "
                                    "(no ignoreDifferences with RespectIgnoreDifferences)")
            for ks in flux:
                for patch in ks["spec"].get("patches", []):
                    if "replicas" in str(patch):
                        problems.append(f"Flux {ks['metadata']['name']}: a patch sets replicas")
    return problems


def gateway_problems(docs: list[dict[str, Any]]) -> list[str]:
    """The NetworkPolicy admits the pods that carry the traffic: Envoy's proxies, or the ingress controller."""
    problems: list[str] = []
    policies = _kind(docs, "NetworkPolicy")
    routes, ingresses = _kind(docs, "HTTPRoute"), _kind(docs, "Ingress")
    for policy in policies:
        admitted = {peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    for rule in policy["spec"].get("ingress", []) for peer in rule.get("from", [])}
        if routes and ENVOY_GATEWAY_NAMESPACE not in admitted:
            problems.append(f"NetworkPolicy {policy['metadata']['name']} admits {sorted(filter(None, admitted))}, "
                            f"not {ENVOY_GATEWAY_NAMESPACE} where the gateway's Envoy proxies run")
        if ingresses and not admitted - {None}:
            problems.append(f"NetworkPolicy {policy['metadata']['name']} admits no ingress controller namespace")
    for route in routes:
        for parent in route["spec"]["parentRefs"]:
            if parent.get("namespace") == ENVOY_GATEWAY_NAMESPACE:
                problems.append("the HTTPRoute's parent is the Gateway object (gateway-system), not the proxies' namespace")
    return problems


def image_problems(docs: list[dict[str, Any]], mirror: str) -> list[str]:
    """Every image of every pod comes through the site's registry mirror, pinned."""
    problems: list[str] = []
    for doc in docs:
        if doc.get("kind") not in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            image, where = container["image"], f"{doc['kind']}/{doc['metadata']['name']}: {container['name']}"
            registry = image_registry(image)
            if registry in DOCKER_HUB:
                problems.append(f"{where}: {image} pulls from Docker Hub")
            elif registry != mirror:
                problems.append(f"{where}: {image} is not from the site's mirror {mirror}")
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if "@sha256:" not in image and (not tag or tag == "latest"):
                problems.append(f"{where}: {image} is not pinned")
    return problems
