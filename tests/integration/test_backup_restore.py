"""A backup before every migration, and a restore: on the real PostgreSQL and SeaweedFS.

The migration Job's backup containers are rendered from the site and run in the pod sandbox (read-only root,
the pod's user, no capability, bubblewrap) against the real servers: ``backup-dump`` with PostgreSQL's own
pg_dump (Debian's, the server's major version, standing in for postgres:<major>-alpine), ``backup-upload``
with the LiteLLM 1.108.7 venv's boto3 (the image's). The database holds LiteLLM's real schema (its own
migrations, tests/litellm_schema.py) with a row in every table. Then the database is dropped as Thinkube's
``19_rollback.yaml`` drops it, and ``generator restore`` brings every row back.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
import yaml

from generator.layout import Repo
from generator.loader import load_site
from generator.render.migration import migration_job
from tests.helpers import PROJECT, build_file_tree, generator, sops_decrypt
from tests.integration.test_bootstrap import running
from tests.keys import age_key, sops_rules
from tests.litellm_schema import apply_migrations, content_digest, migrations, seed_every_table
from tests.pod_sandbox import IMAGE, Container, Sandbox
from tests.pod_sandbox.image import postgres_image
from tests.servers import PostgresServer, SeaweedServer, free_port

pytestmark = pytest.mark.servers

SITE = "kept"
BUCKET = "litellm-cache"
PREFIX = "backups/"


class World:
    def __init__(self, root: Path, pg: PostgresServer, s3: SeaweedServer, env: dict[str, str], identity: str) -> None:
        self.root, self.pg, self.s3, self.env, self.identity = root, pg, s3, env, identity

    def run(self, *args: str):
        return generator(self.root, *args, env=self.env)

    def sops(self) -> dict[str, str]:
        return sops_decrypt(self.root / f"sites/{SITE}/secrets.sops.yaml", self.identity)

    def site_file(self, **changes: dict) -> None:
        path = self.root / f"sites/{SITE}/site.yaml"
        site = yaml.safe_load(path.read_text())
        for key, value in changes.items():
            site[key] = {**site.get(key, {}), **value}
        path.write_text(yaml.safe_dump(site, sort_keys=False))

    def objects(self) -> list[str]:
        listed = self.s3.s3_client().list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def databases(self) -> set[str]:
        return set(self.pg.psql("SELECT datname FROM pg_database").split())

    def digest(self) -> dict[str, str]:
        with psycopg.connect(self.pg.url("litellm"), autocommit=True) as conn:
            return content_digest(conn)

    def secrets_shown(self, text: str) -> list[str]:
        values = self.sops()
        secret = [self.pg.admin_password, self.s3.secret_key, values["S3_AWS_SECRET_ACCESS_KEY"],
                  unquote(urlsplit(values["DATABASE_URL"]).password)]
        return [s[:4] + "…" for s in secret if s and s in text]


@pytest.fixture
def world(tmp_path: Path):
    pg, s3 = PostgresServer(tmp_path / "pg"), SeaweedServer(tmp_path / "s3")
    with running(pg, s3):
        root, key = tmp_path / "repo", age_key()
        site = {"domain": "example.com",
                "gitops": {"flux": {"url": "https://git.example.org/gitops.git"},
                           "argocd": {"repoUrl": "https://git.example.org/gitops.git"}},
                "postgres": {"host": "127.0.0.1", "port": pg.port},
                "s3": {"endpoint": s3.s3_endpoint, "bucket": BUCKET},
                "backup": {"keep": 2},
                "bootstrap": {"postgres": {"host": "127.0.0.1", "port": pg.port}}}
        build_file_tree(root, {".sops.yaml": sops_rules([key.recipient]),
                               f"sites/{SITE}/site.yaml": yaml.safe_dump(site, sort_keys=False)})
        env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent",
               "POSTGRES_ADMIN_USERNAME": pg.admin_user, "POSTGRES_ADMIN_PASSWORD": pg.admin_password,
               "S3_ADMIN_ACCESS_KEY_ID": s3.access_key, "S3_ADMIN_SECRET_ACCESS_KEY": s3.secret_key}
        w = World(root, pg, s3, env, key.identity)
        assert w.run("secrets", "init", "--site", SITE).code == 0
        boot = w.run("bootstrap", "--site", SITE, "--only", "postgres", "--only", "bucket")
        assert boot.code == 0, boot.text
        url = w.sops()["DATABASE_URL"]
        apply_migrations(url, migrations())  # LiteLLM 1.108.7's schema, by the site's own role
        with psycopg.connect(pg.url("litellm"), autocommit=True) as conn:
            seed_every_table(conn, "backed-up")
        yield w


def backup_pod(world: World) -> dict:
    job = migration_job(load_site(Repo(world.root), SITE))
    return job["spec"]["template"]["spec"]


def run_backup(world: World, work: Path) -> list[str]:
    """The Job's backup init containers, one after the other in one pod (one shared emptyDir); their logs."""
    pod = copy.deepcopy(backup_pod(world))
    names = [c["name"] for c in pod["initContainers"]]
    assert names == ["wait-for-postgres", "backup-dump", "backup-upload"], names
    scratch = work / "pod-volumes" / "backup"
    scratch.mkdir(parents=True)
    major = int(world.pg.bindir.parent.name)
    logs = []
    for spec, image in ((pod["initContainers"][1], postgres_image(major)), (pod["initContainers"][2], IMAGE)):
        container = Container(spec, pod, world.sops(), {}, image)
        run = Sandbox(container, work, pod_volumes={"backup": scratch}, trace=True).run_to_end(120)
        assert run.returncode == 0, run.text()
        written = {w.path for w in run.writes if w.error is None}
        assert all(p == "/backup" or p.startswith("/backup/") for p in written), written  # nothing but the scratch
        logs.append(run.text())
    return logs


def test_the_rendered_backup_dumps_to_the_bucket_keeps_the_newest_and_restore_brings_every_row_back(
        world: World, tmp_path: Path) -> None:
    before = world.digest()
    assert sum(1 for _ in before) > 60
    server = int(world.pg.psql("SHOW server_version_num").strip()) // 10000
    for tool in (world.pg.bindir / "pg_dump", shutil.which("pg_restore")):  # the sandbox's pg_dump, restore's PATH
        version = subprocess.run([str(tool), "--version"], capture_output=True, text=True, timeout=30).stdout
        assert int(version.split()[2].split(".")[0]) == server, (tool, version, server)
    keys = []
    for attempt in range(3):
        dump_log, upload_log = run_backup(world, tmp_path / f"run{attempt}")
        second = time.gmtime().tm_sec  # the upload named its key at this second or before
        assert "pg_dump: " in dump_log and upload_log.startswith(f"uploaded s3://{BUCKET}/{PREFIX}"), upload_log
        keys.append(upload_log.split()[1].removeprefix(f"s3://{BUCKET}/"))
        if attempt < 2:
            while time.gmtime().tm_sec == second:  # keys are per second: the next run gets the next one
                time.sleep(0.05)
    assert keys[2].endswith("-before-v1.108.7.dump"), keys
    assert "removed s3://" in upload_log and f"(keeping the newest 2)" in upload_log, (keys, world.objects(), upload_log)
    assert world.objects() == sorted(keys[1:]), "backup.keep: 2"

    # 19_rollback.yaml: terminate the sessions, DROP DATABASE IF EXISTS litellm
    world.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'litellm' "
                  "AND pid <> pg_backend_pid(); DROP DATABASE IF EXISTS litellm;")
    assert "litellm" not in world.databases()

    plan = world.run("restore", "--site", SITE, "--dry-run")
    assert plan.code == 0, plan.text
    print(plan.out)
    lines = plan.out.splitlines()
    assert lines[0] == f"backups in s3://{BUCKET}/{PREFIX} (newest first):"
    assert [ln.split()[0] for ln in lines[1:3]] == sorted(keys[1:], reverse=True)
    assert lines[3] == (f"would restore  s3://{BUCKET}/{keys[2]} into database litellm, every object owned by litellm")
    assert lines[-1] == "dry run: nothing changed" and "litellm" not in world.databases()
    as_rows = world.run("restore", "--site", SITE, "--dry-run", "-o", "json")  # the backups as rows, stdout alone
    assert as_rows.code == 0, as_rows.text
    assert [(r["key"], r["chosen"]) for r in json.loads(as_rows.out)] == [(keys[2], True), (keys[1], False)]
    assert as_rows.err.splitlines()[-1] == "dry run: nothing changed"

    restored = world.run("restore", "--site", SITE)
    assert restored.code == 0, restored.text
    print(restored.out)
    assert world.digest() == before, "every row back"
    with psycopg.connect(world.sops()["DATABASE_URL"], autocommit=True) as conn:  # the site's role, as LiteLLM
        assert conn.execute("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE nspname = 'public'").fetchall() == [("litellm",)]
        assert conn.execute("SELECT count(*) FROM _prisma_migrations").fetchone() == (220,)
        conn.execute("INSERT INTO \"LiteLLM_VerificationToken\" (token, created_at, updated_at) VALUES ('n', now(), now())")
    assert not world.secrets_shown(plan.text + restored.text)

    # over a live database: the old one is kept under another name, never dropped
    again = world.run("restore", "--site", SITE, "--from", keys[1].removeprefix(PREFIX))
    assert again.code == 0, again.text
    kept = [d for d in world.databases() if d.startswith("litellm_before_restore_")]
    assert len(kept) == 1 and world.digest() == before, again.out


def unrestorable(pg: PostgresServer) -> bytes:
    """A sound dump the site's role cannot apply (an untrusted extension): pg_restore fails half-way."""
    pg.psql("CREATE DATABASE foreign_db")
    pg.psql("CREATE EXTENSION pg_buffercache; CREATE TABLE t (x int); INSERT INTO t VALUES (1)", dbname="foreign_db")
    dump = subprocess.run([str(pg.bindir / "pg_dump"), "--format=custom", "-h", pg.host, "-p", str(pg.port), "-U",
                           pg.admin_user, "foreign_db"], env={**os.environ, "PGPASSWORD": pg.admin_password},
                          capture_output=True, check=True, timeout=60).stdout
    pg.psql("DROP DATABASE foreign_db")
    return dump


def test_a_missing_or_corrupt_backup_or_an_unreachable_bucket_changes_nothing(world: World, tmp_path: Path) -> None:
    run_backup(world, tmp_path / "run")
    good = world.objects()[0]
    before, databases = world.digest(), world.databases()
    s3 = world.s3.s3_client()
    dump = s3.get_object(Bucket=BUCKET, Key=good)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}29990101T000000Z-before-v9.9.9.dump", Body=b"not a dump at all")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}29970101T000000Z-before-v9.9.9.dump", Body=dump[: len(dump) * 2 // 3])
    middle = len(dump) * 2 // 3  # a flipped run of bytes in a compressed data block: the table of contents reads
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}29980101T000000Z-before-v9.9.9.dump",
                  Body=dump[:middle] + bytes(b ^ 0x5A for b in dump[middle:middle + 256]) + dump[middle + 256:])
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}29960101T000000Z-before-v9.9.9.dump", Body=unrestorable(world.pg))
    world.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'litellm' "
                  "AND pid <> pg_backend_pid()")

    cases = {
        "newest, not a dump": ((), f"error: s3://{BUCKET}/{PREFIX}29990101T000000Z-before-v9.9.9.dump: not a readable "
                                   "pg_dump archive ("),
        "truncated": (("--from", "29970101T000000Z-before-v9.9.9.dump"),
                      f"error: s3://{BUCKET}/{PREFIX}29970101T000000Z-before-v9.9.9.dump: not a readable pg_dump archive ("),
        "damaged data": (("--from", "29980101T000000Z-before-v9.9.9.dump"),
                         f"error: s3://{BUCKET}/{PREFIX}29980101T000000Z-before-v9.9.9.dump: not a readable pg_dump "
                         "archive ("),  # pg_restore's own words depend on where the flipped bytes fall
        "reads, but fails to apply": (("--from", "29960101T000000Z-before-v9.9.9.dump"),
                                      f"error: s3://{BUCKET}/{PREFIX}29960101T000000Z-before-v9.9.9.dump: pg_restore "
                                      "failed (could not execute query: ERROR:  permission denied to create extension "
                                      '"pg_buffercache"'),
        "no such key": (("--from", "nope.dump"), f"error: --from nope.dump: no such backup in s3://{BUCKET}/{PREFIX} "
                                                 "(listed above); nothing changed"),
    }
    for name, (args, expected) in cases.items():
        run = world.run("restore", "--site", SITE, *args)
        errors = run.err.strip().splitlines()
        assert run.code == 2 and len(errors) == 1 and errors[0].startswith(expected), (name, run.text)
        assert errors[0].endswith("; nothing changed"), (name, errors)
        assert "Traceback" not in run.text and not world.secrets_shown(run.text), name
        assert world.databases() == databases and world.digest() == before, name

    with psycopg.connect(world.sops()["DATABASE_URL"]):  # LiteLLM still running
        busy = world.run("restore", "--site", SITE, "--from", good.removeprefix(PREFIX))
    assert busy.code == 2 and busy.err.strip().splitlines() == [
        "error: database litellm has 1 open session(s): stop LiteLLM first (kubectl -n litellm scale "
        "deploy/litellm --replicas=0); nothing changed"], busy.text
    assert world.databases() == databases and world.digest() == before

    world.site_file(bootstrap={"s3": {"endpoint": f"http://127.0.0.1:{free_port()}"}})
    started = time.monotonic()
    closed = world.run("restore", "--site", SITE, "--timeout", "3")
    assert closed.code == 3 and closed.err.startswith("error: s3 at http://127.0.0.1:"), closed.text  # unreachable
    assert len(closed.err.strip().splitlines()) == 1 and "unreachable" in closed.err, closed.err
    assert time.monotonic() - started < 60 and world.databases() == databases
    assert not world.secrets_shown(closed.text)


def test_the_committed_prod_job_dumps_before_it_migrates() -> None:
    job = yaml.safe_load((PROJECT / "overlays/prod/migrate/job.yaml").read_text())
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-postgres", "backup-dump", "backup-upload"]
    dump, upload = pod["initContainers"][1:]
    assert dump["image"] == "registry.example.com/library/postgres:18-alpine"  # the site's mirror, PostgreSQL 18's client
    assert upload["image"] == pod["containers"][0]["image"]
    for container in (dump, upload):
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert {"name": "backup", "emptyDir": {"sizeLimit": "2Gi"}} in pod["volumes"]
    assert upload["command"][3:] == ["litellm-cache", "backups/", "7", "v1.108.7"]
