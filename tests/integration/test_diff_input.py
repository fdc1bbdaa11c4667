"""`generator diff` refuses bad input before it talks to a cluster, and says in one line why it could not compare.
(Against a live API server it is tested in tests/cluster/test_gitops_loop.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import fingerprint, generator

pytestmark = pytest.mark.tools


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(("args", "code", "says"), [
    (("--site", "nope"), 2, "unknown site 'nope'"),
    (("--site", "../etc"), 2, "site name '../etc' is invalid"),
    (("--site", "prod", "--kubeconfig", "/nonexistent/kubeconfig"), 2, "does not exist"),
])
def test_bad_input_exits_2(repo: Path, args: tuple[str, ...], code: int, says: str) -> None:
    before = fingerprint(repo)
    result = generator(repo, "diff", *args)
    assert result.code == code, result.text
    assert says in result.err, result.err
    assert fingerprint(repo) == before


def test_an_unrendered_site_exits_2(repo: Path) -> None:
    (repo / "overlays/prod/kustomization.yaml").unlink()
    result = generator(repo, "diff", "--site", "prod")
    assert result.code == 2 and "overlays/prod is not rendered yet" in _one_line(result.err), result.text


@pytest.mark.parametrize("config", [
    "not: [a kubeconfig",                                                     # not YAML
    "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",  # no cluster in it
    ("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: {server: 'https://127.0.0.1:1'}}]\n"
     "contexts: [{name: x, context: {cluster: x, user: x}}]\nusers: [{name: x, user: {}}]\n"),  # nothing listens
])
def test_a_cluster_that_cannot_be_read_exits_3_in_one_line(repo: Path, tmp_path: Path, config: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(config)
    result = generator(repo, "diff", "--site", "prod", "--kubeconfig", str(path), env={"KUBECONFIG": ""})
    assert result.code == 3, result.text
    assert _one_line(result.err).startswith("error: cannot read namespace litellm from the cluster"), result.err
