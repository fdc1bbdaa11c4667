"""The database keeps its data: `generator bootstrap` on a database Thinkube's playbook made, and LiteLLM's
real schema (its own migration SQL, tests/litellm_schema.py) under the role bootstrap makes.

The original state is made as ``optional/litellm/11_deploy.yaml`` makes it: its ``init-db`` container, as
the platform's admin (the PostgreSQL superuser), runs ``CREATE DATABASE litellm``, ``GRANT ALL PRIVILEGES
ON DATABASE litellm TO admin``, ``ALTER DATABASE litellm OWNER TO admin`` and ``GRANT ALL ON SCHEMA public
TO admin``; then LiteLLM, whose DATABASE_URL logs in as that admin too, migrates: every table is the
admin's. The site's sops file holds that DATABASE_URL, as ``generator adopt`` copies it.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
import yaml
from psycopg import sql

from tests.helpers import build_file_tree, generator, sops_decrypt
from tests.integration.test_bootstrap import line, running
from tests.keys import age_key, sops_rules
from tests.litellm_schema import apply_migrations, content_digest, migrations, row_counts, seed_every_table, tables
from tests.servers import PostgresServer

pytestmark = pytest.mark.servers

SITE = "adopted"
SOPS_FILE = f"sites/{SITE}/secrets.sops.yaml"
# The last migration of the "older LiteLLM" the original ran; the rest come with 1.108.7.
ORIGINAL_UPTO = "20251201000000"


@pytest.fixture
def pg(tmp_path: Path):
    server = PostgresServer(tmp_path / "pg")
    with running(server):
        yield server


def make_repo(tmp_path: Path, pg: PostgresServer, database_url: str | None) -> tuple[Path, dict[str, str]]:
    """A repository with one site pointing bootstrap at ``pg``; its sops file holds ``database_url``."""
    root, key = tmp_path / "repo", age_key()
    site = {"domain": "example.com",
            "gitops": {"flux": {"url": "https://git.example.org/gitops.git"},
                       "argocd": {"repoUrl": "https://git.example.org/gitops.git"}},
            "postgres": {"host": "127.0.0.1", "port": pg.port},
            "bootstrap": {"postgres": {"host": "127.0.0.1", "port": pg.port}}}
    build_file_tree(root, {".sops.yaml": sops_rules([key.recipient]),
                           f"sites/{SITE}/site.yaml": yaml.safe_dump(site, sort_keys=False)})
    env = {"SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent",
           "POSTGRES_ADMIN_USERNAME": pg.admin_user, "POSTGRES_ADMIN_PASSWORD": pg.admin_password}
    assert generator(root, "secrets", "init", "--site", SITE, env=env).code == 0
    if database_url:
        stored = generator(root, "secrets", "set", "--site", SITE, "DATABASE_URL", stdin=database_url, env=env)
        assert stored.code == 0, stored.text
    env["_IDENTITY"] = key.identity
    return root, env


def sops(root: Path, env: dict[str, str]) -> dict[str, str]:
    return sops_decrypt(root / SOPS_FILE, env["_IDENTITY"])


def bootstrap(root: Path, env: dict[str, str], *args: str):
    return generator(root, "bootstrap", "--site", SITE, "--only", "postgres", *args,
                     env={k: v for k, v in env.items() if not k.startswith("_")})


def make_original(pg: PostgresServer) -> None:
    """The database as Thinkube's init-db container leaves it (the admin is the superuser ``postgres`` here)."""
    admin = pg.admin_user
    pg.psql("CREATE DATABASE litellm")
    pg.psql(f"GRANT ALL PRIVILEGES ON DATABASE litellm TO {admin}")
    pg.psql(f"ALTER DATABASE litellm OWNER TO {admin}")
    pg.psql(f"GRANT ALL ON SCHEMA public TO {admin}", dbname="litellm")


def owners(conn: psycopg.Connection) -> set[str]:
    """The owners of every table, view, sequence, type and function of schema public."""
    return {r[0] for r in conn.execute(
        "SELECT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE nspname = 'public' AND relkind IN ('r','p','v','m','S','f','i') "
        "UNION SELECT pg_get_userbyid(typowner) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE nspname = 'public' UNION SELECT pg_get_userbyid(proowner) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname = 'public'")}


def test_the_role_bootstrap_makes_applies_every_migration_on_a_fresh_database(tmp_path: Path, pg) -> None:
    root, env = make_repo(tmp_path, pg, None)
    first = bootstrap(root, env)
    assert first.code == 0, first.text
    url = sops(root, env)["DATABASE_URL"]
    assert urlsplit(url).username == "litellm"
    every = migrations()
    assert len(every) == 220, len(every)  # litellm-proxy-extras 0.4.110 (LiteLLM 1.108.7): 220 dirs + migration_lock.toml
    assert apply_migrations(url, every) == [d.name for d in every]
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SHOW is_superuser").fetchone() == ("off",)
        assert conn.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL "
                            "AND applied_steps_count = 1").fetchone() == (220,)
        assert owners(conn) == {"litellm"}
        assert {"LiteLLM_VerificationToken", "LiteLLM_ProxyModelTable", "LiteLLM_SpendLogs"} <= set(tables(conn))
    assert apply_migrations(url, every) == [], "a second run finds nothing to apply"
    again = bootstrap(root, env)
    assert again.code == 0 and again.out.splitlines()[-1].startswith("nothing to do: "), again.text


def test_an_adopted_database_is_kept_and_the_site_role_reads_writes_and_migrates_it(tmp_path: Path, pg) -> None:
    make_original(pg)
    original_url = pg.url("litellm")  # the original's DATABASE_URL: the platform admin's login
    older = [d for d in migrations() if d.name < ORIGINAL_UPTO]
    newer = [d for d in migrations() if d.name >= ORIGINAL_UPTO]
    assert older and newer
    apply_migrations(original_url, older)  # what LiteLLM did at start-up, as the admin
    with psycopg.connect(original_url, autocommit=True) as conn:
        counts = seed_every_table(conn, "kept")
        before = content_digest(conn)
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = 'litellm'").fetchone()[0]
        assert owners(conn) == {pg.admin_user}
    assert all(n >= 1 for n in counts.values()), counts

    root, env = make_repo(tmp_path, pg, original_url)
    plan = bootstrap(root, env, "--dry-run")
    assert plan.code == 0, plan.text
    assert sops(root, env)["DATABASE_URL"] == original_url, "a dry run writes nothing"

    run = bootstrap(root, env)
    assert run.code == 0, run.text
    print("dry run:", plan.out, "run:", run.out, sep="\n")
    report = run.out.splitlines()
    assert line("updated", "postgres", "sops DATABASE_URL",
                f"named role {pg.admin_user}, not litellm: litellm gets a password of its own") in report, run.out
    assert line("updated", "postgres", "database litellm", f"owner {pg.admin_user} -> litellm") in report, run.out
    moved = [ln for ln in report if "objects in schema public of litellm" in ln]
    assert len(moved) == 1 and f"owner {pg.admin_user} -> litellm: " in moved[0], run.out
    assert pg.admin_password not in run.text and "password" not in "".join(moved)

    url = sops(root, env)["DATABASE_URL"]
    parts = urlsplit(url)
    assert parts.username == "litellm" and unquote(parts.password) != pg.admin_password
    with psycopg.connect(pg.url("litellm"), autocommit=True) as conn:  # the admin's password still works
        assert conn.execute("SELECT oid FROM pg_database WHERE datname = 'litellm'").fetchone()[0] == oid
        assert content_digest(conn) == before, "not a row changed"
        assert owners(conn) == {"litellm"}

    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SHOW is_superuser").fetchone() == ("off",)
        assert row_counts(conn) == counts
        for table in tables(conn):
            ident = sql.Identifier(table)
            first = conn.execute(sql.SQL("SELECT attname FROM pg_attribute WHERE attrelid = {}::regclass "
                                         "AND attnum = 1").format(sql.Literal(ident.as_string(conn)))).fetchone()[0]
            written = conn.execute(sql.SQL("UPDATE {} SET {} = {}").format(ident, sql.Identifier(first),
                                                                           sql.Identifier(first)))
            assert written.rowcount == counts[table], table
            assert conn.execute("SELECT has_table_privilege(%s, 'INSERT, DELETE, TRUNCATE, REFERENCES')",
                                (ident.as_string(conn),)).fetchone() == (True,), table
    assert apply_migrations(url, newer) == [d.name for d in newer], "1.108.7's migrations, as the site's role"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO \"LiteLLM_VerificationToken\" (token, created_at, updated_at) "
                     "VALUES ('hashed-new-key', now(), now())")
        assert conn.execute("SELECT count(*) FROM \"LiteLLM_VerificationToken\"").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM _prisma_migrations").fetchone() == (len(older) + len(newer),)

    again = bootstrap(root, env)
    assert again.code == 0 and again.out.splitlines()[-1].startswith("nothing to do: "), again.text
    assert sops(root, env)["DATABASE_URL"] == url, "kept: never rotated once it names the site's role"


def test_a_site_role_that_is_the_admin_login_is_refused(tmp_path: Path, pg) -> None:
    root, env = make_repo(tmp_path, pg, None)
    site = yaml.safe_load((root / f"sites/{SITE}/site.yaml").read_text())
    site["postgres"]["role"] = pg.admin_user
    build_file_tree(root, {f"sites/{SITE}/site.yaml": json.dumps(site)})
    run = bootstrap(root, env)
    assert run.code == 2, run.text
    assert run.err.strip().splitlines() == [
        f"error: postgres.role: '{pg.admin_user}' is the admin login bootstrap uses (an adopted site's DATABASE_URL "
        "logs in as the platform's admin); remove postgres.role so LiteLLM gets its own role 'litellm' (bootstrap "
        "gives it the database and its tables, every row kept)"], run.err
    assert pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'").strip() == "t"

    # the platform's admin under another name than bootstrap's login: a superuser owning other databases
    pg.psql("CREATE ROLE tkadmin LOGIN SUPERUSER PASSWORD 'tk-admin-pw'; CREATE DATABASE platform OWNER tkadmin")
    site["postgres"]["role"] = "tkadmin"
    build_file_tree(root, {f"sites/{SITE}/site.yaml": json.dumps(site)})
    other = bootstrap(root, env)
    assert other.code == 2 and other.err.strip().splitlines() == [
        "error: postgres.role: 'tkadmin' is a superuser that owns other databases (platform): it is not LiteLLM's "
        "alone; remove postgres.role so LiteLLM gets its own role 'litellm'"], other.text
    assert pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'tkadmin'").strip() == "t"


def test_an_adopted_site_keeps_its_client_secret_and_its_rows(tmp_path: Path, keycloak_server, pg) -> None:
    """Keycloak and PostgreSQL as the playbooks left them, the sops file holding their values: bootstrap keeps the
    client and its secret (Keycloak generated it) and the database with its rows."""
    from tests.integration.test_bootstrap import build_world

    world = build_world(tmp_path, keycloak_server, pg)
    host = "litellm.example.com"
    admin = world.kc_admin()
    admin.create_client({  # 10_configure_keycloak.yaml's body
        "clientId": "litellm", "name": "LiteLLM Proxy", "enabled": True, "publicClient": False,
        "standardFlowEnabled": True, "implicitFlowEnabled": False, "directAccessGrantsEnabled": True,
        "serviceAccountsEnabled": False, "protocol": "openid-connect", "bearerOnly": False, "fullScopeAllowed": True,
        "rootUrl": f"https://{host}", "baseUrl": "/", "redirectUris": [f"https://{host}/sso/callback", f"https://{host}/*"],
        "webOrigins": [f"https://{host}"], "attributes": {"post.logout.redirect.uris": f"https://{host}"}})
    original_secret = world.live_secret()
    make_original(pg)
    original_url = pg.url("litellm")
    apply_migrations(original_url, [d for d in migrations() if d.name < ORIGINAL_UPTO])
    with psycopg.connect(original_url, autocommit=True) as conn:
        seed_every_table(conn, "kept")
        before = content_digest(conn)
    for key, value in (("CLIENT_SECRET", original_secret), ("DATABASE_URL", original_url)):
        stored = generator(world.root, "secrets", "set", "--site", "demo", key, stdin=value, env=world.env)
        assert stored.code == 0, stored.text

    run = world.bootstrap("--only", "keycloak", "--only", "postgres")
    assert run.code == 0, run.text
    print(run.out)
    assert line("unchanged", "keycloak", "client litellm secret", "in sops as CLIENT_SECRET") in run.out.splitlines()
    assert world.live_secret() == original_secret == world.sops()["CLIENT_SECRET"]
    assert world.litellm_client()["clientId"] == "litellm"
    assert urlsplit(world.sops()["DATABASE_URL"]).username == "litellm"
    with psycopg.connect(pg.url("litellm"), autocommit=True) as conn:
        assert content_digest(conn) == before and owners(conn) == {"litellm"}
    assert original_secret not in run.text and pg.admin_password not in run.text
