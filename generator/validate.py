"""Build every overlay and entry point with kustomize and check the output with kubeconform, strictly."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from generator.errors import UsageError, ValidationFailed
from generator.inputs import check_yaml_files, read_input, safe_load_limited
from generator.layout import CLUSTERS_DIR, ClusterDirs, Repo
from generator.progress import Progress
from generator.tools import kubeconform, kustomize
from generator.validate_cache import ValidateCache, target_keys
from generator.validate_conflicts import check_objects, objects_of, site_clusters


PLATFORM_PARTS = ("sealed-secrets", "argocd", "flux")


def cluster_dirs(root: Path) -> list[ClusterDirs]:
    """The rendered clusters' layers: deploy/fleet and deploy/platform, and each of deploy/clusters/<name>/."""
    found = [ClusterDirs()]
    if (root / CLUSTERS_DIR).is_dir():
        found += [ClusterDirs.of(d.name, multi=True) for d in sorted((root / CLUSTERS_DIR).iterdir()) if d.is_dir()]
    return found


@dataclass(frozen=True)
class Target:
    label: str  # what the user sees: a directory relative to the repository root
    path: Path


def targets(root: Path, sites: list[str], *, fleet: bool) -> list[Target]:
    """What to build. With the fleet, a site's entry points are built inside the fleet directory that lists
    them (deploy/fleet/flux and deploy/fleet/argocd, as the engines apply them), not once more on their own."""
    covered = _listed_by_fleet(root) if fleet else set()
    found: list[Target] = []
    unrendered = [site for site in sites if not (root / f"overlays/{site}/kustomization.yaml").is_file()]
    if unrendered:  # every one named, not only the first
        raise ValidationFailed("\n".join(f"overlays/{site}: not rendered yet; run 'generator render --site {site}'"
                                         for site in unrendered))
    for site in sites:
        for rel in (f"overlays/{site}", f"deploy/flux/{site}", f"deploy/argocd/{site}"):
            if (root / rel / "kustomization.yaml").is_file() and rel not in covered:
                found.append(Target(rel, root / rel))
    if fleet and (root / "kustomization.yaml").is_file():
        found.append(Target("kustomization.yaml (fleet)", root))
    for dirs in cluster_dirs(root) if fleet else ():
        entries = (dirs.argo_entry,) if dirs.fleet.startswith(CLUSTERS_DIR) else ()  # else the root's one resource
        for rel in (dirs.argo_listing, dirs.flux_listing, dirs.flux_entry, *entries,
                    *(f"{dirs.platform}/{part}" for part in PLATFORM_PARTS)):
            if (root / rel / "kustomization.yaml").is_file():
                found.append(Target(rel, root / rel))
    return found


def _listed_by_fleet(root: Path) -> set[str]:
    listed: set[str] = set()
    for directory in listings(root):
        path = root / directory / "kustomization.yaml"
        if not path.is_file():
            continue
        try:
            doc = safe_load_limited(read_input(path, f"{directory}/kustomization.yaml", root=root),
                                    f"{directory}/kustomization.yaml")
        except UsageError:
            continue  # its own build names the problem
        resources = doc.get("resources", []) if isinstance(doc, dict) else []
        listed |= {os.path.normpath(f"{directory}/{r}") for r in resources if isinstance(r, str)}
    return listed


def validate_tree(root: Path, sites: list[str], *, fleet: bool, warnings: list[str] | None = None,
                  cache_dir: Path | None = None, index_file: Path | None = None) -> tuple[int, int]:
    """Raise ValidationFailed naming every failing object; returns (directories, resources) checked.
    With ``cache_dir``, a directory that passed with exactly these inputs is not built again; ``index_file``
    (the repository's own tree, never a stage) lets unchanged directories skip even the hashing."""
    work = targets(root, sites, fleet=fleet)
    cache = ValidateCache(cache_dir) if cache_dir is not None else None
    keys = target_keys(root, [(t.label, t.path) for t in work], index_file=index_file) if cache else {}
    passed = {t.label: record for t in work if cache and (record := cache.get(keys[t.label])) is not None}
    todo = [t for t in work if t.label not in passed]
    checked = sum(record["resources"] for record in passed.values())
    if warnings is not None:
        warnings.extend(w for t in work if t.label in passed for w in passed[t.label]["warnings"])
    objects = {label: record["objects"] for label, record in passed.items()}
    if not todo:
        check_objects(objects, site_clusters(root, listings(root)))
        return len(work), checked
    extensions = [root / "sites" / site / "extensions" for site in sites]  # the operator's, built with the overlay
    check_yaml_files(root, [root / "base", *extensions])  # each target's own files: just before its build
    found: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="generator-validate-") as tmp:
        files: list[Path] = []
        label_of: dict[str, str] = {}
        for index, (target, output, unsealed, built) in enumerate(_build(root, todo)):
            found[target.label] = unsealed
            objects[target.label] = built
            path = Path(tmp) / f"{index:05d}.yaml"
            path.write_bytes(output)
            files.append(path)
            label_of[str(path)] = target.label
        counted, findings, per_file = kubeconform.check(files)
    if warnings is not None:
        warnings.extend(w for target in todo for w in found[target.label])
    if findings:
        lines = [f"{label_of.get(f.source, f.source)}: {f.kind}/{f.name}: {f.message}" for f in findings]
        raise ValidationFailed(f"{len(findings)} object(s) failed strict validation:\n  " + "\n  ".join(lines))
    check_objects(objects, site_clusters(root, listings(root)))  # before a render's swap: nothing written yet
    if cache:
        for path in files:
            label = label_of[str(path)]
            cache.put(keys[label], per_file.get(str(path), 0), found[label], objects[label])
    return len(work), checked + counted


BATCHED = ("deploy/flux/", "deploy/argocd/")  # each site's small entry points: built in one kustomize process


def listings(root: Path) -> list[str]:
    """The fleet's listings of every site's entry points, one cluster's or each cluster's."""
    return [rel for dirs in cluster_dirs(root) for rel in (dirs.argo_listing, dirs.flux_listing)]


def _build(root: Path, todo: list[Target]) -> list[tuple[Target, bytes, list[str], list[list[str]]]]:
    """Build and read each directory: every overlay in its own kustomize process (the sites share object
    names), every site's entry points in one more, one by one if that one fails (a conflict, an error to name).
    Reading the output (Python) overlaps the other builds (processes), one thread more than cores."""
    batch = [t for t in todo if t.label.startswith(BATCHED)] if sum(t.label.startswith(BATCHED) for t in todo) > 1 else []
    alone = [t for t in todo if t not in batch]
    sharded = set(listings(root))
    with Progress(len(todo), "built") as progress, ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        def read(target: Target, output: bytes) -> tuple[Target, bytes, list[str], list[list[str]]]:
            docs = [d for d in yaml.load_all(output, Loader=yaml.CSafeLoader) if isinstance(d, dict)]
            _check_semantics(target, docs)
            progress.advance(target.label)
            return (target, _without_sops_metadata(output, docs), _unsealed_references(target, docs),
                    objects_of(docs) if target.label.startswith("overlays/") else [])

        def build(target: Target) -> tuple[Target, bytes, list[str]]:
            if target.path != root:
                check_yaml_files(root, [target.path])
            if target.label in sharded:  # a fleet's listing of every site: built in shards (linear time)
                return read(target, kustomize.build_listing(target.path))
            return read(target, kustomize.build(target.path))

        def build_together(targets: list[Target]) -> dict[Path, bytes] | None:
            check_yaml_files(root, [t.path for t in targets])
            return kustomize.build_many([t.path for t in targets])

        def attempt(target: Target) -> tuple[Target, bytes, list[str]] | ValidationFailed:
            try:
                return build(target)
            except ValidationFailed as exc:  # the other directories still build: every broken one is named
                return exc

        together = pool.submit(build_together, batch) if batch else None
        builds = list(pool.map(attempt, alone))
        try:
            built = together.result() if together is not None else None
        except ValidationFailed:
            built = None  # built one by one below, so the failing one is named
        if built is None:
            builds += list(pool.map(attempt, batch))
        else:
            builds += list(pool.map(lambda t: read(t, built[t.path]), batch))
    failures = [str(b) for b in builds if isinstance(b, ValidationFailed)]
    if failures:
        raise ValidationFailed("\n".join(failures))
    return [b for b in builds if not isinstance(b, ValidationFailed)]


def _without_sops_metadata(output: bytes, docs: list[dict]) -> bytes:
    """A sops-encrypted Secret carries a top-level `sops:` block that Flux strips before applying."""
    if not any(doc.get("kind") == "Secret" and "sops" in doc for doc in docs):
        return output
    for doc in docs:
        if doc.get("kind") == "Secret":
            doc.pop("sops", None)
    return yaml.safe_dump_all(docs, sort_keys=False).encode()


def _check_semantics(target: Target, docs: list[dict]) -> None:
    """What a schema cannot see: a sealed Secret must keep the name and namespace it was sealed for."""
    for doc in docs:
        if doc.get("kind") != "SealedSecret":
            continue
        meta = doc.get("metadata", {})
        template = doc.get("spec", {}).get("template", {}).get("metadata", {})
        sealed_for = meta.get("annotations", {}).get("litellm-gitops.io/sealed-for")
        actual = f"{meta.get('namespace')}/{meta.get('name')}"
        if sealed_for and sealed_for != actual:
            raise ValidationFailed(f"{target.label}: SealedSecret sealed for {sealed_for} is built as {actual}; "
                                   "a namespace or name transformer would make it undecryptable")
        if template and (template.get("name", meta.get("name")) != meta.get("name")):
            raise ValidationFailed(f"{target.label}: SealedSecret template name differs from its own name")


def _unsealed_references(target: Target, docs: list[dict]) -> list[str]:
    """Keys the Deployment or the migration Job reads from litellm-secrets that the overlay's secret lacks."""
    held: set[str] | None = None
    wanted: set[str] = set()
    for doc in docs:
        if doc.get("kind") == "SealedSecret":
            held = set(doc.get("spec", {}).get("encryptedData", {}))
        elif doc.get("kind") == "Secret" and doc.get("metadata", {}).get("name") == "litellm-secrets":
            held = set(doc.get("stringData", {})) | set(doc.get("data", {}))
        elif doc.get("kind") in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"].get("containers", []):
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef", {})
                    if ref.get("name") == "litellm-secrets":
                        wanted.add(ref["key"])
    if held is None:
        return [f"{target.label}: no litellm-secrets in the overlay yet (generator secrets init, then render)"] if wanted else []
    missing = sorted(wanted - held)
    if not missing:
        return []
    return [f"{target.label}: litellm-secrets lacks {', '.join(missing)} (filled by 'generator bootstrap' or "
            "'generator secrets set'); the pod cannot start until they are sealed"]


def validate_sites(repo: Repo, sites: list[str], *, fleet: bool, warnings: list[str] | None = None) -> tuple[int, int]:
    return validate_tree(repo.root, sites, fleet=fleet, warnings=warnings, cache_dir=cache_dir(repo),
                         index_file=cache_dir(repo) / "index.json")


def cache_dir(repo: Repo) -> Path:
    return repo.work_dir / "cache" / "validate"
