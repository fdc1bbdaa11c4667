"""Smoke tests for tests/servers.py: each real server starts, does one real
operation, and is completely gone (port closed, processes dead) afterwards."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

try:
    from tests.servers import (
        HOST, PostgresServer, SeaweedServer, ValkeyServer, free_port,
        port_is_open,
    )
except ImportError:  # tests/ is not a package: import the module by path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from servers import (  # type: ignore[no-redef]
        HOST, PostgresServer, SeaweedServer, ValkeyServer, free_port,
        port_is_open,
    )

pytestmark = pytest.mark.servers


def listening_sockets(pids: set[int]) -> list[str]:
    """Local addresses on which any of ``pids`` listens (TCP), via ``ss``."""
    ss = shutil.which("ss")
    assert ss, "ss (iproute2) is missing: scripts/install-servers.sh installs it"
    out = subprocess.run([ss, "-Hltnp"], capture_output=True, text=True, check=True).stdout
    addrs = []
    for line in out.splitlines():
        if any(f"pid={p}," in line for p in pids):
            addrs.append(line.split()[3])
    return addrs


def assert_loopback_only(pids: set[int]) -> list[str]:
    addrs = listening_sockets(pids)
    assert addrs, f"no listening sockets found for {pids}"
    for a in addrs:
        host = a.rsplit(":", 1)[0]
        assert host in ("127.0.0.1", "[::ffff:127.0.0.1]"), f"listens on {a}: {addrs}"
    return addrs


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def assert_stopped(pids: set[int], ports: list[int]) -> None:
    assert pids
    alive = [p for p in pids if _pid_alive(p)]
    assert not alive, f"processes still alive: {alive}"
    open_ports = [p for p in ports if port_is_open(p)]
    assert not open_ports, f"ports still open: {open_ports}"


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind((HOST, port))


# --------------------------------------------------------------------------


def test_postgres(tmp_path):
    with PostgresServer(tmp_path) as pg:
        print(f"\npostgres ready in {pg.startup_seconds:.2f}s (incl. initdb)")
        pids = pg.pids()
        assert_loopback_only(pids)
        role_pw = "role-pw-" + pg.admin_password[:8]
        try:
            import psycopg
        except ImportError:
            psycopg = None
        if psycopg is not None:
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{role_pw}'")
                conn.execute("CREATE DATABASE appdb OWNER app")
            with psycopg.connect(pg.dsn("appdb", "app", role_pw)) as conn:
                assert conn.execute("SELECT current_user").fetchone()[0] == "app"
        else:
            pg.psql(f"CREATE ROLE app LOGIN PASSWORD '{role_pw}';\nCREATE DATABASE appdb OWNER app;")
        assert pg.psql("SELECT datname FROM pg_database WHERE datname='appdb'").strip() == "appdb"

        # password auth is enforced
        if psycopg is not None:
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(pg.dsn(password="wrong"), connect_timeout=5).close()

        # crash + restart on the same data dir and port
        pg.kill()
        assert_stopped(pids, [pg.port])
        pg.start()
        pids |= pg.pids()
        assert pg.psql("SELECT 1 FROM pg_roles WHERE rolname='app'").strip() == "1"
        port = pg.port
        t0 = time.monotonic()
        pg.stop()
        print(f"postgres stopped in {time.monotonic() - t0:.2f}s")
    assert_stopped(pids, [port])


# --------------------------------------------------------------------------


def test_keycloak(keycloak_server):
    """The session's Keycloak (tests/integration/conftest.py; a second one would cost half a minute of CPU):
    loopback only, admin API up, its database in its own home. Stopping one is proven by the e2e fault tests,
    which stop Keycloak for real, and by the same _Server base the other smoke tests stop."""
    kc = keycloak_server
    print(f"\nkeycloak ready in {kc.startup_seconds:.2f}s")
    assert_loopback_only(kc.pids())
    token = kc.admin_token()
    req = urllib.request.Request(
        f"{kc.url}/admin/realms", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        realms = [r["realm"] for r in json.load(resp)]
    assert "master" in realms
    # the H2 database lives in the per-server home, not in the shared dist
    assert list((kc.home / "data" / "h2").glob("keycloakdb*"))


# --------------------------------------------------------------------------


def test_seaweedfs(tmp_path):
    from botocore.exceptions import ClientError

    with SeaweedServer(tmp_path) as sw:
        print(f"\nseaweedfs ready in {sw.startup_seconds:.2f}s")
        pids = sw.pids()
        assert_loopback_only(pids)
        s3 = sw.s3_client()
        s3.create_bucket(Bucket="bucket-a")
        s3.create_bucket(Bucket="bucket-b")
        s3.put_object(Bucket="bucket-a", Key="hello.txt", Body=b"hello")
        s3.put_object(Bucket="bucket-b", Key="secret.txt", Body=b"secret")
        assert s3.get_object(Bucket="bucket-a", Key="hello.txt")["Body"].read() == b"hello"

        # a runtime identity restricted to bucket-a through the embedded IAM API
        iam = sw.iam_client()
        iam.create_user(UserName="app-a")
        key = iam.create_access_key(UserName="app-a")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["s3:*"],
                "Resource": ["arn:aws:s3:::bucket-a", "arn:aws:s3:::bucket-a/*"],
            }],
        }
        iam.put_user_policy(UserName="app-a", PolicyName="bucket-a-only",
                            PolicyDocument=json.dumps(policy))

        def check_access(k):
            c = sw.s3_client(k["AccessKeyId"], k["SecretAccessKey"])
            c.put_object(Bucket="bucket-a", Key="by-app.txt", Body=b"app")
            assert c.get_object(Bucket="bucket-a", Key="by-app.txt")["Body"].read() == b"app"
            for call in (
                lambda: c.put_object(Bucket="bucket-b", Key="x", Body=b"x"),
                lambda: c.get_object(Bucket="bucket-b", Key="secret.txt"),
                lambda: c.list_objects_v2(Bucket="bucket-b"),
            ):
                with pytest.raises(ClientError) as ei:
                    call()
                assert ei.value.response["Error"]["Code"] == "AccessDenied"

        check_access(key)

        # a second CreateAccessKey adds a key (it does not return the old one)
        key2 = iam.create_access_key(UserName="app-a")["AccessKey"]
        assert key2["AccessKeyId"] != key["AccessKeyId"]
        listed = {m["AccessKeyId"] for m in
                  iam.list_access_keys(UserName="app-a")["AccessKeyMetadata"]}
        assert listed == {key["AccessKeyId"], key2["AccessKeyId"]}
        iam.delete_access_key(UserName="app-a", AccessKeyId=key2["AccessKeyId"])

        # identities, policies and data survive a restart on the same data dir
        t0 = time.monotonic()
        sw.stop()
        print(f"seaweedfs stopped in {time.monotonic() - t0:.2f}s")
        assert_stopped(pids, [sw.s3_port])
        sw.start()
        pids |= sw.pids()
        print(f"seaweedfs restart ready in {sw.startup_seconds:.2f}s")
        iam = sw.iam_client()
        users = {u["UserName"] for u in iam.list_users()["Users"]}
        assert "app-a" in users
        assert [m["AccessKeyId"] for m in
                iam.list_access_keys(UserName="app-a")["AccessKeyMetadata"]] == [key["AccessKeyId"]]
        check_access(key)
        assert sw.s3_client().get_object(Bucket="bucket-b", Key="secret.txt")["Body"].read() == b"secret"
        ports = list(sw.ports.values())
    assert_stopped(pids, ports)


# --------------------------------------------------------------------------


def test_valkey(tmp_path):
    password = "kv-" + secrets.token_urlsafe(16)
    with ValkeyServer(tmp_path, password=password) as kv:
        print(f"\n{kv.binary.name} ready in {kv.startup_seconds:.2f}s")
        pids = kv.pids()
        assert_loopback_only(pids)
        assert kv.url == f"redis://:{password}@{HOST}:{kv.port}"
        # the password is in a 0600 file, not in any argv
        assert kv.conf_path.stat().st_mode & 0o777 == 0o600
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert password.encode() not in f.read()

        # without AUTH every command is refused
        assert kv.command("PING", auth=False).startswith(b"-NOAUTH")
        assert kv.command("SET", "k", "v", auth=False).startswith(b"-NOAUTH")
        # with AUTH: SET/GET round-trip
        assert kv.command("PING") == b"+PONG\r\n"
        assert kv.command("SET", "smoke:key", "hällo wörld") == b"+OK\r\n"
        value = "hällo wörld".encode()
        assert kv.command("GET", "smoke:key") == b"$%d\r\n%s\r\n" % (len(value), value)
        assert kv.command("KEYS", "smoke:*") == b"*1\r\n$9\r\nsmoke:key\r\n"
        assert kv.command("GET", "missing") == b"$-1\r\n"

        port = kv.port
        t0 = time.monotonic()
        kv.stop()
        print(f"{kv.binary.name} stopped in {time.monotonic() - t0:.2f}s")
    assert_stopped(pids, [port])
    # no persistence: nothing was written next to the config
    assert not list(tmp_path.glob("*.rdb")) and not list(tmp_path.glob("appendonly*"))
    # without a password the URL carries no credentials
    assert ValkeyServer(tmp_path / "nopw").url.startswith(f"redis://{HOST}:")
