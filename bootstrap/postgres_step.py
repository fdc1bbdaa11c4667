"""PostgreSQL: a dedicated login role with a generated password, a database it owns, CONNECT
revoked from PUBLIC, and the schema privileges it needs. Nothing is ever dropped.

An existing database is converged in place, whoever made it. Thinkube's playbook (``11_deploy.yaml``,
its ``init-db`` container) created ``litellm`` as the platform's admin, gave that admin the database,
and LiteLLM, logging in as the admin too, created every table: all of it owned by the admin. Here the
site's own role gets the database and every object in its ``public`` schema (tables, views,
sequences, types, functions), so it can read and write every row and run LiteLLM's later migrations
(ALTER TABLE needs the owner). No row is touched and no object is recreated.

A DATABASE_URL already in sops is kept when it names the site's role. One that names another role
(the original's admin login, copied by ``generator adopt``) holds that role's password: it is never
copied onto the site's role nor changed; the site's role gets a password of its own.

The password never travels to the server in plaintext: the role gets a SCRAM-SHA-256 verifier
computed here (as psql's \\password does), so it cannot end up in a server log either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from urllib.parse import quote, urlsplit, unquote

import psycopg
from psycopg import sql

from bootstrap import DEFAULT_TIMEOUT
from bootstrap.credentials import AdminLogin
from bootstrap.report import CREATED, UNCHANGED, UPDATED, Report
from bootstrap.vault import Vault
from generator.errors import GeneratorError, UsageError
from generator.model import Site

SERVICE = "postgres"
SCRAM_ITERATIONS = 4096


class PostgresFailed(GeneratorError):
    pass


def new_password() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


def database_url(site: Site, password: str) -> str:
    pg = site.postgres
    return f"postgresql://{quote(pg.role, safe='')}:{quote(password, safe='')}@{pg.host}:{pg.port}/{pg.database}"


def password_from_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return unquote(parts.password) if parts.password else None


def user_from_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return unquote(parts.username) if parts.username else None


def fresh_plan(site: Site) -> list[tuple[str, str]]:
    """What the step creates on a server that has none of it (``bootstrap --dry-run --offline``)."""
    pg = site.postgres
    return [(f"role {pg.role}", "login, password in sops as DATABASE_URL"),
            (f"database {pg.database}", f"owner {pg.role}, CONNECT revoked from PUBLIC")]


class PostgresStep:
    def __init__(self, site: Site, login: AdminLogin, vault: Vault, report: Report, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.site, self.vault, self.report, self.timeout = site, vault, report, timeout
        settings = site.bootstrap.postgres
        self.host = settings.host or site.postgres.host
        self.port = settings.port or site.postgres.port
        self.where = f"postgresql://{self.host}:{self.port}"
        self.conninfo = dict(host=self.host, port=self.port, user=login.user, password=login.password,
                             sslmode=settings.sslmode, connect_timeout=max(2, round(timeout)))
        if settings.ca_bundle:
            self.conninfo["sslrootcert"] = settings.ca_bundle
        self.admin_db = settings.admin_database

    def _connect(self, dbname: str, **overrides: object) -> psycopg.Connection:
        try:
            return psycopg.connect(**{**self.conninfo, **overrides}, dbname=dbname, autocommit=True)
        except psycopg.OperationalError as exc:
            if "timeout" in str(exc).lower():
                raise PostgresFailed(f"postgres at {self.where}: no answer within {self.timeout:g} s "
                                     f"({_first_line(exc)})") from exc
            raise PostgresFailed(f"postgres at {self.where}: {_first_line(exc)}") from exc

    def run(self) -> None:
        pg = self.site.postgres
        if pg.role == self.conninfo["user"]:
            raise UsageError(f"postgres.role: {pg.role!r} is the admin login bootstrap uses (an adopted site's "
                             "DATABASE_URL logs in as the platform's admin); remove postgres.role so LiteLLM gets its "
                             "own role 'litellm' (bootstrap gives it the database and its tables, every row kept)")
        try:
            with self._connect(self.admin_db) as conn:
                self._role(conn, pg.role)
                self._database(conn, pg.database, pg.role)
            if self.vault.dry_run and not self._exists_db(pg.database):
                self.report.add(SERVICE, f"schema public of {pg.database}", CREATED, "privileges")
                return
            with self._connect(pg.database) as conn:
                self._schema(conn, pg.role)
                self._ownership(conn, pg.role)
        except psycopg.Error as exc:
            raise PostgresFailed(f"postgres at {self.where}: {_first_line(exc)}") from exc

    def _exists_db(self, name: str) -> bool:
        with self._connect(self.admin_db) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def _role(self, conn: psycopg.Connection, role: str) -> None:
        row = conn.execute("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
                           (role,)).fetchone()
        stored = self.vault.get("DATABASE_URL")
        password = password_from_url(stored)
        stored_user = user_from_url(stored)
        if stored_user is not None and stored_user != role:
            # An adopted site's URL logs in as another role (the original's admin): that password is not ours.
            password = None
            self.report.add(SERVICE, "sops DATABASE_URL", UPDATED,
                            f"named role {stored_user}, not {role}: {role} gets a password of its own")
        if row is None:
            password = password or new_password()
            self.vault.remember("DATABASE_URL", database_url(self.site, password))  # sops before the role exists
            if not self.vault.dry_run:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scram_verifier(password))))
            self.report.add(SERVICE, f"role {role}", CREATED, "login, password in sops as DATABASE_URL")
            return
        can_login, superuser, createdb, createrole = row
        if not can_login or superuser or createdb or createrole:
            others = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = %s) "
                "AND datname <> %s AND NOT datistemplate ORDER BY 1", (role, self.site.postgres.database))]
            if superuser and others:  # the platform's admin, not a drifted LiteLLM role: never demote it
                raise UsageError(f"postgres.role: {role!r} is a superuser that owns other databases "
                                 f"({', '.join(others[:3])}): it is not LiteLLM's alone; remove postgres.role so "
                                 "LiteLLM gets its own role 'litellm'")
            if not self.vault.dry_run:
                conn.execute(sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(sql.Identifier(role)))
            self.report.add(SERVICE, f"role {role}", UPDATED, "attributes")
        if password and self._can_log_in(role, password):
            self.report.add(SERVICE, f"role {role} password", UNCHANGED, "matches DATABASE_URL in sops")
            if self.vault.get("DATABASE_URL") != database_url(self.site, password):
                self.vault.remember("DATABASE_URL", database_url(self.site, password))
                self.report.add(SERVICE, "sops DATABASE_URL", UPDATED, "in-cluster host, port or database")
            return
        # No usable password on record (the role predates us, or sops was lost): set a new one, sops first.
        password = password or new_password()
        self.vault.remember("DATABASE_URL", database_url(self.site, password))
        if not self.vault.dry_run:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                                     sql.Literal(scram_verifier(password))))
        self.report.add(SERVICE, f"role {role} password", UPDATED, "set to the one in sops")

    def _can_log_in(self, role: str, password: str) -> bool:
        """A login with the stored password (a read, not a write)."""
        for dbname in (self.site.postgres.database, self.admin_db):
            try:
                with psycopg.connect(**{**self.conninfo, "user": role, "password": password}, dbname=dbname) as conn:
                    conn.execute("SELECT 1")
                return True
            except psycopg.OperationalError as exc:
                text = str(exc)
                if "password authentication failed" in text or f'role "{role}" does not exist' in text:
                    return False
                if "permission denied for database" in text:
                    return True  # the password was accepted; that database is simply closed to the role
                if f'database "{dbname}" does not exist' in text:
                    continue
                raise
        return False

    def _database(self, conn: psycopg.Connection, database: str, role: str) -> None:
        row = conn.execute("SELECT pg_get_userbyid(datdba), datacl IS NULL OR EXISTS ("
                           " SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT')"
                           " FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if row is None:
            if not self.vault.dry_run:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role)))
                conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
            self.report.add(SERVICE, f"database {database}", CREATED, f"owner {role}, CONNECT revoked from PUBLIC")
            return
        owner, public_connect = row
        if owner != role:
            if not self.vault.dry_run:
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(role)))
            self.report.add(SERVICE, f"database {database}", UPDATED, f"owner {owner} -> {role}")
        else:
            self.report.add(SERVICE, f"database {database}", UNCHANGED, f"owner {role}")
        if public_connect:
            if not self.vault.dry_run:
                conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
            self.report.add(SERVICE, f"database {database} PUBLIC connect", UPDATED, "revoked")
        else:
            self.report.add(SERVICE, f"database {database} PUBLIC connect", UNCHANGED, "revoked")

    def _schema(self, conn: psycopg.Connection, role: str) -> None:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
        usage = create = False
        if exists:  # a dry run on a database whose role is not made yet: nothing to ask
            usage, create = conn.execute("SELECT has_schema_privilege(%s, 'public', 'USAGE'), "
                                         "has_schema_privilege(%s, 'public', 'CREATE')", (role, role)).fetchone()
        if usage and create:
            self.report.add(SERVICE, "schema public", UNCHANGED, f"{role} may use and create")
            return
        if not self.vault.dry_run:
            conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        self.report.add(SERVICE, "schema public", UPDATED, f"granted usage and create to {role}")

    def _ownership(self, conn: psycopg.Connection, role: str) -> None:
        """Give the role every object of schema public it does not own (an adopted database's tables)."""
        foreign = conn.execute(FOREIGN_OBJECTS, {"role": role}).fetchall()
        if not foreign:
            return  # a database bootstrap made: every object is the role's already; nothing to report
        if not self.vault.dry_run:
            with conn.transaction():
                for kind, name, _owner in foreign:
                    conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
                        sql.SQL(kind), sql.SQL(name), sql.Identifier(role)))
        owners = ", ".join(sorted({owner for _, _, owner in foreign}))
        counts: dict[str, int] = {}
        for kind, _, _ in foreign:
            counts[kind.lower()] = counts.get(kind.lower(), 0) + 1
        kinds = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(counts.items()))
        self.report.add(SERVICE, f"objects in schema public of {self.site.postgres.database}", UPDATED,
                        f"owner {owners} -> {role}: {kinds}")


# Every object of schema public the role does not own, as (ALTER keyword, quoted name, owner). Sequences that
# belong to a column move with their table (ALTER on them alone is refused); indexes follow theirs; an
# extension's objects stay the extension's.
FOREIGN_OBJECTS = """
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
       c.oid::regclass::text, pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND c.relowner <> coalesce((SELECT oid FROM pg_roles WHERE rolname = %(role)s), 0)
  AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                       AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text, pg_get_userbyid(t.typowner)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' AND (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  AND t.typowner <> coalesce((SELECT oid FROM pg_roles WHERE rolname = %(role)s), 0)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
UNION ALL
SELECT 'ROUTINE', p.oid::regprocedure::text, pg_get_userbyid(p.proowner)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proowner <> coalesce((SELECT oid FROM pg_roles WHERE rolname = %(role)s), 0)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
