"""`generator status`: one row per site, from the site files, the sops key names and the committed SealedSecret
(issue 12). The fleet is made once with the real sops and kubeseal; status itself runs without an age key."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

from generator.layout import Repo
from generator.model import Site
from generator.status import bootstrap_state, image_label, run_status
from tests.helpers import MINIMAL_SITE, Run, build_file_tree, generator
from tests.keys import age_key, sealing_pair, sops_rules

DIGEST = "sha256:" + "0123456789abcdef" * 4
# A fleet reads one repository: beta takes MINIMAL_SITE's Flux source and changes the rest.
MINIMAL = yaml.safe_load(MINIMAL_SITE)
BETA_SITE = yaml.safe_dump({
    **MINIMAL, "domain": "example.net", "hostname": "llm.example.net", "namespace": "llm-beta",  # one cluster: its own
    "image": {"tag": None, "digest": DIGEST}, "routing": {"type": "ingress"}, "cache": {"enabled": False},
    "gitops": {"flux": MINIMAL["gitops"]["flux"], "argocd": {"enabled": False}},
})
KEYLESS = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent"}
GENERATED = ["LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "ADMIN_PASSWORD"]
ALPHA = {
    "site": "alpha",
    "hostname": "litellm.example.org",
    "image": "v1.108.7",
    "routing": "httproute",
    # DATABASE_URL was set before the render sealed the file, CLIENT_SECRET after it.
    "secrets": {"present": [*GENERATED, "DATABASE_URL", "CLIENT_SECRET"],
                "sealed": [*GENERATED, "DATABASE_URL"],
                "missing": ["PROXY_ADMIN_ID", "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY"]},
    "bootstrap": "partial",
    "engines": ["flux", "argocd"],
    "wave": 0,
    "error": None,
}
BETA = {
    "site": "beta",
    "hostname": "llm.example.net",
    "image": "sha256:0123456789ab",
    "routing": "ingress",
    "secrets": {"present": [], "sealed": [], "missing": [*GENERATED, "DATABASE_URL", "CLIENT_SECRET", "PROXY_ADMIN_ID"]},
    "bootstrap": "not run",
    "engines": ["flux"],
    "wave": 0,
    "error": None,
}
HEADER = ["SITE", "HOSTNAME", "IMAGE", "ROUTING", "SECRETS", "BOOTSTRAP", "ENGINES", "WAVE"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha: secrets in sops, partly sealed, partly bootstrapped; beta: no secrets file at all."""
    base = tmp_path_factory.mktemp("fleet")
    root = base / "repo"
    key = age_key()
    cert, _ = sealing_pair(base / "keys")
    build_file_tree(root, {"sites/alpha/site.yaml": MINIMAL_SITE, "sites/beta/site.yaml": BETA_SITE,
                           ".sops.yaml": sops_rules([key.recipient])})
    shutil.copy(cert, root / "sites/alpha/sealing-cert.pem")
    env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent"}
    for args, stdin in ((("secrets", "init", "--site", "alpha"), None),
                        (("secrets", "set", "--site", "alpha", "DATABASE_URL"), "postgresql://litellm@db/litellm\n"),
                        (("render", "--site", "alpha", "--no-validate"), None),
                        (("secrets", "set", "--site", "alpha", "CLIENT_SECRET"), "a-client-secret\n")):
        result = generator(root, *args, stdin=stdin, env=env)
        assert result.code == 0, result.text
    return root


@pytest.fixture
def copy(fleet: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fleet, tmp_path / "repo"))


def status(root: Path, *args: str) -> Run:
    return generator(root, "status", *args, env=KEYLESS)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_json_rows_without_an_age_key_and_writing_nothing(fleet: Path) -> None:
    before = snapshot(fleet)
    result = status(fleet, "--output", "json")
    assert result.code == 0 and result.err == "", result.text
    assert json.loads(result.out) == [ALPHA, BETA]
    assert [list(row) for row in json.loads(result.out)] == [list(ALPHA)] * 2  # stable key order
    assert status(fleet).out == status(fleet, "--output", "table").out  # piped too: the table, as kubectl (issue 28)
    assert snapshot(fleet) == before


def test_table_has_a_header_and_one_aligned_row_per_site(fleet: Path) -> None:
    result = status(fleet, "--output", "table")
    assert result.code == 0, result.text
    header, alpha, beta = result.out.splitlines()
    assert header.split() == HEADER
    cells = [cell.strip() for cell in alpha.split("  ") if cell.strip()]
    assert cells == ["alpha", "litellm.example.org", "v1.108.7", "httproute", "5 present, 4 sealed, 3 missing",
                     "partial", "flux,argocd", "0"]
    assert beta.startswith("beta ") and "0 present, 0 sealed, 6 missing" in beta and " flux " in beta
    for name in HEADER[1:]:  # columns line up
        assert alpha[header.index(name) - 1] == " " and alpha[header.index(name)] != " "


def test_default_on_a_terminal_is_the_table(fleet: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = Terminal(), io.StringIO()
    assert run_status(Repo(fleet), None, out, err) == 0
    assert out.getvalue().split("\n", 1)[0].split() == HEADER


def test_an_invalid_site_is_an_error_row_and_exit_1(copy: Path) -> None:
    build_file_tree(copy, {"sites/broken/site.yaml": "domain: example.org\nreplicas: many\n",
                           "sites/beta/secrets.sops.yaml": "DATABASE_URL: postgresql://plain\n"})
    result = status(copy, "--output", "json")
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    assert result.err == "2 of 3 site(s) could not be read (see the error field)\n"
    alpha, beta, broken = json.loads(result.out)
    assert alpha == ALPHA
    nothing = {key: None for key in ALPHA if key not in ("site", "error")}
    assert beta == {"site": "beta", **nothing, "error": "sites/beta/secrets.sops.yaml:1: sops: not encrypted by sops "
                    "(no sops metadata); never commit plaintext secrets"}
    assert broken == {"site": "broken", **nothing, "error": "sites/broken/site.yaml:2: replicas: Input should be a "
                      "valid integer (found a string: 'many')"}
    table = status(copy, "--output", "table")
    assert table.code == 1 and "Traceback" not in table.err
    header, *rows = table.out.splitlines()
    assert header.split() == [*HEADER, "ERROR"]
    assert rows[2].split() == ["broken", *["-"] * 7, *broken["error"].split()]


def test_no_site(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    result = status(tmp_path, "--output", "json")
    assert (result.code, result.out, result.err) == (0, "[]\n", "no sites: sites/ holds no <name>/site.yaml\n")
    table = status(tmp_path, "--output", "table")
    assert table.code == 0 and table.out.split() == HEADER and "no sites" in table.err


@pytest.mark.parametrize(("cache", "present", "state"), [
    (True, ["DATABASE_URL", "CLIENT_SECRET", "PROXY_ADMIN_ID", "S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY"], "done"),
    (True, ["DATABASE_URL", "CLIENT_SECRET"], "partial"),
    (False, ["DATABASE_URL", "CLIENT_SECRET", "PROXY_ADMIN_ID"], "done"),
    (False, ["DATABASE_URL", "CLIENT_SECRET"], "partial"),  # the proxy admin's id not stored yet (issue 26)
    (False, ["LITELLM_MASTER_KEY"], "not run"),
])
def test_bootstrap_state(cache: bool, present: list[str], state: str) -> None:
    site = Site.model_validate({"domain": "example.org", "cache": {"enabled": cache},
                                "gitops": {"flux": {"enabled": False}, "argocd": {"enabled": False}}})
    assert bootstrap_state(site, present) == state


def test_image_label_with_tag_and_digest() -> None:
    site = Site.model_validate({"domain": "example.org", "image": {"tag": "v1.108.7", "digest": DIGEST},
                                "gitops": {"flux": {"enabled": False}, "argocd": {"enabled": False}}})
    assert image_label(site.image) == "v1.108.7@sha256:0123456789ab"
