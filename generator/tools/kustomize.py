"""kustomize, as shipped inside the pinned kubectl (``kubectl kustomize``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from generator import proc
from generator.errors import ValidationFailed
from generator.tools import require


def build(directory: Path) -> bytes:
    result = proc.run([require("kubectl"), "kustomize", directory], check=False, timeout=120)
    if result.returncode != 0:
        raise ValidationFailed(f"kustomize build {directory}: {proc.tail(result.err_text or result.text)}")
    return result.stdout


ORIGIN = "config.kubernetes.io/origin"


def build_many(directories: list[Path]) -> dict[Path, bytes] | None:
    """Many kustomizations in one kustomize process (each is still built as its own unit, with its own
    transformers): a fleet's small entry-point directories cost one start-up instead of hundreds. The output
    is split back by each object's origin annotation, which is then dropped. None when that cannot be done
    (two directories hold the same object, or any build error): build them one by one to name the culprit."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="generator-build-") as tmp:
        rels = [os.path.relpath(d.resolve(), tmp) for d in directories]
        listing = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": rels,
                   "buildMetadata": ["originAnnotations"]}
        Path(tmp, "kustomization.yaml").write_text(json.dumps(listing))
        result = proc.run([require("kubectl"), "kustomize", tmp], check=False, timeout=600)
        if result.returncode != 0:
            return None
        owner = {os.path.normpath(os.path.join(tmp, rel)): directory for rel, directory in zip(rels, directories)}
        split: dict[Path, list[object]] = {directory: [] for directory in directories}
        try:
            for doc in yaml.load_all(result.stdout, Loader=yaml.CSafeLoader):
                if doc is None:
                    continue
                annotations = doc["metadata"]["annotations"]
                origin = yaml.load(annotations.pop(ORIGIN), Loader=yaml.CSafeLoader)["path"]
                if not annotations:
                    del doc["metadata"]["annotations"]
                directory = owner[os.path.dirname(os.path.normpath(os.path.join(tmp, origin)))]
                split[directory].append(doc)
        except (KeyError, TypeError, AttributeError, yaml.YAMLError):
            return None  # an object whose origin is not one of the directories' own files
    return {d: yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False).encode() for d, docs in split.items()}


SHARD = 100  # directories a shard lists: kustomize's build time grows with the square of the objects it holds
LISTING_KEYS = {"apiVersion", "kind", "resources", "patches"}


def build_listing(directory: Path, shard: int = SHARD) -> bytes:
    """A kustomization that only lists directories (a fleet's sites) and inline patches, built in shards of
    ``shard`` directories, each with every patch, spread over the cores; their outputs joined. kustomize (v5.8)
    takes time quadratic in the objects of one build (kubernetes-sigs/kustomize#5084): the Flux fleet of 1000
    sites (4000 objects) takes 32 s whole, 250 sites 1.5 s. The same objects come out, as the listing applies
    no transformer but the patches, which act on each object alone (a patch that matches nothing in a shard
    is no error): an object two shards both hold is refused, as kustomize refuses it in one build. Anything
    else (other fields, a patch file, few directories) is built whole."""
    import yaml
    from concurrent.futures import ThreadPoolExecutor

    try:
        listing = yaml.load((directory / "kustomization.yaml").read_bytes(), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError):
        return build(directory)
    resources = listing.get("resources") if isinstance(listing, dict) else None
    patches = listing.get("patches", []) if isinstance(listing, dict) else None
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources) or set(listing) - LISTING_KEYS \
            or not isinstance(patches, list) or any(not isinstance(p, dict) or "path" in p for p in patches):
        return build(directory)
    files = [r for r in resources if (directory / r).is_file()]
    folders = [r for r in resources if r not in files]
    if len(folders) <= shard or any("/" in r or (directory / r).is_symlink() for r in files) \
            or any((directory / r).is_symlink() or not (directory / r).is_dir() for r in folders):
        return build(directory)
    with tempfile.TemporaryDirectory(prefix="generator-shards-") as tmp:
        parts = []
        for index, start in enumerate(range(0, len(folders), shard)):
            part = Path(tmp, f"{index:04d}")
            part.mkdir()
            own = files if index == 0 else []
            for name in own:  # the listing's own files (a fleet's platform object), with the first shard
                (part / Path(name).name).write_bytes((directory / name).read_bytes())
            rels = [Path(name).name for name in own] + [
                os.path.relpath((directory / r).resolve(), part) for r in folders[start:start + shard]]
            part.joinpath("kustomization.yaml").write_text(json.dumps(
                {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": rels,
                 **({"patches": patches} if patches else {})}))
            parts.append(part)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            outputs = list(pool.map(build, parts))
    seen: dict[tuple[str, str, str, str], int] = {}
    for index, output in enumerate(outputs):
        for doc in yaml.load_all(output, Loader=yaml.CSafeLoader):
            if not isinstance(doc, dict):
                continue
            meta = doc.get("metadata") or {}  # kustomize's id: apiVersion, kind, namespace ("" is default), name
            key = (str(doc.get("apiVersion")), str(doc.get("kind")), str(meta.get("namespace") or "default"),
                   str(meta.get("name")))
            if seen.setdefault(key, index) != index:
                raise ValidationFailed(f"kustomize build {directory}: may not add resource with an already registered "
                                       f"id: {key[1]}.{key[0]} {key[2]}/{key[3]} (two of the listed directories hold it)")
    return b"---\n".join(output for output in outputs if output.strip())
