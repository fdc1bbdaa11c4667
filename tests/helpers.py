"""Test helpers: build input trees inline, run the real CLI, fingerprint output trees."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
OUTPUT_ROOTS = ("base", "overlays", "deploy", "kustomization.yaml")


EXTERNAL_GIT = "gitCredential: external\n"  # platform.yaml: the engines' git credential is the operator's own


def build_file_tree(root: Path, spec: dict[str, str | bytes]) -> None:
    """Files under ``root``. A site repository made here without a platform.yaml gets one saying the engines'
    git credential is made outside git (as `flux bootstrap` does); the tests of that check bring their own."""
    if any(rel.startswith("sites/") for rel in spec) and "platform.yaml" not in spec \
            and not (root / "platform.yaml").exists():
        spec = {**spec, "platform.yaml": EXTERNAL_GIT}
    for rel, content in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def generator(repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Run:
    """Run the real console entry point in a child process, in ``repo``."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "generator", *args], cwd=repo, capture_output=True, text=True,
        input=stdin if stdin is not None else "", env=full_env, timeout=300,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def copy_repo(dest: Path, *, with_output: bool = True) -> Path:
    """A copy of this repository's sites (and rendered tree) to work on."""
    shutil.copytree(PROJECT / "sites", dest / "sites")
    shutil.copy2(PROJECT / "platform.yaml", dest / "platform.yaml")
    if with_output:
        for rel in OUTPUT_ROOTS:
            src = PROJECT / rel
            if src.is_dir():
                shutil.copytree(src, dest / rel)
            elif src.is_file():
                shutil.copy2(src, dest / rel)
    return dest


def fingerprint(root: Path) -> dict[str, tuple[str, int, int]]:
    """path -> (sha256, inode, mtime_ns) for every file under the output roots."""
    found: dict[str, tuple[str, int, int]] = {}
    for rel in OUTPUT_ROOTS:
        base = root / rel
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for path in paths:
            stat = path.stat()
            found[path.relative_to(root).as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_ino, stat.st_mtime_ns)
    return found


MINIMAL_SITE = """\
domain: example.org
gitops:
  flux: {url: "ssh://git@git.example.com/platform/litellm-gitops.git", secretRef: flux-system}
  argocd: {repoUrl: "ssh://git@git.example.com/platform/litellm-gitops.git"}
"""  # the committed prod site's repository: one repository holds a fleet (render/fleet.py)


def local_site(kc, pg, s3, *, realm: str) -> str:  # noqa: ANN001 - the server classes of tests/servers.py
    """A site.yaml whose in-cluster endpoints are the local test servers (bootstrap uses the same ones)."""
    return f"""\
domain: example.com
keycloak: {{url: "{kc.url}", realm: {realm}, directAccessGrants: true}}
postgres: {{host: 127.0.0.1, port: {pg.port}}}
s3: {{endpoint: "{s3.s3_endpoint}"}}
gitops:
  flux: {{url: "https://git.example.org/gitops.git"}}
  argocd: {{repoUrl: "https://git.example.org/gitops.git"}}
"""


def admin_env(kc, pg, s3) -> dict[str, str]:  # noqa: ANN001
    """The services' admin credentials, as bootstrap reads them from the environment."""
    return {"KEYCLOAK_ADMIN_USERNAME": kc.admin_user, "KEYCLOAK_ADMIN_PASSWORD": kc.admin_password,
            "POSTGRES_ADMIN_USERNAME": pg.admin_user, "POSTGRES_ADMIN_PASSWORD": pg.admin_password,
            "S3_ADMIN_ACCESS_KEY_ID": s3.access_key, "S3_ADMIN_SECRET_ACCESS_KEY": s3.secret_key}


def create_realm(kc, realm: str, users: dict[str, str | None]) -> None:  # noqa: ANN001
    """A realm with users (name -> password, or None for a user who cannot log in)."""
    from keycloak import KeycloakAdmin

    admin = KeycloakAdmin(server_url=kc.url, username=kc.admin_user, password=kc.admin_password, realm_name="master",
                          user_realm_name="master")
    admin.create_realm({"realm": realm, "enabled": True})
    admin.change_current_realm(realm)
    for name, password in users.items():
        user = {"username": name, "enabled": True, "email": f"{name}@example.com", "emailVerified": True,
                "firstName": name, "lastName": "Test"}
        if password:
            user["credentials"] = [{"type": "password", "value": password, "temporary": False}]
        admin.create_user(user)


def sops_decrypt(path: Path, identity: str) -> dict[str, str]:
    """Every key of a sops file, decrypted with the real sops and the given age identity."""
    from generator.tools import find

    out = subprocess.run([str(find("sops")), "decrypt", "--output-type", "json", str(path)], capture_output=True,
                         env={**os.environ, "SOPS_AGE_KEY": identity, "SOPS_DISABLE_VERSION_CHECK": "1"})
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def on_pty(command: list[str], cwd: Path, *, stream: str = "stdout", env: dict[str, str] | None = None
           ) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run ``command`` with its ``stream`` (stdout or stderr) on a pseudo-terminal and the other one piped; the
    finished process and what the terminal received."""
    leader, follower = pty.openpty()
    try:
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
        done = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, timeout=300, **pipes)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the follower is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    return done, b"".join(chunks).decode(errors="replace")


def file_digests(root: Path) -> dict[str, str]:
    """path -> sha256 of every file under ``root`` but the generator's own caches: what a refused command must
    leave as it was."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".generator" not in p.parts}


def empty_repository(tmp_path: Path):  # noqa: ANN201 - (root, age key, sealing certificate, env)
    """A repository with no site yet (the engines' git credential the operator's own), an age key and a sealing
    certificate: where site new and adopt start."""
    from tests.keys import age_key, sealing_pair

    root = tmp_path / "repo"
    (root / "sites").mkdir(parents=True)
    (root / "platform.yaml").write_text(EXTERNAL_GIT)  # the new sites' ssh:// repository: the engines' own credential
    key = age_key()
    cert, _ = sealing_pair(tmp_path / "keys")
    return root, key, cert, {"SOPS_AGE_KEY": key.identity}
