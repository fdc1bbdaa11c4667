"""`generator bootstrap` against real Keycloak, PostgreSQL and SeaweedFS servers.

One Keycloak per session (conftest ``keycloak_server``), one realm per test; PostgreSQL and
SeaweedFS per test. The CLI runs as a child process, exactly as an operator runs it.

"No write on the second run" is proven from the services' side, not from our report:
Keycloak's own admin-event log, PostgreSQL's statement log and transaction-id counter, and the
wire (a recording proxy in front of SeaweedFS's S3/IAM port).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, unquote

import psycopg
import pytest
import requests
import yaml
from botocore.exceptions import ClientError
from keycloak import KeycloakAdmin

from tests.counting_proxy import CountingProxy, Record
from tests.helpers import Run, build_file_tree, generator, sops_decrypt
from tests.keys import AgeKey, age_key, sealing_pair, sops_rules
from tests.servers import KeycloakServer, PostgresServer, SeaweedServer, free_port, load_factor, scaled

pytestmark = pytest.mark.servers

SITE = "demo"
SOPS_FILE = f"sites/{SITE}/secrets.sops.yaml"
ADMIN_PASSWORD = "admin-pw-1234"
PLAIN_PASSWORD = "plain-pw-1234"
BUCKET = "litellm-cache"
S3_USER = "litellm-litellm"
ALL_STORED = ("stored in sites/demo/secrets.sops.yaml: CLIENT_SECRET, DATABASE_URL, PROXY_ADMIN_ID, S3_AWS_ACCESS_KEY_ID, "
              "S3_AWS_SECRET_ACCESS_KEY")


def line(status: str, service: str, obj: str, detail: str = "") -> str:
    """One report line exactly as bootstrap prints it."""
    return f"{status:<12} {service:<9} {obj}" + (f"  ({detail})" if detail else "")


def jwt_payload(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# -- Keycloak ------------------------------------------------------------------------------

def master_admin(kc: KeycloakServer, realm: str | None = None) -> KeycloakAdmin:
    admin = KeycloakAdmin(server_url=kc.url, username=kc.admin_user, password=kc.admin_password, realm_name="master",
                          user_realm_name="master")  # log in to master even after change_current_realm
    if realm:
        admin.change_current_realm(realm)
    return admin


def make_realm(kc: KeycloakServer) -> str:
    """A fresh realm with the admin user ``admin`` and a plain user ``plain`` (no roles), admin events on."""
    realm = f"t-{uuid.uuid4().hex[:10]}"
    admin = master_admin(kc)
    admin.create_realm({"realm": realm, "enabled": True})
    admin.change_current_realm(realm)
    for name, password in (("admin", ADMIN_PASSWORD), ("plain", PLAIN_PASSWORD)):
        admin.create_user({"username": name, "enabled": True, "email": f"{name}@example.com", "emailVerified": True,
                           "firstName": name.title(), "lastName": "Tester",
                           "credentials": [{"type": "password", "value": password, "temporary": False}]})
    # Keycloak's own record of every admin write (create/update/delete/action) in this realm.
    admin.update_realm(realm, {"adminEventsEnabled": True, "adminEventsDetailsEnabled": True})
    return realm


def admin_events(kc: KeycloakServer, realm: str) -> list[dict]:
    admin = master_admin(kc)
    response = admin.connection.raw_get(f"admin/realms/{realm}/admin-events", first=0, max=100000)
    assert response.status_code == 200, response.text
    return response.json()


def token(kc: KeycloakServer, realm: str, secret: str, username: str, password: str,
          scope: str = "openid profile email roles") -> requests.Response:
    return requests.post(f"{kc.url}/realms/{realm}/protocol/openid-connect/token", timeout=scaled(30), data={
        "grant_type": "password", "client_id": "litellm", "client_secret": secret,
        "username": username, "password": password, "scope": scope})


# -- PostgreSQL ----------------------------------------------------------------------------

class PgWatch:
    """What PostgreSQL itself saw: every data-changing or DDL statement (log_statement = 'mod'
    writes CREATE/ALTER/DROP/GRANT/REVOKE/INSERT/UPDATE/DELETE... to the server log) and the
    cluster's next transaction id (any catalog or data change gets one; reads do not)."""

    def __init__(self, pg: PostgresServer) -> None:
        self.pg = pg
        # autovacuum's ANALYZE would take transaction ids of its own: off, for a quiet counter.
        pg.psql("ALTER SYSTEM SET log_statement = 'mod'; ALTER SYSTEM SET autovacuum = off; SELECT pg_reload_conf();")
        deadline = time.monotonic() + scaled(10)
        while pg.psql("SHOW log_statement").strip() != "mod":  # each psql is a new backend: reloaded?
            assert time.monotonic() < deadline, "log_statement did not switch to 'mod'"
            time.sleep(0.05)

    def statements(self) -> list[str]:
        text = self.pg.log_path.read_text(errors="replace")
        return [ln.split("statement: ", 1)[1] for ln in text.splitlines() if " LOG:  statement: " in ln]

    def next_xid(self) -> int:
        return int(self.pg.psql("SELECT pg_snapshot_xmax(pg_current_snapshot())").strip())


def pg_admin(pg: PostgresServer, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(pg.dsn(dbname), autocommit=True)


# -- the world of one test -----------------------------------------------------------------

@dataclass
class World:
    root: Path
    age: AgeKey
    kc: KeycloakServer
    realm: str
    pg: PostgresServer | None
    s3: SeaweedServer | None
    env: dict[str, str]
    site: dict = field(default_factory=dict)

    def write_site(self, **overrides: dict) -> None:
        site = json.loads(json.dumps(self.site))
        for key, value in overrides.items():
            site[key] = {**site.get(key, {}), **value} if isinstance(value, dict) else value
        build_file_tree(self.root, {f"sites/{SITE}/site.yaml": yaml.safe_dump(site, sort_keys=False)})

    def bootstrap(self, *args: str, **env: str) -> Run:
        return generator(self.root, "bootstrap", "--site", SITE, *args, env={**self.env, **env})

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "generator", "bootstrap", "--site", SITE, *args], cwd=self.root,
                                env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    def sops_bytes(self) -> bytes:
        return (self.root / SOPS_FILE).read_bytes()

    def sops(self) -> dict[str, str]:
        return sops_decrypt(self.root / SOPS_FILE, self.age.identity)

    def kc_admin(self) -> KeycloakAdmin:
        return master_admin(self.kc, self.realm)

    def litellm_client(self) -> dict:
        clients = [c for c in self.kc_admin().get_clients() if c["clientId"] == "litellm"]
        assert len(clients) == 1, clients
        return clients[0]

    def live_secret(self) -> str:
        admin = self.kc_admin()
        return admin.get_client_secrets(admin.get_client_id("litellm"))["value"]

    def s3_user_keys(self) -> list[str]:
        return [k["AccessKeyId"] for k in self.s3.iam_client().list_access_keys(UserName=S3_USER)["AccessKeyMetadata"]]


def build_world(tmp_path: Path, kc: KeycloakServer, pg: PostgresServer | None = None, s3: SeaweedServer | None = None,
                s3_endpoint: str | None = None) -> World:
    """A repo with site ``demo`` pointing bootstrap at these servers (a free, closed port for a missing one)."""
    root = tmp_path / "repo"
    key = age_key()
    realm = make_realm(kc)
    pg_port = pg.port if pg else free_port()
    site = {
        "domain": "example.com",
        "gitops": {"flux": {"url": "https://git.example.org/gitops.git"},
                   "argocd": {"repoUrl": "https://git.example.org/gitops.git"}},
        "keycloak": {"realm": realm, "directAccessGrants": True},  # the tests ask for tokens by the password grant
        "postgres": {"host": "127.0.0.1", "port": pg_port},  # DATABASE_URL usable from the test
        "bootstrap": {"keycloak": {"url": kc.url}, "postgres": {"host": "127.0.0.1", "port": pg_port},
                      "s3": {"endpoint": s3_endpoint or (s3.s3_endpoint if s3 else f"http://127.0.0.1:{free_port()}")}},
    }
    build_file_tree(root, {".sops.yaml": sops_rules([key.recipient])})
    env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent",
           "KEYCLOAK_ADMIN_USERNAME": kc.admin_user, "KEYCLOAK_ADMIN_PASSWORD": kc.admin_password,
           "POSTGRES_ADMIN_USERNAME": "postgres", "POSTGRES_ADMIN_PASSWORD": pg.admin_password if pg else "unused",
           "S3_ADMIN_ACCESS_KEY_ID": s3.access_key if s3 else "unused",
           "S3_ADMIN_SECRET_ACCESS_KEY": s3.secret_key if s3 else "unused"}
    world = World(root, key, kc, realm, pg, s3, env, site)
    world.write_site()
    init = generator(root, "secrets", "init", "--site", SITE, env=env)
    assert init.code == 0, init.text
    return world


@contextlib.contextmanager
def running(*servers: PostgresServer | SeaweedServer) -> Iterator[None]:
    """Start (and at the end stop) the servers side by side: half the wait of one after the other.

    SeaweedFS takes ~2 s to shut down on SIGTERM; a throw-away one is SIGKILLed instead (the
    same stop that servers.py falls back to), then cleaned up as usual."""
    with ThreadPoolExecutor(len(servers)) as pool:
        started = [pool.submit(server.__enter__) for server in servers]
    try:
        for future in started:
            future.result()
        yield
    finally:
        with ThreadPoolExecutor(len(servers)) as pool:
            stopped = [pool.submit(_stop, server) for server, future in zip(servers, started) if future.exception() is None]
        for future in stopped:
            future.result()


def _stop(server: PostgresServer | SeaweedServer) -> None:
    if isinstance(server, SeaweedServer):
        server.kill()
    server.__exit__(None, None, None)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg")
    with running(server):
        yield server


@pytest.fixture
def pg_s3(tmp_path: Path) -> Iterator[tuple[PostgresServer, SeaweedServer]]:
    servers = PostgresServer(tmp_path / "pg"), SeaweedServer(tmp_path / "s3")
    with running(*servers):
        yield servers


@pytest.fixture
def world(tmp_path: Path, keycloak_server: KeycloakServer, pg_s3: tuple[PostgresServer, SeaweedServer]) -> World:
    """Keycloak (a fresh realm), PostgreSQL and SeaweedFS."""
    return build_world(tmp_path, keycloak_server, *pg_s3)


@pytest.fixture
def kc_world(tmp_path: Path, keycloak_server: KeycloakServer) -> World:
    """Keycloak only: PostgreSQL and S3 point at closed ports."""
    return build_world(tmp_path, keycloak_server)


@pytest.fixture
def kc_pg_world(tmp_path: Path, keycloak_server: KeycloakServer, pg: PostgresServer) -> World:
    """Keycloak and PostgreSQL; S3 points at a closed port."""
    return build_world(tmp_path, keycloak_server, pg)


def bootstrapped(world: World, *args: str, stored: str = ALL_STORED) -> Run:
    first = world.bootstrap(*args)
    assert first.code == 0, first.text
    assert stored in first.out.splitlines(), first.out
    return first


# -- 1. create, then converge without a single write --------------------------------------------

def test_first_run_creates_everything_and_the_second_writes_nothing(tmp_path: Path, keycloak_server: KeycloakServer,
                                                                    pg_s3: tuple[PostgresServer, SeaweedServer]) -> None:
    pg, s3 = pg_s3
    with CountingProxy("127.0.0.1", s3.s3_port) as proxy:
        world = build_world(tmp_path, keycloak_server, pg, s3, s3_endpoint=proxy.url)
        watch = PgWatch(pg)
        xid0, logged0 = watch.next_xid(), len(watch.statements())

        first = world.bootstrap()
        assert first.code == 0, first.text
        for expected in (
            line("created", "keycloak", "client litellm"),
            line("created", "keycloak", "client scope litellm_proxy_admin"),
            line("created", "keycloak", "client scope litellm_proxy_admin -> AI_ADMIN", "role scope mapping"),
            line("created", "keycloak", "realm role AI_ADMIN"),
            line("created", "keycloak", "client role proxy_admin"),
            line("created", "keycloak", "realm role AI_ADMIN -> proxy_admin", "composite"),
            line("created", "keycloak", "realm role AI_USER -> internal_user", "composite"),
            line("created", "keycloak", "mapper litellm-role", "claim litellm_role"),
            line("created", "keycloak", "mapper litellm-audience", "aud litellm-api"),
            line("created", "keycloak", "flow litellm browser", "only AI_USER or AI_ADMIN"),
            line("created", "keycloak", "flow litellm direct grant", "only AI_USER or AI_ADMIN"),
            line("created", "keycloak", "client litellm flow bindings", "browser, direct grant"),
            line("created", "keycloak", "user admin role AI_ADMIN"),
            line("created", "keycloak", "sops PROXY_ADMIN_ID", "the id of user admin"),
            line("created", "postgres", "role litellm", "login, password in sops as DATABASE_URL"),
            line("created", "postgres", "database litellm", "owner litellm, CONNECT revoked from PUBLIC"),
            line("unchanged", "postgres", "schema public", "litellm may use and create"),  # owner of the db: PG15+ public schema
            line("created", "bucket", f"bucket {BUCKET}"),
            line("created", "bucket", f"identity {S3_USER}"),
            line("created", "bucket", "policy litellm-cache", f"only {BUCKET}"),
            line("created", "bucket", "access key", "in sops as S3_AWS_ACCESS_KEY_ID/SECRET"),
            ALL_STORED,
        ):
            assert expected in first.out.splitlines(), f"missing {expected!r} in:\n{first.text}"
        assert first.err == ""
        assert "changed 23 of 26 object(s)" in first.out.splitlines()

        # Each witness saw the first run's writes (so it can see writes at all).
        events = admin_events(keycloak_server, world.realm)
        assert any(e["resourceType"] == "CLIENT" and e["operationType"] == "CREATE" for e in events), events
        logged = watch.statements()[logged0:]
        assert any(s.startswith("CREATE ROLE") for s in logged) and any(s.startswith("CREATE DATABASE") for s in logged), logged
        assert watch.next_xid() > xid0
        assert {"CreateUser", "PutUserPolicy", "CreateAccessKey"} <= {r.action for r in proxy.records}
        assert any(r.method == "PUT" and r.path == f"/{BUCKET}" for r in proxy.records)

        sops_before = world.sops_bytes()
        events_before = len(admin_events(keycloak_server, world.realm))
        logged_before, xid_before, mark = len(watch.statements()), watch.next_xid(), proxy.snapshot()

        second = world.bootstrap()
        assert second.code == 0, second.text
        report = second.out.splitlines()
        assert report[-1] == "nothing to do: 27 object(s) already converged"  # + the client secret, now checked
        assert all(ln.startswith("unchanged ") for ln in report[:-1]), second.out
        assert len(report) == 28 and second.err == ""

        # Keycloak: not one admin event (every admin create/update/delete/action is one).
        after = admin_events(keycloak_server, world.realm)
        assert len(after) == events_before, after[: len(after) - events_before]
        # PostgreSQL: no logged write statement, and no transaction id handed out in the cluster.
        assert watch.statements()[logged_before:] == []
        assert watch.next_xid() == xid_before
        # SeaweedFS: the second run did talk to it (reads), but sent no write.
        seen = proxy.since(mark)
        assert {"GetUser", "GetUserPolicy", "ListAccessKeys"} <= {r.action for r in seen}, seen
        assert any(r.method == "HEAD" and r.path == f"/{BUCKET}" for r in seen), seen
        assert [str(r) for r in seen if r.writes] == []
        # The sops file: not rewritten.
        assert world.sops_bytes() == sops_before


# -- 2. --dry-run writes nothing anywhere -----------------------------------------------------

def test_dry_run_on_fresh_services_writes_nothing(world: World) -> None:
    watch = PgWatch(world.pg)
    xid, logged = watch.next_xid(), len(watch.statements())
    sops_before = world.sops_bytes()
    result = world.bootstrap("--dry-run")
    assert result.code == 0, result.text
    for expected in (line("would create", "keycloak", "client litellm"),
                     line("would create", "keycloak", "client scope litellm_proxy_admin -> AI_ADMIN", "role scope mapping"),
                     line("would create", "keycloak", "user admin role AI_ADMIN"),
                     line("would create", "postgres", "role litellm", "login, password in sops as DATABASE_URL"),
                     line("would create", "postgres", "database litellm", "owner litellm, CONNECT revoked from PUBLIC"),
                     line("would create", "bucket", f"bucket {BUCKET}"),
                     line("would create", "bucket", "access key", "in sops as S3_AWS_ACCESS_KEY_ID/SECRET")):
        assert expected in result.out.splitlines(), result.out
    assert "stored in" not in result.out and "would change" in result.out.splitlines()[-1]
    assert world.sops_bytes() == sops_before
    assert not {"CLIENT_SECRET", "DATABASE_URL", "S3_AWS_ACCESS_KEY_ID"} & set(world.sops())
    # Keycloak: nothing made, not one admin event.
    admin = world.kc_admin()
    assert admin.get_client_id("litellm") is None
    assert not {"AI_ADMIN", "AI_USER"} & {r["name"] for r in admin.get_realm_roles()}
    assert "litellm_proxy_admin" not in {s["name"] for s in admin.get_client_scopes()}
    assert admin_events(world.kc, world.realm) == []
    # PostgreSQL: no role, no database, no write statement, no transaction id.
    with pg_admin(world.pg) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'litellm'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'litellm'").fetchone() == (0,)
    assert watch.statements()[logged:] == [] and watch.next_xid() == xid
    # SeaweedFS: no bucket, no identity.
    assert BUCKET not in {b["Name"] for b in world.s3.s3_client().list_buckets()["Buckets"]}
    with pytest.raises(ClientError) as missing:
        world.s3.iam_client().get_user(UserName=S3_USER)
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"


# -- 3. drift is set back in place -----------------------------------------------------------

def test_drift_is_corrected_in_place(world: World) -> None:
    bootstrapped(world)
    admin = world.kc_admin()
    client = world.litellm_client()
    client_uuid, secret = client["id"], world.live_secret()
    admin.update_client(client_uuid, {**client, "redirectUris": ["https://evil.example.org/*"],
                                      "directAccessGrantsEnabled": False})
    user_id = admin.get_user_id("admin")
    admin.delete_realm_roles_of_user(user_id, [admin.get_realm_role("AI_ADMIN")])
    world.pg.psql("ALTER DATABASE litellm OWNER TO postgres")
    world.s3.iam_client().delete_user_policy(UserName=S3_USER, PolicyName="litellm-cache")

    rerun = world.bootstrap()
    assert rerun.code == 0, rerun.text
    report = rerun.out.splitlines()
    for expected in (line("updated", "keycloak", "client litellm", "drift: directAccessGrantsEnabled, redirectUris"),
                     line("unchanged", "keycloak", "client litellm secret", "in sops as CLIENT_SECRET"),
                     line("created", "keycloak", "user admin role AI_ADMIN"),
                     line("updated", "postgres", "database litellm", "owner postgres -> litellm"),
                     line("created", "bucket", "policy litellm-cache", f"only {BUCKET}")):
        assert expected in report, rerun.out
    assert report[-1].startswith("changed 4 of ") and "stored in" not in rerun.out

    client = world.litellm_client()
    assert client["id"] == client_uuid and world.live_secret() == secret == world.sops()["CLIENT_SECRET"]
    assert sorted(client["redirectUris"]) == ["https://litellm.example.com/*", "https://litellm.example.com/sso/callback"]
    assert client["directAccessGrantsEnabled"] is True
    assert "AI_ADMIN" in {r["name"] for r in admin.get_realm_roles_of_user(user_id)}
    assert world.pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'litellm'").strip() == "litellm"
    policy = world.s3.iam_client().get_user_policy(UserName=S3_USER, PolicyName="litellm-cache")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]

    again = world.bootstrap()
    assert again.code == 0 and again.out.splitlines()[-1].startswith("nothing to do: "), again.text


# -- 4. a killed run leaves nothing orphaned ---------------------------------------------------

KILL_SEED_ENV, KILL_SEED = "GENERATOR_TEST_KILL_SEED", 22


def kill_moments() -> random.Random:
    """The random source of the kill moments: a fixed seed (other moments with $GENERATOR_TEST_KILL_SEED), printed
    (pytest shows it with a failure), so a failing sequence of kills replays. The moments are not stretched by
    the load factor: it bounds deadlines from above (the load average counts every runnable task) and would put
    the kills after the end of a run the load did not slow as much; a kill that lands after the run is reported."""
    seed = int(os.environ.get(KILL_SEED_ENV) or KILL_SEED)
    print(f"kill moments: {KILL_SEED_ENV}={seed} (load factor {load_factor():.2f})")
    return random.Random(seed)


def kill_group(proc: subprocess.Popen, after: float) -> bool:
    """After ``after`` seconds, SIGKILL the bootstrap process and its children (sops): the process
    group we started. True when it was still running, i.e. really killed mid-run."""
    time.sleep(after)
    alive = proc.poll() is None
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=scaled(30))
    print(f"  killed after {after:.2f} s: {'mid-run' if alive else 'already done'}")
    return alive


def test_a_killed_bootstrap_converges_on_rerun_without_orphans(tmp_path: Path, keycloak_server: KeycloakServer,
                                                               pg_s3: tuple[PostgresServer, SeaweedServer]) -> None:
    pg, s3 = pg_s3
    with CountingProxy("127.0.0.1", s3.s3_port) as proxy:
        world = build_world(tmp_path, keycloak_server, pg, s3, s3_endpoint=proxy.url)
        rng = kill_moments()
        # Keycloak: killed at random moments while it makes the client, its roles and mapper.
        assert sum(kill_group(world.popen("--only", "keycloak"), rng.uniform(0.3, 1.2)) for _ in range(3)) >= 1
        for step in ("keycloak", "postgres"):
            run = world.bootstrap("--only", step)
            assert run.code == 0, run.text

        # The worst moment, deterministically: SeaweedFS has made the access key, the process dies
        # before it hears back (so before the key reaches sops).
        proc: subprocess.Popen | None = None

        def die_on_new_key(record: Record) -> None:
            if record.action == "CreateAccessKey" and proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)

        proxy.hook = die_on_new_key
        proc = world.popen("--only", "bucket")
        proc.communicate(timeout=scaled(120))
        proxy.hook = None
        assert proc.returncode == -signal.SIGKILL
        orphan = world.s3_user_keys()
        assert len(orphan) == 1 and "S3_AWS_ACCESS_KEY_ID" not in world.sops()  # the window was really hit

        # And at random moments.
        killed_mid_run = sum(kill_group(world.popen("--only", "bucket"), rng.uniform(0.05, 1.0)) for _ in range(4))
        assert killed_mid_run >= 1  # at least one kill hit a live run (python alone takes ~0.4 s to start)

        final = world.bootstrap()
        assert final.code == 0, final.text
        values = world.sops()
        if orphan[0] != values["S3_AWS_ACCESS_KEY_ID"]:
            assert orphan[0] not in world.s3_user_keys()
        # S3: exactly one key, the one in sops, and it works.
        assert world.s3_user_keys() == [values["S3_AWS_ACCESS_KEY_ID"]]
        client = s3.s3_client(values["S3_AWS_ACCESS_KEY_ID"], values["S3_AWS_SECRET_ACCESS_KEY"])
        client.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")
        assert client.get_object(Bucket=BUCKET, Key="probe")["Body"].read() == b"ok"
        assert [b["Name"] for b in s3.s3_client().list_buckets()["Buckets"]].count(BUCKET) == 1
        # Keycloak: one client litellm, its secret is the one in sops; one admin scope.
        world.litellm_client()
        assert world.live_secret() == values["CLIENT_SECRET"]
        assert [s["name"] for s in world.kc_admin().get_client_scopes()].count("litellm_proxy_admin") == 1
        # PostgreSQL: the password in sops logs in.
        with psycopg.connect(values["DATABASE_URL"], connect_timeout=round(scaled(10))) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("litellm",)
        settled = world.bootstrap()
        assert settled.code == 0 and settled.out.splitlines()[-1].startswith("nothing to do: "), settled.text


# -- 5. the token carries the LiteLLM role ---------------------------------------------------

def test_password_grant_token_and_userinfo_carry_the_litellm_role(kc_world: World) -> None:
    world = kc_world
    bootstrapped(world, "--only", "keycloak", stored=f"stored in {SOPS_FILE}: CLIENT_SECRET, PROXY_ADMIN_ID")
    secret = world.sops()["CLIENT_SECRET"]
    response = token(world.kc, world.realm, secret, "admin", ADMIN_PASSWORD)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert "proxy_admin" in jwt_payload(tokens["access_token"])["litellm_role"]
    assert "proxy_admin" in jwt_payload(tokens["id_token"])["litellm_role"]
    info = requests.get(f"{world.kc.url}/realms/{world.realm}/protocol/openid-connect/userinfo", timeout=scaled(30),
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.text
    assert "proxy_admin" in info.json()["litellm_role"]

    plain = token(world.kc, world.realm, secret, "plain", PLAIN_PASSWORD)
    assert plain.status_code == 401, plain.text  # no AI_* role: no token of this client (the access gate)
    # With AI_USER (the other realm role), the plain user gets internal_user - and still not proxy_admin.
    admin = world.kc_admin()
    admin.assign_realm_roles(admin.get_user_id("plain"), [admin.get_realm_role("AI_USER")])
    plain = token(world.kc, world.realm, secret, "plain", PLAIN_PASSWORD)
    claim = jwt_payload(plain.json()["access_token"])["litellm_role"]
    assert "internal_user" in claim and "proxy_admin" not in claim

    # The claim the mapper writes is the one the rendered Deployment tells LiteLLM to read.
    mapper = next(m for m in admin.get_mappers_from_client(world.litellm_client()["id"]) if m["name"] == "litellm-role")
    cert, _ = sealing_pair(world.root.parent / "keys")
    shutil.copy(cert, world.root / f"sites/{SITE}/sealing-cert.pem")
    rendered = generator(world.root, "render", "--site", SITE, env=world.env)
    assert rendered.code == 0, rendered.text
    patch = yaml.safe_load((world.root / f"overlays/{SITE}/app/deployment-patch.yaml").read_text())
    env = {e["name"]: e.get("value") for c in patch["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    assert env["GENERIC_USER_ROLE_ATTRIBUTE"] == mapper["config"]["claim.name"] == "litellm_role"


def granted_scopes(world: World, secret: str, username: str, password: str) -> set[str]:
    """The ``scope`` claim of the access token a password grant gets when it asks for the admin scope."""
    response = token(world.kc, world.realm, secret, username, password, scope="openid litellm_proxy_admin")
    assert response.status_code == 200, response.text
    return set(jwt_payload(response.json()["access_token"])["scope"].split())


def test_admin_scope_is_granted_only_to_holders_of_the_admin_role(kc_world: World) -> None:
    world = kc_world
    first = bootstrapped(world, "--only", "keycloak", stored=f"stored in {SOPS_FILE}: CLIENT_SECRET, PROXY_ADMIN_ID")
    mapping = "client scope litellm_proxy_admin -> AI_ADMIN"
    assert line("created", "keycloak", mapping, "role scope mapping") in first.out.splitlines(), first.out
    client = world.litellm_client()
    assert client["directAccessGrantsEnabled"] is True  # bootstrap enables the password grant
    admin = world.kc_admin()
    assert "litellm_proxy_admin" in {s["name"] for s in admin.get_client_optional_client_scopes(client["id"])}
    secret = world.sops()["CLIENT_SECRET"]

    # Asking for the scope is not enough: the plain user (no role: no token at all, then AI_USER) does not get it.
    assert token(world.kc, world.realm, secret, "plain", PLAIN_PASSWORD, "openid litellm_proxy_admin").status_code == 401
    admin.assign_realm_roles(admin.get_user_id("plain"), [admin.get_realm_role("AI_USER")])
    assert "litellm_proxy_admin" not in granted_scopes(world, secret, "plain", PLAIN_PASSWORD)
    # The admin user (keycloak.adminUsers, given AI_ADMIN by bootstrap) does.
    assert {"openid", "litellm_proxy_admin"} <= granted_scopes(world, secret, "admin", ADMIN_PASSWORD)

    again = world.bootstrap("--only", "keycloak")
    assert again.code == 0, again.text
    assert line("unchanged", "keycloak", mapping, "role scope mapping") in again.out.splitlines(), again.out
    assert again.out.splitlines()[-1] == "nothing to do: 19 object(s) already converged", again.text

    # Without the mapping (a realm bootstrapped before it existed), anyone asking gets the admin scope;
    # the next run maps the role again and closes that.
    scope_id = next(s["id"] for s in admin.get_client_scopes() if s["name"] == "litellm_proxy_admin")
    path = f"admin/realms/{world.realm}/client-scopes/{scope_id}/scope-mappings/realm"
    removed = admin.connection.raw_delete(path, data=json.dumps([admin.get_realm_role("AI_ADMIN")]))
    assert removed.status_code == 204, removed.text
    assert "litellm_proxy_admin" in granted_scopes(world, secret, "plain", PLAIN_PASSWORD)
    fixed = world.bootstrap("--only", "keycloak")
    assert fixed.code == 0, fixed.text
    assert line("created", "keycloak", mapping, "role scope mapping") in fixed.out.splitlines(), fixed.out
    assert "litellm_proxy_admin" not in granted_scopes(world, secret, "plain", PLAIN_PASSWORD)
    assert "litellm_proxy_admin" in granted_scopes(world, secret, "admin", ADMIN_PASSWORD)

    # A role mapped there by hand widens the admins (every holder of AI_USER here): the next run removes it.
    widened = admin.connection.raw_post(path, data=json.dumps([admin.get_realm_role("AI_USER")]))
    assert widened.status_code == 204, widened.text
    assert "litellm_proxy_admin" in granted_scopes(world, secret, "plain", PLAIN_PASSWORD)
    narrowed = world.bootstrap("--only", "keycloak")
    assert narrowed.code == 0, narrowed.text
    assert line("updated", "keycloak", mapping, "drift: removed AI_USER") in narrowed.out.splitlines(), narrowed.out
    assert "litellm_proxy_admin" not in granted_scopes(world, secret, "plain", PLAIN_PASSWORD)
    assert "litellm_proxy_admin" in granted_scopes(world, secret, "admin", ADMIN_PASSWORD)


# -- 6. the database credentials: enough, and no more ------------------------------------------

def test_database_credentials_are_confined_to_their_database(world: World) -> None:
    world.pg.psql("CREATE DATABASE otherdb; REVOKE CONNECT ON DATABASE otherdb FROM PUBLIC;")
    bootstrapped(world)
    url = world.sops()["DATABASE_URL"]
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path, parts.username) == ("127.0.0.1", world.pg.port, "/litellm", "litellm")
    assert len(unquote(parts.password)) >= 32

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE spend (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO spend VALUES (1, 'kept')")
        assert conn.execute("SHOW is_superuser").fetchone() == ("off",)
    with pytest.raises(psycopg.OperationalError, match='permission denied for database "otherdb"'):
        psycopg.connect(url.rsplit("/", 1)[0] + "/otherdb")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema public"):
            conn.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE another")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE DATABASE another")
    with pg_admin(world.pg) as conn:
        assert conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
                            "WHERE rolname = 'litellm'").fetchone() == (False, False, False, True)

    rerun = world.bootstrap()
    assert rerun.code == 0 and rerun.out.splitlines()[-1].startswith("nothing to do: "), rerun.text
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, note FROM spend").fetchall() == [(1, "kept")]


# -- 7. the S3 keys: the cache bucket only -----------------------------------------------------

def test_s3_keys_are_confined_to_the_cache_bucket_and_existing_objects_survive(world: World) -> None:
    admin = world.s3.s3_client()
    admin.create_bucket(Bucket=BUCKET)
    admin.put_object(Bucket=BUCKET, Key="before/bootstrap", Body=b"admin data")
    admin.create_bucket(Bucket="private")
    admin.put_object(Bucket="private", Key="secret", Body=b"not yours")

    first = bootstrapped(world)
    assert line("unchanged", "bucket", f"bucket {BUCKET}") in first.out.splitlines()
    values = world.sops()
    user = world.s3.s3_client(values["S3_AWS_ACCESS_KEY_ID"], values["S3_AWS_SECRET_ACCESS_KEY"])
    user.put_object(Bucket=BUCKET, Key="cache/1", Body=b"cached")
    assert user.get_object(Bucket=BUCKET, Key="cache/1")["Body"].read() == b"cached"
    assert user.get_object(Bucket=BUCKET, Key="before/bootstrap")["Body"].read() == b"admin data"
    for denied in (lambda: user.put_object(Bucket="private", Key="x", Body=b"x"),
                   lambda: user.get_object(Bucket="private", Key="secret"),
                   lambda: user.list_objects_v2(Bucket="private"),
                   lambda: user.create_bucket(Bucket="mine")):
        with pytest.raises(ClientError) as refused:
            denied()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert admin.get_object(Bucket=BUCKET, Key="before/bootstrap")["Body"].read() == b"admin data"
    rerun = world.bootstrap()
    assert rerun.code == 0 and rerun.out.splitlines()[-1].startswith("nothing to do: "), rerun.text
    assert admin.get_object(Bucket=BUCKET, Key="before/bootstrap")["Body"].read() == b"admin data"
    assert admin.get_object(Bucket=BUCKET, Key="cache/1")["Body"].read() == b"cached"


# -- 8. failures: one line, and sops keeps what was applied ------------------------------------

def only_error(run: Run) -> str:
    assert run.code == 1, run.text
    errors = run.err.strip().splitlines()
    assert len(errors) == 1, run.err
    return errors[0]


def test_wrong_keycloak_admin_password_fails_in_one_line(kc_world: World) -> None:
    world = kc_world
    before = world.sops_bytes()
    run = world.bootstrap(KEYCLOAK_ADMIN_PASSWORD="not-the-password")
    assert only_error(run) == (f"error: keycloak at {world.kc.url}: cannot log in as admin 'admin' in realm 'master': "
                               "invalid credentials")
    assert "not-the-password" not in run.text
    assert world.sops_bytes() == before and "CLIENT_SECRET" not in world.sops()


def test_missing_realm_and_missing_admin_user_fail_in_one_line(kc_world: World) -> None:
    world = kc_world
    world.write_site(keycloak={"realm": "no-such-realm"})
    run = world.bootstrap()
    assert only_error(run) == f"error: keycloak at {world.kc.url}: realm 'no-such-realm' does not exist"
    assert "CLIENT_SECRET" not in world.sops()

    world.write_site(keycloak={"adminUsers": ["admin", "x"]})
    run = world.bootstrap()
    assert only_error(run) == (f"error: keycloak at {world.kc.url}: admin user 'x' does not exist in realm "
                               f"'{world.realm}'; create it or fix keycloak.adminUsers")
    # The client was made before the user check failed: its secret is in sops.
    assert "stored in sites/demo/secrets.sops.yaml: CLIENT_SECRET" in run.out
    assert world.sops()["CLIENT_SECRET"] == world.live_secret()


def test_unreachable_postgres_fails_in_one_line_and_keeps_the_client_secret(kc_world: World) -> None:
    world = kc_world
    port = world.site["bootstrap"]["postgres"]["port"]  # a free port: nothing listens there
    run = world.bootstrap()
    error = only_error(run)
    assert error.startswith(f"error: postgres at postgresql://127.0.0.1:{port}: connection failed: "), error
    assert "stored in sites/demo/secrets.sops.yaml: CLIENT_SECRET" in run.out
    values = world.sops()
    assert values["CLIENT_SECRET"] == world.live_secret() and "DATABASE_URL" not in values


def test_stopped_postgres_fails_after_keycloak_and_keeps_the_client_secret(kc_pg_world: World) -> None:
    world = kc_pg_world
    world.pg.stop()
    run = world.bootstrap()
    error = only_error(run)
    assert error.startswith(f"error: postgres at postgresql://127.0.0.1:{world.pg.port}: "), error
    assert world.sops()["CLIENT_SECRET"] == world.live_secret()


def test_unreachable_s3_fails_in_one_line_and_keeps_what_was_applied(kc_pg_world: World) -> None:
    world = kc_pg_world
    endpoint = world.site["bootstrap"]["s3"]["endpoint"]  # a free port: nothing listens there
    run = world.bootstrap()
    error = only_error(run)
    assert error.startswith(f"error: s3 at {endpoint}: unreachable "), error
    assert "stored in sites/demo/secrets.sops.yaml: CLIENT_SECRET, DATABASE_URL" in run.out
    values = world.sops()
    assert values["CLIENT_SECRET"] == world.live_secret()
    with psycopg.connect(values["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("litellm",)
    assert "S3_AWS_ACCESS_KEY_ID" not in values


# -- 9. rotation ------------------------------------------------------------------------------

def test_rotate_client_secret_changes_it_everywhere_and_keeps_the_client(kc_world: World) -> None:
    world = kc_world
    bootstrapped(world, "--only", "keycloak", stored=f"stored in {SOPS_FILE}: CLIENT_SECRET, PROXY_ADMIN_ID")
    old = world.sops()["CLIENT_SECRET"]
    client_uuid = world.litellm_client()["id"]
    assert token(world.kc, world.realm, old, "admin", ADMIN_PASSWORD).status_code == 200

    rotated = world.bootstrap("--only", "keycloak", "--rotate-client-secret")
    assert rotated.code == 0, rotated.text
    assert line("updated", "keycloak", "client litellm secret", "rotated") in rotated.out.splitlines()
    assert "stored in sites/demo/secrets.sops.yaml: CLIENT_SECRET" in rotated.out
    new = world.sops()["CLIENT_SECRET"]
    assert new != old and world.live_secret() == new
    assert world.litellm_client()["id"] == client_uuid
    assert token(world.kc, world.realm, new, "admin", ADMIN_PASSWORD).status_code == 200
    refused = token(world.kc, world.realm, old, "admin", ADMIN_PASSWORD)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized_client", refused.text

    again = world.bootstrap("--only", "keycloak")
    assert again.code == 0 and again.out.splitlines()[-1] == "nothing to do: 19 object(s) already converged", again.text
    assert world.sops()["CLIENT_SECRET"] == new == world.live_secret()


# -- 10. the offline plan ----------------------------------------------------------------------

def test_the_offline_plan_is_what_a_first_run_creates(world: World) -> None:
    """`bootstrap --dry-run --offline` needs no service, credential or key, and lists exactly the objects a first
    run on services that have none of them then creates (so the plan cannot drift from the steps)."""
    bare = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "/nonexistent", "KEYCLOAK_ADMIN_USERNAME": "",
            "KEYCLOAK_ADMIN_PASSWORD": "", "POSTGRES_ADMIN_USERNAME": "", "POSTGRES_ADMIN_PASSWORD": "",
            "S3_ADMIN_ACCESS_KEY_ID": "", "S3_ADMIN_SECRET_ACCESS_KEY": ""}
    plan = world.bootstrap("--dry-run", "--offline", **bare)
    assert plan.code == 0 and plan.err == "", plan.text
    *lines, summary = plan.out.splitlines()
    planned = [ln.removeprefix("would create ") for ln in lines if ln.startswith("would create ")]
    assert ("would store in sops: CLIENT_SECRET, PROXY_ADMIN_ID, DATABASE_URL, S3_AWS_ACCESS_KEY_ID, "
            "S3_AWS_SECRET_ACCESS_KEY") in plan.out
    assert summary.startswith(f"would create {len(planned)} object(s) on services that have none of them")

    first = world.bootstrap()
    assert first.code == 0, first.text
    created = [ln.removeprefix("created").lstrip() for ln in first.out.splitlines() if ln.startswith("created ")]
    assert [" ".join(p.split()) for p in planned] == [" ".join(c.split()) for c in created], first.out
