"""The objects Thinkube's ``optional/litellm`` playbooks made, read from a saved dump or a live cluster.

Names as ``11_deploy.yaml`` and ``17_configure_discovery.yaml`` (thinkube df35039d) create them: the Secret
``litellm-secrets``, the ConfigMap ``litellm-config`` (its ``config.yaml``), the Deployment ``litellm``, the
HTTPRoute ``litellm-route`` (the Ingress ``litellm`` before Thinkube moved to the Gateway API), the PVC
``litellm-data-pvc``, the discovery ConfigMap ``thinkube-service-config`` and ``<namespace>-tls-secret``.

A dump is what ``kubectl get -o yaml`` (or ``-o json``) saves: a List, or several documents. It passes the input
gate (size, depth, nodes) and keeps its lines, so every complaint names the file, the line and the field. The
cluster is only read (``kubectl get``); an object that is not there is None, a cluster that cannot be read is a
ClusterError. Secret values are decoded here and never appear in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import proc
from generator.errors import ClusterError, SiteError
from generator.inputs import checked_text, kind_of, read_input
from generator.tools import kubectl
from generator.tools.kubectl import Cluster
from generator.yamlio import line_of

SECRET, CONFIG, DEPLOYMENT, ROUTE, INGRESS, PVC, DISCOVERY = (
    "litellm-secrets", "litellm-config", "litellm", "litellm-route", "litellm", "litellm-data-pvc",
    "thinkube-service-config")
CONFIG_KEY = "config.yaml"
DUMP_LIMIT = 4_000_000  # a namespace's dump is tens of kB; the node limit of the input gate holds as for any input
# kind -> the name the playbooks give it (None: the one object of that kind)
WANTED = {("Secret", SECRET), ("ConfigMap", CONFIG), ("Deployment", DEPLOYMENT), ("HTTPRoute", ROUTE),
          ("Ingress", INGRESS), ("PersistentVolumeClaim", PVC), ("ConfigMap", DISCOVERY)}
# kubectl's names for a live read, with the object's name
LIVE = (("secret", SECRET), ("configmap", CONFIG), ("deployment.apps", DEPLOYMENT),
        ("httproutes.gateway.networking.k8s.io", ROUTE), ("ingresses.networking.k8s.io", INGRESS),
        ("persistentvolumeclaim", PVC), ("configmap", DISCOVERY))


@dataclass(frozen=True)
class Found:
    """One original object, with where it was read: a dump's CommentedMap keeps lines, the cluster's JSON none."""

    kind: str
    obj: Any
    shown: str

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str((self.obj["metadata"] or {}).get("namespace") or "")

    @property
    def ident(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def line(self, *path: Any) -> int | None:
        return line_of(self.obj, path) if hasattr(self.obj, "lc") else None

    def where(self, *path: Any) -> str:
        line = self.line(*path)
        return f"{self.shown}:{line}" if line else f"{self.shown} ({self.ident})"

    def error(self, problem: str, *path: Any) -> SiteError:
        field = ".".join(str(p) for p in path)
        return SiteError(self.shown, problem, field=f"{self.ident} {field}".strip(), line=self.line(*path))

    def get(self, *path: Any) -> Any:
        node = self.obj
        for part in path:
            if isinstance(part, int):
                node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
        return node

    def text_start(self, key: str) -> int | None:
        """The line of a dump where a ConfigMap's text value begins (a block scalar: the line after its key)."""
        from ruamel.yaml.scalarstring import LiteralScalarString

        value = self.get("data", key)
        line = self.line("data", key)
        if line is None or not isinstance(value, LiteralScalarString):
            return None
        return line + 1


@dataclass(frozen=True)
class Originals:
    """What the playbooks made in one namespace. The Secret, the config and the Deployment are required."""

    shown: str
    namespace: str
    secret: Found
    config: Found
    deployment: Found
    httproute: Found | None = None
    ingress: Found | None = None
    pvc: Found | None = None
    discovery: Found | None = None
    tls_secret: Found | None = None
    managers: tuple[str, ...] | None = None  # the Deployment's Update field managers, when the source shows them

    def secret_values(self) -> dict[str, str]:
        """The Secret's values, decoded: ``data`` (base64) and ``stringData``; exit 2 naming the key otherwise."""
        values: dict[str, str] = {}
        for section, encoded in (("data", True), ("stringData", False)):
            entries = self.secret.get(section)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                raise self.secret.error(f"expected a mapping of keys, found {kind_of(entries)}", section)
            for key, value in entries.items():
                if not isinstance(value, str):
                    raise self.secret.error(f"expected a string value, found {kind_of(value)}", section, key)
                values[str(key)] = _decoded(self.secret, section, str(key), value) if encoded else str(value)
        if not values:
            raise self.secret.error("holds no data: the playbooks' Secret has the master and salt keys", "data")
        return values

    def config_text(self) -> str:
        text = self.config.get("data", CONFIG_KEY)
        if not isinstance(text, str):
            raise self.config.error(f"expected LiteLLM's config as text, found {kind_of(text)}", "data", CONFIG_KEY)
        return str(text)  # ruamel's scalar string types are str subclasses libyaml does not take


def _decoded(found: Found, section: str, key: str, value: str) -> str:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise found.error("is not base64 (a Secret's data is base64-encoded)", section, key) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise found.error("is not UTF-8 text once decoded (binary values cannot be carried into sops)",
                          section, key) from None


def read_dump(path: Path, namespace: str | None) -> Originals:
    shown = str(path)
    text = checked_text(read_input(path, shown, limit=DUMP_LIMIT), shown)
    objects: list[Found] = []
    for index, doc in enumerate(_documents(text, shown), start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SiteError(shown, f"document {index}: expected a Kubernetes object or a List, found {kind_of(doc)}")
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
        if not isinstance(items, list):
            raise SiteError(shown, f"expected a list, found {kind_of(items)}", field="items",
                            line=line_of(doc, ("items",)))
        for position, item in enumerate(items):
            objects.append(_checked_object(item, shown, line_of(items, (position,)) if items is not doc else None))
    return _gather(objects, shown, namespace)


def _documents(text: str, shown: str) -> list[Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    parser = YAML(typ="rt")
    parser.allow_duplicate_keys = False
    try:
        return list(parser.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SiteError(shown, f"YAML syntax error: {exc.problem or exc.context}",
                        line=mark.line + 1 if mark else None) from None
    except YAMLError as exc:
        raise SiteError(shown, f"YAML error: {str(exc).splitlines()[0]}") from None


def _checked_object(item: Any, shown: str, line: int | None) -> Found:
    if not isinstance(item, dict):
        raise SiteError(shown, f"expected a Kubernetes object, found {kind_of(item)}", line=line)
    kind, metadata = item.get("kind"), item.get("metadata")
    if not isinstance(kind, str) or not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise SiteError(shown, "not a Kubernetes object (kind and metadata.name are required)",
                        field="kind" if not isinstance(kind, str) else "metadata.name", line=line_of(item, ("kind",)))
    return Found(kind, item, shown)


def _gather(objects: list[Found], shown: str, namespace: str | None) -> Originals:
    """The wanted objects of one namespace; an object saved without its namespace belongs to the one asked for."""
    fallback = namespace or "litellm"
    ours = [o for o in objects if (o.kind, o.name) in WANTED or o.name.endswith("-tls-secret")]
    if namespace is None:
        spaces = sorted({o.namespace or fallback for o in ours if (o.kind, o.name) == ("Deployment", DEPLOYMENT)})
        if len(spaces) > 1:
            raise SiteError(shown, f"Deployment {DEPLOYMENT} is in several namespaces ({', '.join(spaces)}): "
                                   "name the one to adopt with --namespace")
        namespace = spaces[0] if spaces else fallback
    ours = [o for o in ours if (o.namespace or fallback) == namespace]

    def one(kind: str, name: str) -> Found | None:
        return next((o for o in ours if (o.kind, o.name) == (kind, name)), None)

    def required(kind: str, name: str, what: str) -> Found:
        found = one(kind, name)
        if found is None:
            raise SiteError(shown, f"no {kind} {namespace}/{name} ({what}); save it with "
                                   f"kubectl -n {namespace} get {kind.lower()} {name} -o yaml")
        return found

    return Originals(
        shown=shown, namespace=namespace,
        secret=required("Secret", SECRET, "its master key, salt key and credentials"),
        config=required("ConfigMap", CONFIG, "LiteLLM's config.yaml"),
        deployment=required("Deployment", DEPLOYMENT, "the proxy's env: host, Keycloak, image"),
        httproute=one("HTTPRoute", ROUTE), ingress=one("Ingress", INGRESS),
        pvc=one("PersistentVolumeClaim", PVC), discovery=one("ConfigMap", DISCOVERY),
        tls_secret=one("Secret", f"{namespace}-tls-secret"),
        managers=_managers(one("Deployment", DEPLOYMENT)),
    )


def _managers(deployment: Found | None) -> tuple[str, ...] | None:
    """Who last wrote the Deployment by Update (not apply), when the source kept managedFields."""
    entries = deployment.get("metadata", "managedFields") if deployment else None
    if not isinstance(entries, list):
        return None
    return tuple(sorted({str(e.get("manager")) for e in entries
                         if isinstance(e, dict) and e.get("operation") == "Update" and not e.get("subresource")}))


def read_cluster(cluster: Cluster, namespace: str) -> Originals:
    """Each object by name with ``kubectl get`` (read-only); kinds the cluster does not serve hold nothing."""
    shown = f"the cluster ({cluster.context or 'current context'}, namespace {namespace})"
    objects = []
    for resource, name in LIVE:
        extra = ("--show-managed-fields",) if resource.startswith("deployment") else ()
        result = kubectl.get(cluster, resource, name, "-n", namespace, *extra)
        if result.returncode != 0:
            text = result.err_text
            if any(s in text for s in ("NotFound", "not found", "the server doesn't have a resource type")):
                continue
            raise ClusterError(f"kubectl get {resource} {name} -n {namespace}: {proc.tail(text, 2)}")
        try:
            objects.append(_checked_object(json.loads(result.stdout), shown, None))
        except json.JSONDecodeError:
            raise ClusterError(f"kubectl get {resource} {name}: the answer is not JSON") from None
    tls = kubectl.get(cluster, "secret", f"{namespace}-tls-secret", "-n", namespace)
    if tls.returncode == 0:  # only its presence matters: its name and namespace
        meta = json.loads(tls.stdout).get("metadata", {})
        objects.append(Found("Secret", {"kind": "Secret", "metadata": {"name": meta.get("name"),
                                                                       "namespace": namespace}}, shown))
    return _gather(objects, shown, namespace)
