"""Issue 5, fault matrix: services stopped before and during bootstrap, the process killed between
steps, a foreign sops file. Every case: one clear error line, non-zero exit, the tree and the sops
file intact (it still decrypts and holds every credential already applied), and a rerun after the
fault is removed converges. Elsewhere: wrong admin password (tests/integration/test_bootstrap.py),
corrupted sops files (tests/integration/test_bad_secrets_input.py), expired certificate
(tests/integration/test_secrets.py), read-only output (tests/integration/test_render_tree.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import (MINIMAL_SITE, admin_env, build_file_tree, create_realm, fingerprint, generator, local_site,
                           sops_decrypt)
from tests.keys import age_key, sealing_pair, sops_rules
from tests.servers import BlackHole, KeycloakServer, PostgresServer, SeaweedServer, scaled

pytestmark = pytest.mark.e2e
SITE = "faulty"


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory: pytest.TempPathFactory):
    with KeycloakServer(tmp_path_factory.mktemp("kc-faults")) as server:
        yield server


class Rig:
    """A site wired to real servers, plus the operator's environment."""

    def __init__(self, root: Path, kc: KeycloakServer, pg: PostgresServer, s3: SeaweedServer, realm: str) -> None:
        self.root, self.kc, self.pg, self.s3 = root, kc, pg, s3
        self.key = age_key()
        cert, _ = sealing_pair(root.parent / "keys")
        build_file_tree(root, {f"sites/{SITE}/site.yaml": local_site(kc, pg, s3, realm=realm),
                               ".sops.yaml": sops_rules([self.key.recipient])})
        shutil.copy(cert, root / f"sites/{SITE}/sealing-cert.pem")
        self.env = {"SOPS_AGE_KEY": self.key.identity, **admin_env(kc, pg, s3)}
        create_realm(kc, realm, {"admin": None})
        assert generator(root, "secrets", "init", "--site", SITE, env=self.env).code == 0
        assert generator(root, "render", "--site", SITE, env=self.env).code == 0

    @property
    def sops_file(self) -> Path:
        return self.root / f"sites/{SITE}/secrets.sops.yaml"

    def sops_values(self) -> dict[str, str]:
        return sops_decrypt(self.sops_file, self.key.identity)

    def bootstrap(self) -> subprocess.CompletedProcess[str]:
        result = generator(self.root, "bootstrap", "--site", SITE, env=self.env)
        return subprocess.CompletedProcess([], result.code, result.out, result.err)

    def bootstrap_with_fault(self, trigger: str, fault: Callable[[int], None]) -> subprocess.CompletedProcess[str]:
        """Run bootstrap; when a line containing ``trigger`` appears, freeze it (SIGSTOP), inject the fault, go on."""
        process = subprocess.Popen([sys.executable, "-m", "generator", "bootstrap", "--site", SITE], cwd=self.root,
                                   env={**os.environ, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True)
        assert process.stdout is not None and process.stderr is not None
        out, fired = [], False
        for line in process.stdout:
            out.append(line)
            if not fired and trigger in line:
                fired = True
                os.kill(process.pid, signal.SIGSTOP)
                try:
                    fault(process.pid)
                finally:
                    if process.poll() is None:
                        os.kill(process.pid, signal.SIGCONT)
        process.wait(scaled(120))
        assert fired, f"never saw {trigger!r}: {''.join(out)}"
        return subprocess.CompletedProcess([], process.returncode, "".join(out), process.stderr.read())

    def assert_intact_and_converges(self, failed: subprocess.CompletedProcess[str], before: dict, restore: Callable[[], None],
                                    expect_error: str) -> None:
        assert failed.returncode != 0, failed.stdout
        assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: ") and expect_error in failed.stderr, failed.stderr
        assert fingerprint(self.root) == before  # the rendered tree is untouched
        values = self.sops_values()  # the sops file is valid ...
        stored = [line.split(": ", 1)[1].strip() for line in failed.stdout.splitlines() if line.startswith("stored in ")]
        for key in (stored[0].split(", ") if stored else []):
            assert key in values, f"{key} was applied but is not in sops"  # ... and holds what was applied
        restore()
        rerun = self.bootstrap()
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        again = self.bootstrap()
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout
        render = generator(self.root, "render", "--site", SITE, env=self.env)
        assert render.code == 0, render.text


@pytest.fixture
def rig(tmp_path: Path, keycloak: KeycloakServer):
    realm = f"faults-{uuid.uuid4().hex[:8]}"
    with PostgresServer(tmp_path / "pg") as pg, SeaweedServer(tmp_path / "s3") as s3:
        yield Rig(tmp_path / "repo", keycloak, pg, s3, realm)


ERRORS = {"keycloak": "error: keycloak at http://127.0.0.1:", "postgres": "error: postgres at postgresql://127.0.0.1:",
          "bucket": "error: s3 at http://127.0.0.1:"}


def _server(rig: Rig, service: str):
    return {"keycloak": rig.kc, "postgres": rig.pg, "bucket": rig.s3}[service]


@pytest.mark.parametrize("service", ["keycloak", "postgres", "bucket"])
def test_service_stopped_before_bootstrap(rig: Rig, service: str) -> None:
    before = fingerprint(rig.root)
    server = _server(rig, service)
    server.stop()
    failed = rig.bootstrap()
    assert failed.returncode == 3, failed.stderr  # errors.ExitCode.UNREACHABLE: no connection was made
    rig.assert_intact_and_converges(failed, before, server.start, ERRORS[service])


@pytest.mark.parametrize(("service", "trigger"), [
    ("keycloak", "keycloak  client litellm"),
    ("postgres", "postgres  role litellm"),
    ("bucket", "bucket    bucket litellm-cache"),
])
def test_service_stopped_during_bootstrap(rig: Rig, service: str, trigger: str) -> None:
    before = fingerprint(rig.root)
    server = _server(rig, service)
    failed = rig.bootstrap_with_fault(trigger, lambda pid: server.stop())
    rig.assert_intact_and_converges(failed, before, server.start, ERRORS[service])


def test_process_killed_between_steps(rig: Rig) -> None:
    before = fingerprint(rig.root)
    killed = rig.bootstrap_with_fault("postgres  role litellm", lambda pid: os.kill(pid, signal.SIGKILL))
    assert killed.returncode == -signal.SIGKILL
    assert fingerprint(rig.root) == before
    values = rig.sops_values()
    assert "CLIENT_SECRET" in values and "DATABASE_URL" in values  # stored before they were applied
    rerun = rig.bootstrap()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "nothing to do" in rig.bootstrap().stdout
    assert rig.sops_values()["DATABASE_URL"] == values["DATABASE_URL"]  # no new password after the crash


def test_foreign_sops_file(rig: Rig, tmp_path: Path) -> None:
    """A sops file from somewhere else (other recipients): refused with its recipients named, nothing changed."""
    original = rig.sops_file.read_bytes()
    stranger = age_key()
    other = tmp_path / "other"
    build_file_tree(other, {f"sites/{SITE}/site.yaml": MINIMAL_SITE, ".sops.yaml": sops_rules([stranger.recipient])})
    assert generator(other, "secrets", "init", "--site", SITE, env={"SOPS_AGE_KEY": stranger.identity}).code == 0
    shutil.copy(other / f"sites/{SITE}/secrets.sops.yaml", rig.sops_file)
    before = fingerprint(rig.root)
    for args in (("render", "--site", SITE), ("bootstrap", "--site", SITE)):
        result = generator(rig.root, *args, env=rig.env)
        assert result.code == 1, result.text
        assert f"no age key available decrypts it (recipients: {stranger.recipient})" in result.err
        assert result.err.count("\n") == 1
    assert fingerprint(rig.root) == before
    rig.sops_file.write_bytes(original)
    assert rig.bootstrap().returncode == 0
    assert generator(rig.root, "render", "--site", SITE, env=rig.env).code == 0


BLACK_HOLE_TIMEOUT = 3
OVERRIDE = {  # the site's bootstrap endpoint for each service, pointed at a listener that never answers
    "keycloak": "bootstrap:\n  keycloak: {{url: 'http://127.0.0.1:{port}'}}\n",
    "postgres": "bootstrap:\n  postgres: {{host: 127.0.0.1, port: {port}}}\n",
    "bucket": "bootstrap:\n  s3: {{endpoint: 'http://127.0.0.1:{port}'}}\n",
}


@pytest.mark.parametrize("service", ["keycloak", "postgres", "bucket"])
def test_hung_service_fails_within_the_timeout(rig: Rig, service: str) -> None:
    """A service that accepts the connection and never answers: bootstrap fails within --timeout, naming the
    service and its URL, and a rerun against the answering service converges."""
    site_file = rig.root / f"sites/{SITE}/site.yaml"
    original = site_file.read_text()
    before = fingerprint(rig.root)
    with BlackHole() as hole:
        site_file.write_text(original + OVERRIDE[service].format(port=hole.port))
        started = time.monotonic()
        result = generator(rig.root, "bootstrap", "--site", SITE, "--only", service, "--timeout",
                           str(BLACK_HOLE_TIMEOUT), env=rig.env)
        elapsed = time.monotonic() - started
        # one request, never retried: one connection, so the step fails after one --timeout, not two (a retry
        # opens a second connection; python-keycloak's token request did)
        assert len(hole.held) == 1, f"{service}: {len(hole.held)} connections to the black hole"
    assert result.code == 3, result.text  # errors.ExitCode.UNREACHABLE: no answer in time
    assert result.err.count("\n") == 1, result.err
    assert f"127.0.0.1:{hole.port}" in result.err and f"no answer within {BLACK_HOLE_TIMEOUT} s" in result.err, result.err
    # One request's bound (wall-clock, the generator's own), plus the interpreter's start-up and the rest of the
    # run, which take longer on a loaded machine (scaled as every other deadline): never the minutes of retries
    # seen before.
    limit = BLACK_HOLE_TIMEOUT + scaled(10)
    assert elapsed < limit, f"{service}: failed after {elapsed:.1f} s (limit {limit:.1f} s)"
    print(f"{service}: black hole refused after {elapsed:.1f} s (--timeout {BLACK_HOLE_TIMEOUT}, limit {limit:.1f} s)")
    site_file.write_text(original)
    assert fingerprint(rig.root) == before
    rerun = rig.bootstrap()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
