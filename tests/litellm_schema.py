"""LiteLLM's real database schema, from its own migration SQL, applied the way Prisma applies it.

The migrations are the ``litellm-proxy-extras`` package's (0.4.110 for LiteLLM 1.108.7), read from the
LiteLLM venv the other harnesses use (``tests/pod_sandbox/image.py``). Prisma's schema engine, which
LiteLLM's own runner drives, is on no registry this project can use; what it does is read from
LiteLLM's source and reproduced here:

* the migrations run in directory-name order, each ``migration.sql`` sent whole as one simple query,
  so PostgreSQL runs its statements as one implicit transaction (the files that build an index
  CONCURRENTLY are single statements for that reason: their own comments say so);
* the ledger ``_prisma_migrations`` has the columns LiteLLM's ``migration_recovery.py`` creates when it
  baselines, a finished migration has ``applied_steps_count`` 1, empty ``logs`` and the sha256 of its
  file as ``checksum`` (``MigrationProgress.confirms_completion``), so LiteLLM's runner takes this
  database's history for its own;
* one migration at a time under Prisma's advisory lock (``PRISMA_ADVISORY_LOCK_KEY`` 72707369).
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from tests.pod_sandbox.image import VENV

PRISMA_ADVISORY_LOCK_KEY = 72707369
LEDGER = ("CREATE TABLE IF NOT EXISTS _prisma_migrations (id varchar(36) PRIMARY KEY NOT NULL, "
          "checksum varchar(64) NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, "
          "rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), "
          "applied_steps_count integer NOT NULL DEFAULT 0)")


def migrations_dir(venv: Path = VENV) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages/litellm_proxy_extras/migrations"))
    assert found, f"no litellm_proxy_extras migrations under {venv}: run scripts/install-servers.sh"
    return found[0]


def migrations(venv: Path = VENV) -> list[Path]:
    """Every migration directory, in the order Prisma applies them."""
    return sorted(p for p in migrations_dir(venv).iterdir() if (p / "migration.sql").is_file())


def apply_migrations(url: str, dirs: list[Path], timeout: int = 10) -> list[str]:
    """Apply the migrations not yet in the ledger, in order; the names applied."""
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True, connect_timeout=timeout) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK_KEY,))
        conn.execute(LEDGER)
        done = {row[0] for row in conn.execute(
            "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL")}
        for directory in dirs:
            if directory.name in done:
                continue
            script = (directory / "migration.sql").read_bytes()
            row_id = str(uuid.uuid4())
            conn.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)"
                         " VALUES (%s, %s, %s, now(), 0)", (row_id, hashlib.sha256(script).hexdigest(), directory.name))
            try:
                conn.execute(script.decode())  # no parameters: psycopg sends it as one simple query
            except psycopg.Error as exc:
                conn.execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (str(exc), row_id))
                raise AssertionError(f"migration {directory.name} failed: {exc}") from exc
            conn.execute("UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = %s",
                         (row_id,))
            applied.append(directory.name)
    return applied


def tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1")]


FOREIGN_KEYS = """
SELECT conrelid::regclass::text, confrelid::regclass::text,
       array(SELECT attname FROM unnest(conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute ON attrelid = conrelid AND attnum = n ORDER BY i),
       array(SELECT attname FROM unnest(confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute ON attrelid = confrelid AND attnum = n ORDER BY i)
FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY conname
"""


def seed_every_table(conn: psycopg.Connection, tag: str) -> dict[str, int]:
    """One row in every table, each required (or referenced) column given a value of its type, then every
    foreign key pointed at its parent's row, so the data is consistent (a superuser's session: the keys are
    checked by the restore that re-adds them, not while seeding). Returns the rows each table then holds."""
    keys = conn.execute(FOREIGN_KEYS).fetchall()
    referenced: dict[str, set[str]] = {}
    for _child, parent, _cols, parent_cols in keys:
        referenced.setdefault(parent, set()).update(parent_cols)
    conn.execute("SET session_replication_role = replica")
    try:
        for table in tables(conn):
            if table == "_prisma_migrations":
                continue
            columns = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typtype, a.atttypid, a.attndims > 0 "
                "OR t.typcategory = 'A' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
                "AND (a.attnotnull AND NOT a.atthasdef OR a.attnum = 1 OR a.attname = ANY(%s)) ORDER BY a.attnum",
                (sql.Identifier(table).as_string(conn), sorted(referenced.get(sql.Identifier(table).as_string(conn), ())))
            ).fetchall()
            names, values = [], []
            for name, type_name, typtype, type_oid, is_array in columns:
                names.append(sql.Identifier(name))
                values.append(sql.SQL("{}::{}").format(sql.Literal(_value(conn, tag, table, name, type_name, typtype,
                                                                           type_oid, is_array)), sql.SQL(type_name)))
            conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(names), sql.SQL(", ").join(values)))
        for child, parent, cols, parent_cols in keys:
            conn.execute(sql.SQL("UPDATE {} SET ({}) = (SELECT {} FROM {} LIMIT 1)").format(
                sql.SQL(child), sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(map(sql.Identifier, parent_cols)), sql.SQL(parent)))
    finally:
        conn.execute("SET session_replication_role = origin")
    return row_counts(conn)


def _value(conn: psycopg.Connection, tag: str, table: str, column: str, type_name: str, typtype: str,
           type_oid: int, is_array: bool) -> str:
    if is_array:
        return "{}"
    if typtype == "e":
        return conn.execute("SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder LIMIT 1",
                            (type_oid,)).fetchone()[0]
    if type_name.startswith(("timestamp", "date")):
        return "2026-01-02 03:04:05"
    if type_name in ("jsonb", "json"):
        return '{"seeded": true}'
    if type_name == "boolean":
        return "true"
    if type_name in ("integer", "bigint", "smallint", "double precision", "real") or type_name.startswith("numeric"):
        return "1"
    if type_name == "uuid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{table}/{column}"))
    if type_name == "bytea":
        return "\\x00"
    return f"{tag}-{table}-{column}"[:32] if "(" in type_name else f"{tag}-{table}-{column}"


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
            for t in tables(conn)}


def content_digest(conn: psycopg.Connection) -> dict[str, str]:
    """Each table's rows, as text, hashed in a stable order: equal digests, equal data."""
    return {t: conn.execute(sql.SQL("SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) "
                                    "FROM {} r").format(sql.Identifier(t))).fetchone()[0]
            for t in tables(conn)}
