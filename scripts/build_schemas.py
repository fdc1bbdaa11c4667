#!/usr/bin/env python3
"""Build standalone, strict JSON schemas for offline kubeconform validation.

Output layout (DIR = --out):

  DIR/k8s/{kind}{-group-version suffix}.json   core Kubernetes kinds
  DIR/crds/{group}/{kind}_{version}.json       CustomResourceDefinitions
  DIR/SOURCES.txt                              where every schema came from

which matches these two kubeconform (v0.7.0) schema locations:

  -schema-location 'DIR/k8s/{{ .ResourceKind }}{{ .KindSuffix }}.json'
  -schema-location 'DIR/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'

Core schemas come from the JSON schemas bundled with the PyPI package
``kubernetes-validate`` (``kubernetes-json-schema/vX.Y.Z-local``: one shared
``_definitions.json`` plus per-kind files that ``$ref`` into it).  Each kind is
rebuilt from ``_definitions.json`` into a self-contained document: the
definitions it reaches are copied into a local ``$defs`` block and every
``$ref`` is rewritten to ``#/$defs/...``.

CRD schemas come from the ``openAPIV3Schema`` of each served version of every
CustomResourceDefinition in the ``--crd`` files and are translated from the
OpenAPI v3 / Kubernetes structural-schema dialect to JSON Schema 2020-12.

A project whose CRDs carry no schema (Argo Events: ``spec`` preserves unknown
fields) publishes a definitions file instead (``api/jsonschema/schema.json``):
``--jsonschema GROUP=FILE`` builds every kind of GROUP it declares
(``x-kubernetes-group-version-kind``, lists left out) the same way, each with
the definitions it reaches.

Strictness rules applied to every emitted schema:

* an object schema with ``properties``, without an explicit
  ``additionalProperties`` and without ``x-kubernetes-preserve-unknown-fields:
  true`` gets ``additionalProperties: false`` (not inside allOf/anyOf/oneOf/not
  branches, where it would wrongly reject sibling fields);
* top-level ``apiVersion`` and ``kind`` are pinned with ``enum`` and required;
* ``x-kubernetes-int-or-string`` accepts integers and strings;
* ``nullable: true`` adds ``null`` to ``type`` (and to ``enum``);
* OpenAPI 3.0 boolean ``exclusiveMinimum``/``exclusiveMaximum`` become the
  numeric JSON Schema form;
* CRD top-level ``metadata`` is validated against the (strict) Kubernetes
  ObjectMeta of the chosen Kubernetes version.

Output is deterministic: sorted keys, fixed indentation, trailing newline, no
timestamps and no machine-specific paths.

Dependencies: Python >= 3.11 and PyYAML.  ``kubernetes_validate`` is only
located (never imported) to find its data directory.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
K8S_DEFS_REF_PREFIXES = ("/api/_definitions.json#/$defs/", "_definitions.json#/$defs/", "#/$defs/", "#/definitions/")
OBJECT_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Keywords whose value is a single subschema / a map of subschemas / a list of
# subschemas.  Anything else (enum, default, example, const, x-*) is data and
# must never be walked as a schema.
_SUBSCHEMA_KEYS = ("additionalProperties", "items", "additionalItems", "contains",
                   "propertyNames", "unevaluatedProperties", "unevaluatedItems",
                   "if", "then", "else")
_SUBSCHEMA_MAP_KEYS = ("properties", "patternProperties", "$defs", "definitions",
                       "dependentSchemas")
_SUBSCHEMA_LIST_KEYS = ("prefixItems",)
_JUNCTOR_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_JUNCTOR_KEYS = ("not",)

# Annotations that kubeconform never uses; dropped unless --keep-descriptions.
_DOC_KEYS = ("description", "example", "examples", "externalDocs")


# --------------------------------------------------------------------------
# generic schema walking
# --------------------------------------------------------------------------

def _transform(schema: Any, *, strict: bool, keep_docs: bool, in_junctor: bool = False) -> Any:
    """Return a translated copy of one (sub)schema.

    strict: add additionalProperties: false where the rules above say so.
    in_junctor: we are inside allOf/anyOf/oneOf/not; do not close objects.
    """
    if isinstance(schema, bool) or not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUBSCHEMA_MAP_KEYS and isinstance(value, dict):
            # $defs entries are full schemas again, outside any junctor.
            inner_junctor = in_junctor and key not in ("$defs", "definitions")
            out[key] = {name: _transform(sub, strict=strict, keep_docs=keep_docs,
                                         in_junctor=inner_junctor)
                        for name, sub in value.items()}
        elif key in _SUBSCHEMA_KEYS:
            if isinstance(value, list):  # draft-4 style tuple items
                out[key] = [_transform(s, strict=strict, keep_docs=keep_docs, in_junctor=in_junctor)
                            for s in value]
            else:
                out[key] = _transform(value, strict=strict, keep_docs=keep_docs, in_junctor=in_junctor)
        elif key in _SUBSCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_transform(s, strict=strict, keep_docs=keep_docs, in_junctor=in_junctor)
                        for s in value]
        elif key in _JUNCTOR_LIST_KEYS and isinstance(value, list):
            out[key] = [_transform(s, strict=strict, keep_docs=keep_docs, in_junctor=True)
                        for s in value]
        elif key in _JUNCTOR_KEYS:
            out[key] = _transform(value, strict=strict, keep_docs=keep_docs, in_junctor=True)
        elif key in _DOC_KEYS and not keep_docs:
            continue
        else:
            out[key] = copy.deepcopy(value)

    _translate_openapi_keywords(out)

    if (strict and not in_junctor and "properties" in out
            and "additionalProperties" not in out
            and out.get("x-kubernetes-preserve-unknown-fields") is not True):
        out["additionalProperties"] = False
    return out


def _translate_openapi_keywords(s: dict[str, Any]) -> None:
    """OpenAPI v3.0 / Kubernetes extensions -> JSON Schema 2020-12, in place."""
    # int-or-string: accept both.  (Argo CD style CRDs already carry an
    # anyOf [{integer}, {string}] next to the marker; keep that as is.)
    if s.get("x-kubernetes-int-or-string") is True and not any(k in s for k in _JUNCTOR_LIST_KEYS):
        s["type"] = ["integer", "string"]

    # The k8s definitions write int-or-string / quantity as
    # oneOf [{type: string|null}, {type: integer|null}]; for null both branches
    # match and oneOf would fail, so collapse type-only branches to one union.
    for junctor in ("oneOf", "anyOf"):
        branches = s.get(junctor)
        if (isinstance(branches, list) and branches and "type" not in s
                and all(isinstance(b, dict) and set(b) == {"type"} for b in branches)):
            types: list[str] = []
            for b in branches:
                for t in (b["type"] if isinstance(b["type"], list) else [b["type"]]):
                    if t not in types:
                        types.append(t)
            del s[junctor]
            s["type"] = types if len(types) > 1 else types[0]

    # OpenAPI 3.0 boolean exclusive bounds -> numeric form.
    for bound, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(s.get(excl), bool):
            if s[excl] and bound in s:
                s[excl] = s.pop(bound)
            else:
                del s[excl]

    # nullable: true -> allow null.
    if s.pop("nullable", False) is True:
        t = s.get("type")
        if isinstance(t, str):
            s["type"] = [t, "null"]
        elif isinstance(t, list) and "null" not in t:
            s["type"] = t + ["null"]
        if isinstance(s.get("enum"), list) and None not in s["enum"]:
            s["enum"] = s["enum"] + [None]

    # Embedded resources always carry apiVersion/kind/metadata.
    if (s.get("x-kubernetes-embedded-resource") is True and "properties" in s
            and s.get("x-kubernetes-preserve-unknown-fields") is not True):
        props = s["properties"]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})


def _refs(schema: Any) -> set[str]:
    """Names of all k8s definitions referenced anywhere below `schema`."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.add(_def_name(ref))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _def_name(ref: str) -> str:
    for prefix in K8S_DEFS_REF_PREFIXES:
        if ref.startswith(prefix):
            return ref[len(prefix):]
    raise SystemExit(f"error: unsupported $ref {ref!r} (only refs into _definitions.json are handled)")


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("#/$defs/" + _def_name(v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _closure(defs: dict[str, Any], roots: set[str]) -> dict[str, Any]:
    """Definitions transitively reachable from `roots`."""
    seen: dict[str, Any] = {}
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in defs:
            raise SystemExit(f"error: dangling $ref to {name!r}")
        seen[name] = defs[name]
        todo.extend(sorted(_refs(defs[name]) - seen.keys()))
    return seen


def _pin_identity(schema: dict[str, Any], api_version: str, kind: str) -> None:
    props = schema.setdefault("properties", {})
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        sub = dict(props.get(field) or {})
        sub["type"] = "string"
        sub["enum"] = [value]
        props[field] = sub
    required = list(schema.get("required") or [])
    for field in ("kind", "apiVersion"):
        if field not in required:
            required.insert(0, field)
    schema["required"] = required
    schema["type"] = "object"


def _dump(path: Path, doc: dict[str, Any]) -> int:
    data = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data, encoding="utf-8", newline="\n")
    return len(data)


def kubeconform_kind_suffix(api_version: str) -> str:
    """Mirror kubeconform v0.7.0 pkg/registry/registry.go schemaPath()."""
    group_parts = api_version.split("/")
    suffix = "-" + group_parts[0].split(".")[0].lower()
    if len(group_parts) > 1:
        suffix += "-" + group_parts[1].lower()
    return suffix


# --------------------------------------------------------------------------
# core Kubernetes schemas
# --------------------------------------------------------------------------

def locate_k8s_schemas_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")  # locate, do not import
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: kubernetes_validate is not installed; "
                         "pip install kubernetes-validate or pass --k8s-schemas-dir")
    return Path(list(spec.submodule_search_locations)[0]) / "kubernetes-json-schema"


def load_k8s_definitions(schemas_dir: Path) -> dict[str, Any]:
    defs_file = schemas_dir / "_definitions.json"
    if not defs_file.is_file():
        raise SystemExit(f"error: {defs_file} not found")
    with defs_file.open(encoding="utf-8") as fh:
        doc = json.load(fh)
    defs = doc.get("$defs") or doc.get("definitions")
    if not isinstance(defs, dict):
        raise SystemExit(f"error: {defs_file} has no $defs/definitions block")
    return defs


def build_core(defs: dict[str, Any], out_dir: Path, keep_docs: bool) -> tuple[int, int]:
    written = size = 0
    names_seen: dict[str, str] = {}
    for def_name in sorted(defs):
        gvks = defs[def_name].get("x-kubernetes-group-version-kind")
        # DeleteOptions / WatchEvent carry one GVK per API group: not manifests.
        if not isinstance(gvks, list) or len(gvks) != 1:
            continue
        gvk = gvks[0]
        api_version = f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"]
        kind = gvk["kind"]
        filename = f"{kind.lower()}{kubeconform_kind_suffix(api_version)}.json"
        if filename in names_seen:
            raise SystemExit(f"error: {def_name} and {names_seen[filename]} both map to {filename}")
        names_seen[filename] = def_name

        root = _rewrite_refs(defs[def_name])
        local_defs = {n: _rewrite_refs(d) for n, d in _closure(defs, _refs(root)).items()}
        doc = _transform(root, strict=True, keep_docs=keep_docs)
        _pin_identity(doc, api_version, kind)
        if local_defs:
            doc["$defs"] = {n: _transform(d, strict=True, keep_docs=keep_docs) for n, d in local_defs.items()}
        doc["$schema"] = JSON_SCHEMA_DIALECT
        size += _dump(out_dir / "k8s" / filename, doc)
        written += 1
    return written, size


# --------------------------------------------------------------------------
# CRDs
# --------------------------------------------------------------------------

def _object_meta_defs(defs: dict[str, Any] | None, keep_docs: bool) -> dict[str, Any]:
    if not defs or OBJECT_META_DEF not in defs:
        return {}
    closure = _closure(defs, {OBJECT_META_DEF})
    return {n: _transform(_rewrite_refs(d), strict=True, keep_docs=keep_docs) for n, d in closure.items()}


def crd_versions(doc: dict[str, Any]):
    """Yield (group, kind, version, openAPIV3Schema) for one CRD document."""
    spec = doc.get("spec") or {}
    group = spec["group"]
    kind = spec["names"]["kind"]
    legacy = (spec.get("validation") or {}).get("openAPIV3Schema")  # apiextensions v1beta1
    versions = spec.get("versions") or [{"name": spec.get("version"), "served": True}]
    for v in versions:
        if v.get("served") is False:
            continue
        schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or legacy
        yield group, kind, v["name"], schema


def build_crd_schema(group: str, kind: str, version: str, schema: dict[str, Any],
                     meta_defs: dict[str, Any], keep_docs: bool) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    props = schema.get("properties") or {}
    original_meta = props.pop("metadata", None)
    doc = _transform(schema, strict=True, keep_docs=keep_docs)
    if meta_defs:
        meta: dict[str, Any] = {"$ref": "#/$defs/" + OBJECT_META_DEF}
        extra = {k: v for k, v in (original_meta or {}).items() if k in ("properties", "required")}
        if extra:
            # e.g. metadata.name maxLength: check it on top of ObjectMeta,
            # without closing the object a second time.
            meta = {"allOf": [meta, _transform(extra, strict=False, keep_docs=keep_docs)]}
        doc["$defs"] = meta_defs
    else:
        meta = _transform(original_meta or {"type": "object"}, strict=False, keep_docs=keep_docs)
    doc.setdefault("properties", {})["metadata"] = meta
    _pin_identity(doc, f"{group}/{version}", kind)
    doc["$schema"] = JSON_SCHEMA_DIALECT
    return doc


def build_crds(crd_files: list[Path], out_dir: Path, meta_defs: dict[str, Any],
               keep_docs: bool) -> tuple[int, int, list[str]]:
    written = size = 0
    produced: dict[str, str] = {}
    missing: list[str] = []
    for crd_file in crd_files:
        with crd_file.open(encoding="utf-8") as fh:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # same result, faster
            docs = [d for d in yaml.load_all(fh, Loader=loader) if isinstance(d, dict)]
        found = False
        for doc in docs:
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            found = True
            for group, kind, version, schema in crd_versions(doc):
                rel = f"{group}/{kind.lower()}_{version}.json"
                if not schema:
                    missing.append(f"{crd_file}: {group}/{version} {kind} has no openAPIV3Schema")
                    continue
                if rel in produced:
                    raise SystemExit(f"error: {rel} produced by both {produced[rel]} and {crd_file}")
                produced[rel] = str(crd_file)
                out = build_crd_schema(group, kind, version, schema, meta_defs, keep_docs)
                size += _dump(out_dir / "crds" / rel, out)
                written += 1
        if not found:
            raise SystemExit(f"error: {crd_file} contains no CustomResourceDefinition")
    return written, size, missing


def build_jsonschema_kinds(sources: list[tuple[str, Path]], out_dir: Path,
                           keep_docs: bool) -> tuple[int, int]:
    """The kinds of GROUP from a definitions file (GROUP, FILE), one standalone strict schema each."""
    written = size = 0
    for group, path in sources:
        defs = json.loads(path.read_text(encoding="utf-8"))["definitions"]
        for name, definition in sorted(defs.items()):
            for gvk in definition.get("x-kubernetes-group-version-kind") or []:
                if gvk["group"] != group or gvk["kind"].endswith("List"):
                    continue
                closure = _closure(defs, {name})
                own = closure.pop(name)
                doc = _transform(_rewrite_refs(own), strict=True, keep_docs=keep_docs)
                doc["$defs"] = {n: _transform(_rewrite_refs(d), strict=True, keep_docs=keep_docs)
                                for n, d in closure.items()}
                _pin_identity(doc, f"{group}/{gvk['version']}", gvk["kind"])
                doc["$schema"] = JSON_SCHEMA_DIALECT
                rel = f"{group}/{gvk['kind'].lower()}_{gvk['version']}.json"
                if (out_dir / "crds" / rel).exists():
                    raise SystemExit(f"error: {rel} produced by both a --crd file and {path}")
                size += _dump(out_dir / "crds" / rel, doc)
                written += 1
    return written, size


# --------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------

_GO_MOD_RE = re.compile(r"/pkg/mod/(?P<module>.+?)@(?P<version>v[^/]+)/(?P<path>.+)$")


def _unescape_go_module(path: str) -> str:
    return re.sub(r"!([a-z])", lambda m: m.group(1).upper(), path)


def describe_crd_source(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    m = _GO_MOD_RE.search(path.resolve().as_posix())
    where = (f"go module {_unescape_go_module(m['module'])}@{m['version']} file {m['path']}"
             if m else f"file {path.name}")
    return f"crd: {where} sha256={digest}"


def kubernetes_validate_version(package_dir: Path) -> str:
    """Version of the kubernetes_validate package at package_dir, read as text."""
    version_file = package_dir / "version.py"
    if version_file.is_file():
        m = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", version_file.read_text(encoding="utf-8"))
        if m:
            return m.group(1)
    try:
        return importlib.metadata.version("kubernetes-validate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--k8s-version", required=True, help="Kubernetes version, e.g. 1.37.0")
    ap.add_argument("--crd", action="append", default=[], type=Path,
                    help="CRD YAML file (repeatable)")
    ap.add_argument("--jsonschema", action="append", default=[], metavar="GROUP=FILE",
                    help="a definitions file (JSON Schema) declaring the kinds of GROUP (repeatable)")
    ap.add_argument("--k8s-schemas-dir", type=Path,
                    help="directory holding _definitions.json (default: kubernetes_validate's "
                         "kubernetes-json-schema/v<version>-local)")
    ap.add_argument("--keep-descriptions", action="store_true",
                    help="keep description/example annotations (larger output)")
    args = ap.parse_args(argv)

    started = time.monotonic()
    version = args.k8s_version.lstrip("v")
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        ap.error("--k8s-version must look like X.Y.Z")

    if args.k8s_schemas_dir:
        schemas_dir = args.k8s_schemas_dir
        origin = f"--k8s-schemas-dir {schemas_dir.name}"
        package_dir = schemas_dir.resolve().parent.parent
        if package_dir.name == "kubernetes_validate":
            origin = (f"pypi kubernetes-validate=={kubernetes_validate_version(package_dir)} "
                      f"kubernetes-json-schema/{schemas_dir.name}")
        k8s_source = f"core: {origin} (Kubernetes v{version})"
    else:
        root = locate_k8s_schemas_root()
        schemas_dir = root / f"v{version}-local"
        if not schemas_dir.is_dir():
            available = sorted(p.name for p in root.glob("v*-local"))
            raise SystemExit(f"error: {schemas_dir} missing; kubernetes-validate ships: {', '.join(available)}")
        k8s_source = (f"core: pypi kubernetes-validate=={kubernetes_validate_version(root.parent)} "
                      f"kubernetes-json-schema/v{version}-local (Kubernetes v{version})")
    defs = load_k8s_definitions(schemas_dir)
    defs_digest = hashlib.sha256((schemas_dir / "_definitions.json").read_bytes()).hexdigest()
    k8s_source += f" _definitions.json sha256={defs_digest}"

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("k8s", "crds"):  # only the parts this script owns
        if (out / sub).exists():
            shutil.rmtree(out / sub)

    keep_docs = args.keep_descriptions
    n_core, size_core = build_core(defs, out, keep_docs)
    meta_defs = _object_meta_defs(defs, keep_docs)
    crd_files = sorted(set(args.crd), key=lambda p: p.as_posix())
    n_crd, size_crd, missing = build_crds(crd_files, out, meta_defs, keep_docs)
    for line in missing:
        print(f"warning: {line}", file=sys.stderr)
    jsonschemas = sorted((group, Path(file)) for group, _, file in (a.partition("=") for a in args.jsonschema))
    n_json, size_json = build_jsonschema_kinds(jsonschemas, out, keep_docs)
    n_crd += n_json
    size_crd += size_json
    crd_files += [path for _, path in jsonschemas]

    sources = [
        "# Generated by scripts/build_schemas.py; do not edit.",
        f"kubernetes-version: {version}",
        k8s_source,
        *sorted(describe_crd_source(p) for p in crd_files),
    ]
    (out / "SOURCES.txt").write_text("\n".join(sources) + "\n", encoding="utf-8", newline="\n")

    elapsed = time.monotonic() - started
    print(f"wrote {n_core + n_crd} schemas to {out} "
          f"({n_core} core Kubernetes v{version} kinds, {n_crd} CRD versions from {len(crd_files)} files; "
          f"{(size_core + size_crd) / 1e6:.1f} MB) in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
