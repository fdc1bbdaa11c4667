"""Issue 13: the render and validation caches never change a result.

One byte changed in each kind of input (site file, sops file, sealing certificate, schema, tool, generator
code) makes the affected site render or validate again; an output edited behind the cache's back, a corrupt
record and a stale one are detected and rebuilt. What was redone is read from the caches' own records: a
render record is rewritten (new inode) only when its site was rendered in full, and a validation record
is added only when a directory was built and checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.render_cache import provable
from generator.tools import find, schemas_dir
from tests.helpers import MINIMAL_SITE, PROJECT, build_file_tree, generator
from tests.keys import age_key, sealing_pair, sops_rules

pytestmark = pytest.mark.tools
SITES = ("one", "two")
TOOLS = ("kubectl", "kubeconform", "kubeseal", "sops")


class Fleet:
    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.root, self.env, self.log = root, env, log

    def run(self, *args: str, expect: int = 0, stdin: str | None = None, **env: str):  # noqa: ANN201 - tests.helpers.Run
        self.log.write_text("")
        result = generator(self.root, *args, stdin=stdin, env={**self.env, **env})
        assert result.code == expect, result.text
        return result

    def calls(self) -> list[str]:
        return self.log.read_text().split()

    def render_records(self) -> dict[str, int]:
        directory = self.root / ".generator/cache/render"
        return {p.stem: p.stat().st_ino for p in directory.glob("*.json")}

    def validate_records(self) -> set[str]:
        return {p.name for p in (self.root / ".generator/cache/validate").glob("*/*.json")}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """Two sealed sites, rendered and validated once for the module; each test works on a copy."""
    tmp_path = tmp_path_factory.mktemp("caches")
    root = tmp_path / "repo"
    key = age_key()
    files = {f"sites/{name}/site.yaml": MINIMAL_SITE + f"namespace: llm-{name}\n" for name in SITES}
    build_file_tree(root, {**files, ".sops.yaml": sops_rules([key.recipient])})
    for name in SITES:
        cert, _private = sealing_pair(tmp_path / f"keys-{name}")
        shutil.copy(cert, root / f"sites/{name}/sealing-cert.pem")
    shims, log = tmp_path / "shims", tmp_path / "calls.log"
    shims.mkdir()
    for tool in TOOLS:  # count every tool call, then run the real tool
        real = find(tool)
        assert real is not None, tool
        (shims / tool).write_text(f'#!/bin/sh\necho {tool} >> "{log}"\nexec "{real}" "$@"\n')
        (shims / tool).chmod(0o755)
    env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent", "GENERATOR_TOOLS_PATH": str(shims)}
    fleet = Fleet(root, env, log)
    for name in SITES:
        fleet.run("secrets", "init", "--site", name)
    fleet.run("render", "--all")
    return fleet


@pytest.fixture
def fleet(made: Fleet, tmp_path: Path) -> Fleet:
    root = Path(shutil.copytree(made.root, tmp_path / "repo", symlinks=True))
    copy = Fleet(root, made.env, made.log)
    copy.run("render", "--all")  # new inodes: every site rendered once more (keyless) and recorded again
    assert "kubeseal" not in copy.calls() and "sops" not in copy.calls()
    return copy


def test_nothing_changed_nothing_done(fleet: Fleet) -> None:
    records = fleet.render_records()
    assert set(records) == {*SITES, "_fleet"}
    result = fleet.run("render", "--all")
    assert result.out.startswith("nothing to do:") and fleet.calls() == []
    assert fleet.render_records() == records  # not even rewritten
    fleet.run("validate", "--all")
    assert fleet.calls() == [], "render validated and recorded every directory it wrote"


def test_site_file_secrets_and_certificate_each_render_their_site_again(fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.render_records()
    site_file = fleet.root / "sites/one/site.yaml"
    site_file.write_text(site_file.read_text() + "# one byte more\n")
    fleet.run("render", "--all")
    after = fleet.render_records()
    assert after["one"] != before["one"] and after["two"] == before["two"]
    assert "kubeseal" not in fleet.calls()  # its secret was unchanged: the committed ciphertext is kept

    sealed = fleet.root / "overlays/two/setup/sealed-secret.yaml"
    old = sealed.read_bytes()
    fleet.run("secrets", "set", "--site", "two", "UI_PASSWORD_EXTRA", stdin="a-new-value")
    fleet.run("render", "--all")
    again = fleet.render_records()
    assert again["two"] != after["two"] and again["one"] == after["one"]
    assert fleet.calls().count("kubeseal") == 1 and sealed.read_bytes() != old

    cert, _ = sealing_pair(tmp_path / "rotated")
    shutil.copy(cert, fleet.root / "sites/one/sealing-cert.pem")
    fleet.run("render", "--all")
    final = fleet.render_records()
    assert final["one"] != again["one"] and final["two"] == again["two"]
    assert fleet.calls().count("kubeseal") == 1  # one site resealed, in one call


def test_generator_code_renders_and_validates_everything_again(fleet: Fleet, tmp_path: Path) -> None:
    before, validated = fleet.render_records(), fleet.validate_records()
    code = tmp_path / "code"
    shutil.copytree(PROJECT / "generator", code / "generator", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT / "scripts", code / "scripts")
    layout = code / "generator/layout.py"
    layout.write_text(layout.read_text() + "# one byte more\n")
    fleet.run("render", "--all", PYTHONPATH=str(code), GENERATOR_SCHEMAS=str(schemas_dir()))
    after = fleet.render_records()
    assert all(after[name] != before[name] for name in (*SITES, "_fleet"))
    assert "nothing to do" in fleet.run("render", "--all", PYTHONPATH=str(code), GENERATOR_SCHEMAS=str(schemas_dir())).out
    fleet.run("validate", "--all", PYTHONPATH=str(code), GENERATOR_SCHEMAS=str(schemas_dir()))
    assert len(fleet.validate_records() - validated) == len(validated)  # every directory built and checked again


def test_one_changed_site_is_the_only_one_validated_again(fleet: Fleet) -> None:
    validated = fleet.validate_records()
    site_file = fleet.root / "sites/two/site.yaml"
    site_file.write_text(site_file.read_text() + "resources:\n  requests: {cpu: 150m, memory: 300Mi}\n")
    fleet.run("render", "--all", "--no-validate")
    fleet.run("validate", "--all")
    new = fleet.validate_records() - validated
    # overlays/two (changed bytes); the entry points of two and the fleet layer read the same bytes as before
    assert 1 <= len(new) < 3 * len(SITES), new
    assert fleet.calls().count("kubectl") == 1 and fleet.calls().count("kubeconform") == 1


def test_schema_and_tool_changes_validate_everything_again(fleet: Fleet, tmp_path: Path) -> None:
    validated = fleet.validate_records()
    schemas = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), schemas)
    one_schema = next(iter(sorted((schemas / "k8s").glob("*.json"))))
    one_schema.write_bytes(one_schema.read_bytes() + b" ")
    fleet.run("validate", "--all", GENERATOR_SCHEMAS=str(schemas))
    with_schema = fleet.validate_records()
    assert len(with_schema - validated) == len(validated)  # a new key for every directory

    tools = tmp_path / "other-tools"
    tools.mkdir()
    for tool in TOOLS:
        shutil.copy(Path(fleet.env["GENERATOR_TOOLS_PATH"]) / tool, tools / tool)
    real = find("kubeconform")
    assert real is not None
    shutil.copy2(real, tools / "kubeconform-copy")  # the same version, but another binary: trusted no more
    (tools / "kubeconform").write_text((tools / "kubeconform").read_text().replace(str(real), str(tools / "kubeconform-copy")))
    fleet.run("validate", "--all", GENERATOR_SCHEMAS=str(schemas), GENERATOR_TOOLS_PATH=str(tools))
    assert len(fleet.validate_records() - with_schema) == len(validated)


def test_edited_outputs_and_corrupt_records_are_caught(fleet: Fleet) -> None:
    config = fleet.root / "overlays/one/app/config.yaml"
    good = config.read_bytes()
    config.write_bytes(good + b"# edited by hand\n")
    result = fleet.run("render", "--all")
    assert "updated   overlays/one/app/config.yaml" in result.out and config.read_bytes() == good

    stat = config.stat()
    config.write_bytes(good.replace(b"litellm", b"LITELLM", 1))
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: the ctime still differs
    assert "updated   overlays/one/app/config.yaml" in fleet.run("render", "--all").out

    record = fleet.root / ".generator/cache/render/two.json"
    record.write_text("{not json")
    fleet.run("render", "--all")
    assert record.read_text().startswith('{"version":')

    for path in (fleet.root / ".generator/cache/validate").glob("*/*.json"):
        path.write_text('{"key": "tampered", "resources": 1, "warnings": []}')
    fleet.run("validate", "--all")
    assert "kubectl" in fleet.calls()  # a record for another key is no record
    fleet.run("validate", "--all")
    assert fleet.calls() == []

    index = fleet.root / ".generator/cache/validate/index.json"  # the stat index of each directory's key
    index.write_text("[1, 2")
    fleet.run("validate", "--all")
    assert fleet.calls() == [] and index.read_text().startswith('{"env":')  # keys hashed again, all still valid


def test_added_outputs_and_restamped_inputs_are_caught(fleet: Fleet) -> None:
    """The record proves a directory unchanged by its own signature (an entry added or removed moves its
    mtime and ctime), and an input by its stat signature (following a symlink) before its hash is reused."""
    stray = fleet.root / "overlays/one/app/stray.yaml"
    stray.write_text("kind: ConfigMap\n")
    nested = fleet.root / "deploy/flux/two/extra/more.yaml"
    nested.parent.mkdir()
    nested.write_text("kind: ConfigMap\n")
    result = fleet.run("render", "--all")
    assert "deleted   overlays/one/app/stray.yaml" in result.out and "deleted   deploy/flux/two/extra/more.yaml" in result.out
    assert not stray.exists() and not nested.parent.exists()
    assert fleet.run("render", "--all").out.startswith("nothing to do:")

    site_file = fleet.root / "sites/two/site.yaml"
    text, stat = site_file.read_text(), site_file.stat()
    site_file.write_text(text.replace("llm-two", "llm-owt"))  # same size; its mtime put back below
    os.utime(site_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = fleet.run("render", "--all")
    assert "llm-owt" in (fleet.root / "overlays/two/setup/namespace.yaml").read_text(), result.out

    moved = fleet.root / "elsewhere.yaml"  # a symlinked input: its target's signature counts
    moved.write_text(site_file.read_text())
    site_file.unlink()
    site_file.symlink_to(moved)
    assert fleet.run("render", "--all").out.startswith("nothing to do:")
    moved.write_text(text)
    fleet.run("render", "--all")
    assert "llm-two" in (fleet.root / "overlays/two/setup/namespace.yaml").read_text()


def test_a_signature_from_whole_seconds_proves_nothing_in_its_own_second() -> None:
    """On a filesystem that keeps whole seconds, a change made in the second the record is written keeps the
    signature: such a signature is recorded empty, so it never matches (git's racily clean entries)."""
    second = 1_000_000_000
    written = 1_700_000_000 * second + 400_000_000
    fine = [10, written - 123, written - 456, 7]  # nanoseconds: trusted even from the same instant
    assert provable(fine, written) == fine
    coarse_old = [10, written // second * second - 5 * second, written // second * second - 5 * second, 7]
    coarse_new = [10, written // second * second, written // second * second, 7]
    assert provable(coarse_old, written) == coarse_old
    assert provable(coarse_new, written) == [] and coarse_new != []


def test_a_check_in_a_fresh_clone_writes_nothing(fleet: Fleet) -> None:
    """What CI runs on every commit: no render record, no certificate memo, not even the scratch directory."""
    shutil.rmtree(fleet.root / ".generator")
    result = fleet.run("render", "--all", "--check")
    assert result.out.startswith("up to date:") and fleet.calls() == []
    assert not (fleet.root / ".generator").exists()


def test_a_broken_overlay_is_never_cached_as_valid(fleet: Fleet) -> None:
    kustomization = fleet.root / "overlays/one/kustomization.yaml"
    good = kustomization.read_text()
    kustomization.write_text(good + "namePrefix: [not, a, string]\n")
    for _ in range(2):
        assert fleet.run("validate", "--all", expect=1).code == 1
    kustomization.write_text(good)
    fleet.run("validate", "--all")


OPENS = '''
import runpy, sys
log = open(sys.argv[1], "a")
root = sys.argv[2]
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(root + "/") and "/.generator/" not in args[0]:
        log.write("open " + args[0] + "\\n")
    elif event == "subprocess.Popen":
        log.write("run " + " ".join(map(str, args[1])) + "\\n")
    log.flush()
sys.addaudithook(hook)
sys.argv = ["generator", *sys.argv[3:]]
runpy.run_module("generator", run_name="__main__", alter_sys=True)
'''


def test_a_render_reads_each_input_once(fleet: Fleet, tmp_path: Path) -> None:
    """Issue 23: the survey's hash, the loader's parse, the sealing's checks and sops's decrypt share one read of
    each input file, through the input gate; sops gets the bytes on stdin, not the file's path."""
    driver, log = tmp_path / "opens.py", tmp_path / "opens.log"
    driver.write_text(OPENS)
    site_file = fleet.root / "sites/one/site.yaml"
    site_file.write_text(site_file.read_text() + "# changed\n")
    fleet.run("secrets", "set", "--site", "one", "UI_PASSWORD_EXTRA", stdin="another-value")
    cert, _ = sealing_pair(tmp_path / "rotated")
    shutil.copy(cert, fleet.root / "sites/one/sealing-cert.pem")
    (fleet.root / "platform.yaml").write_text("gitCredential: external\nsealedSecrets:\n  install: true\n")
    result = subprocess.run([sys.executable, str(driver), str(log), str(fleet.root), "render", "--all"],
                            cwd=fleet.root, env={**os.environ, **fleet.env}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    opened = [line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("open ")]
    inputs = [f"{fleet.root}/{rel}" for rel in ("sites/one/site.yaml", "sites/one/secrets.sops.yaml",
                                                  "sites/one/sealing-cert.pem", "platform.yaml", ".sops.yaml")]
    for path in inputs:
        assert opened.count(path) == 1, (path, opened)
    decrypts = [line for line in log.read_text().splitlines() if line.startswith("run ") and " decrypt " in line]
    assert len(decrypts) == 1 and decrypts[0].endswith("/dev/stdin"), decrypts
    assert "secrets.sops.yaml" not in decrypts[0]
