"""The operator's extension slot: sites/<site>/extensions/, a Kustomization or Component the overlay includes,
that validation covers and the generator never writes to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from generator.tools import kustomize
from tests.helpers import MINIMAL_SITE, build_file_tree, fingerprint, generator
from tests.keys import sealing_pair

pytestmark = pytest.mark.tools

RESOURCES = {
    "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [notes.yaml]\n",
    "notes.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-notes}\ndata: {owner: ai-platform}\n",
}
COMPONENT = {
    "kustomization.yaml": (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [notes.yaml]\npatches:\n"
        "  - target: {kind: Deployment, name: litellm}\n    patch: |\n      - op: add\n"
        "        path: /spec/template/metadata/annotations\n        value: {example.com/owner: ai-platform}\n"),
    "notes.yaml": RESOURCES["notes.yaml"],
}


def _repo(tmp_path: Path, kind: str, files: dict[str, str] | None) -> Path:
    root = tmp_path / "repo"
    cert, _ = sealing_pair(tmp_path / "keys")
    build_file_tree(root, {"sites/x/site.yaml": MINIMAL_SITE + f"extensions: {kind}\n",
                           **{f"sites/x/extensions/{k}": v for k, v in (files or {}).items()}})
    (root / "sites/x/sealing-cert.pem").write_bytes(cert.read_bytes())
    return root


def _objects(root: Path) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(kustomize.build(root / "overlays/x")) if d}


@pytest.mark.parametrize(("kind", "files"), [("resources", RESOURCES), ("component", COMPONENT)])
def test_the_overlay_includes_the_extension_and_validation_covers_it(tmp_path: Path, kind: str, files: dict) -> None:
    root = _repo(tmp_path, kind, files)
    before = {p: p.read_bytes() for p in (root / "sites/x/extensions").iterdir()}
    for args in (("render", "--site", "x"), ("validate", "--site", "x"), ("render", "--site", "x", "--check")):
        result = generator(root, *args)
        assert result.code == 0, (args, result.text)
    objects = _objects(root)
    notes = objects[("ConfigMap", "team-notes")]
    assert notes["metadata"]["namespace"] == "litellm"  # the site's namespace, like every object of the site
    if kind == "component":  # a Component patches the generated objects too
        deployment = objects[("Deployment", "litellm")]
        assert deployment["spec"]["template"]["metadata"]["annotations"] == {"example.com/owner": "ai-platform"}
    assert {p: p.read_bytes() for p in (root / "sites/x/extensions").iterdir()} == before  # never written
    # a mistake in the extension fails validation strictly, as a mistake in the generated tree would
    (root / "sites/x/extensions/notes.yaml").write_text(files["notes.yaml"].replace("data: {owner", "dta: {owner"))
    result = generator(root, "validate", "--site", "x")
    assert result.code != 0 and "dta" in result.text, result.text


@pytest.mark.parametrize(("kind", "files", "says"), [
    ("resources", None, "extensions: sites/x/extensions/kustomization.yaml is missing"),
    ("component", RESOURCES, "sites/x/extensions/kustomization.yaml:2: kind: is a Kustomization, but the site says "
                             "extensions: component"),
    ("resources", {"kustomization.yaml": "a: " + "[" * 100 + "]" * 100 + "\n"}, "sites/x/extensions/kustomization.yaml"),
])
def test_a_wrong_extension_exits_2_and_writes_nothing(tmp_path: Path, kind: str, files: dict | None, says: str) -> None:
    root = _repo(tmp_path, kind, files)
    result = generator(root, "render", "--site", "x")
    errors = [line for line in result.err.splitlines() if not line.startswith("warning: ")]
    assert result.code == 2 and len(errors) == 1 and says in errors[0], result.text
    assert fingerprint(root) == {}


def test_an_extension_file_that_leads_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path, "resources", RESOURCES)
    outside = tmp_path / "outside.yaml"
    outside.write_text(RESOURCES["notes.yaml"])
    os.remove(root / "sites/x/extensions/notes.yaml")
    (root / "sites/x/extensions/notes.yaml").symlink_to(outside)
    result = generator(root, "render", "--site", "x")
    assert result.code == 2 and "sites/x/extensions/notes.yaml" in result.err, result.text
    assert fingerprint(root) == {}
