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
