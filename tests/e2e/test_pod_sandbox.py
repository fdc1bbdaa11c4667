"""The pod sandbox on the committed prod overlay: the rendered pod is right, and the sandbox sees it when not.

Each negative control breaks the rendered Deployment the way real defects do (a volume hiding what
the image ships, a path LiteLLM must write made read-only, a file the args name hidden) and shows
that the same checks the end-to-end test uses then fail. Secrets are stand-ins: no database, no S3.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.e2e.pod import PodProxy, build, http
from tests.helpers import PROJECT
from tests.pod_sandbox import VENV, Container, Sandbox, config_maps, pod_spec
from tests.pod_sandbox.checks import probe_writes, ui_problems, write_problems
from tests.servers import free_port

pytestmark = pytest.mark.e2e
STAND_IN = {"LITELLM_MASTER_KEY": "sk-" + "s" * 40, "LITELLM_SALT_KEY": "t" * 32, "ADMIN_PASSWORD": "u" * 20,
            "DATABASE_URL": "postgresql://unused", "CLIENT_SECRET": "v" * 20, "S3_AWS_ACCESS_KEY_ID": "w" * 20,
            "S3_AWS_SECRET_ACCESS_KEY": "x" * 40, "PROXY_ADMIN_ID": "0b7e4a52-5c1e-4d6f-9a0e-3f6b2d8c1a47"}
NO_DATABASE = {"DATABASE_URL": None, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return build(PROJECT / "overlays/prod")


def _container(docs: list[dict], kind: str = "Deployment", name: str = "litellm") -> Container:
    spec = copy.deepcopy(pod_spec(docs, kind, name))
    return Container(spec["containers"][0], spec, dict(STAND_IN), config_maps(docs))


def _serve(container: Container, work: Path) -> tuple[object, int]:
    with PodProxy(container, work, free_port(), env_overrides=NO_DATABASE) as proxy:
        assert http("GET", f"{proxy.url}/ui/")[0] == 200
        marker = http("GET", f"{proxy.url}/ui/.litellm_ui_ready")[0]
    return proxy.run, marker


def test_rendered_pod_serves_the_image_ui_and_writes_only_tmp(docs, tmp_path: Path) -> None:
    container = _container(docs)
    mounts = {m["mountPath"]: m for m in container.mounts()}
    assert set(mounts) == {"/app/config.yaml", "/tmp"}, "no mount may hide what the image ships"
    run, marker = _serve(container, tmp_path)
    assert not ui_problems(run, marker_status=marker), ui_problems(run, marker_status=marker)
    assert not write_problems(run), write_problems(run)
    print("paths the proxy wrote:", *(str(w) for w in run.writes), sep="\n  ")
    probe = probe_writes(container, tmp_path / "probe", ["/tmp/x", "/app/x", "/app/.cache/x", "/var/lib/litellm/ui/x",
                                                         "/var/lib/litellm/assets/x", "/x"])
    assert probe.pop("/tmp/x") == "ok", probe
    assert set(probe.values()) == {"Read-only file system"}, probe


def test_sandbox_sees_a_volume_hiding_the_image_ui(docs, tmp_path: Path) -> None:
    """The defect of the earlier tree: an emptyDir over /var/lib/litellm."""
    container = _container(docs)
    container.pod["volumes"].append({"name": "ui", "emptyDir": {}})
    container.spec["volumeMounts"].append({"name": "ui", "mountPath": "/var/lib/litellm"})
    run, marker = _serve(container, tmp_path)
    problems = ui_problems(run, marker_status=marker)
    print("found:", *problems, sep="\n  ")
    assert any("wrote the UI at start" in p for p in problems), problems
    assert any("hides the image's UI" in p for p in problems), problems
    assert any("answered 404" in p for p in problems), problems


def test_sandbox_sees_a_read_only_tmp(docs, tmp_path: Path) -> None:
    """/tmp is the one path LiteLLM writes; mounted read-only, the check fails (or the proxy does)."""
    container = _container(docs)
    for mount in container.spec["volumeMounts"]:
        if mount["mountPath"] == "/tmp":
            mount["readOnly"] = True
    try:
        run, _ = _serve(container, tmp_path)
    except AssertionError as failure:  # LiteLLM did not even start
        print("found:", str(failure)[-1500:])
        assert "temporary directory" in str(failure) or "Read-only" in str(failure), failure
        return
    problems = write_problems(run)
    print("found:", *problems, sep="\n  ")
    assert any("failed write" in p and "/tmp/" in p for p in problems), problems


def test_sandbox_sees_a_hidden_config_file(docs, tmp_path: Path) -> None:
    """The args name /app/config.yaml; without its mount the image has no such file."""
    container = _container(docs)
    container.spec["volumeMounts"] = [m for m in container.spec["volumeMounts"] if m["mountPath"] != "/app/config.yaml"]
    with pytest.raises(AssertionError) as failure:
        _serve(container, tmp_path)
    print("found:", str(failure.value)[-1500:])
    assert "litellm exited" in str(failure.value) and "config" in str(failure.value).lower()


def test_migration_job_runs_litellm_migration_entry_point(docs, tmp_path: Path) -> None:
    """The Job's container runs the pinned release's migration entry point with a read-only root.
    Without DATABASE_URL LiteLLM skips the migration itself (no Prisma engines here) and exits 0;
    an unknown flag would make it exit 2."""
    job = _container(docs, "Job", "litellm-migrate")
    assert job.argv() == ["/app/docker/prod_entrypoint.sh", "--skip_server_startup"]
    env = {e["name"]: e for e in job.spec["env"]}
    assert env["DISABLE_SCHEMA_UPDATE"]["value"] == "false"
    run = Sandbox(job, tmp_path, env_overrides={"DATABASE_URL": None}, trace=True).run_to_end(timeout=180)
    assert run.returncode == 0, run.text()[-3000:]
    assert "Skipping server startup as requested" in run.text(), run.text()[-3000:]
    assert not [w for w in run.writes if w.error], run.writes
    serving = _container(docs)
    assert {"name": "DISABLE_SCHEMA_UPDATE", "value": "true"} in serving.spec["env"]


def test_the_image_venv_carries_its_bytecode() -> None:
    """The image ships its venv compiled, and the pod's root is read-only: a module without bytecode would make
    the interpreter try to write it at run time (a failed write the sandbox counts). scripts/install-servers.sh
    builds the venv with the image build's environment and compiles it; every module has its bytecode."""
    (lib,) = (VENV / "lib").glob("python3.*")  # the venv's interpreter, whose cache tag names the bytecode
    tag = "cpython-" + lib.name.removeprefix("python").replace(".", "")
    modules = list(lib.rglob("*.py"))
    assert len(modules) > 5000, f"{VENV}: only {len(modules)} modules; is LiteLLM installed?"
    missing = [m for m in modules if not (m.parent / "__pycache__" / f"{m.stem}.{tag}.pyc").is_file()]
    assert not missing, f"{len(missing)} of {len(modules)} modules without bytecode, e.g. {missing[:3]}"
