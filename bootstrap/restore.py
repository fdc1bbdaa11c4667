"""`generator restore`: put a backup the migration Job took (render/backup.py) back into the site's database.

The backups are listed from the site's bucket with the site's own S3 keys (the ones the Job writes with);
the newest is taken unless ``--from KEY`` names one. The dump is read whole into memory, checked with
``pg_restore --list``, and restored into a new database beside the live one, in one transaction, every
object owned by the site's role. Only when that succeeded are names swapped: an existing database is
renamed ``<db>_before_restore_<UTC time>`` (kept, never dropped), the new one takes its name. Any failure
before the swap drops the new database and leaves everything else as it was; the command exits 2.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

import boto3
import psycopg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from psycopg import sql

from bootstrap import DEFAULT_TIMEOUT
from bootstrap.credentials import admin_login
from generator.errors import ExitCode, GeneratorError, ServiceError, UsageError
from generator.layout import Repo
from generator.loader import load_site
from generator.model import Site
from generator.output import Format, emit
from generator.secrets.store import SecretsFile
from generator.tools import pg_restore


class RestoreFailed(ServiceError):
    """Nothing was changed: a missing or unreadable backup (exit 2), a service that could not be reached (exit 3)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Backup:
    key: str
    size: int
    modified: str

    def line(self) -> str:
        return f"{self.key}  {self.size} bytes  {self.modified}"


class BackupBucket:
    """The site's backups in its bucket; every request bounded by the timeout, one attempt each."""

    def __init__(self, site: Site, values: dict[str, str], timeout: float) -> None:
        key_id, secret = values.get("S3_AWS_ACCESS_KEY_ID"), values.get("S3_AWS_SECRET_ACCESS_KEY")
        if not key_id or not secret:
            raise UsageError("S3_AWS_ACCESS_KEY_ID / S3_AWS_SECRET_ACCESS_KEY missing in the site's sops file; "
                             "run 'generator bootstrap --only bucket' first")
        settings = site.bootstrap.s3
        self.endpoint = (settings.endpoint or site.s3.endpoint).rstrip("/")
        self.bucket, self.prefix, self.timeout = site.s3.bucket, site.backup.prefix, timeout
        config = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"},
                        connect_timeout=timeout, read_timeout=timeout)
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name=site.s3.region, config=config,
                               verify=settings.ca_bundle or settings.verify_tls, aws_access_key_id=key_id,
                               aws_secret_access_key=secret)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def list(self) -> list[Backup]:
        """Newest first (the keys begin with their UTC time)."""
        found = self._call("ListObjectsV2", lambda: [
            Backup(o["Key"], o["Size"], o["LastModified"].strftime("%Y-%m-%d %H:%M:%S UTC"))
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for o in page.get("Contents", []) if o["Key"].endswith(".dump")])
        return sorted(found, key=lambda b: b.key, reverse=True)

    def read(self, key: str) -> bytes:
        return self._call("GetObject", lambda: self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def _call(self, what: str, action):  # noqa: ANN001, ANN202 - a thunk and its result
        try:
            return action()
        except EndpointConnectionError as exc:
            raise RestoreFailed(f"s3 at {self.endpoint}: unreachable ({type(exc).__name__}); nothing changed",
                                unreachable=True) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise RestoreFailed(f"s3 at {self.endpoint}: {what} failed: {error.get('Code')}: "
                                f"{error.get('Message', '')}; nothing changed") from exc
        except BotoCoreError as exc:
            raise RestoreFailed(f"s3 at {self.endpoint}: {what}: {type(exc).__name__} within {self.timeout:g} s; "
                                "nothing changed", unreachable=True) from exc


class Database:
    """The admin's side of the restore: which databases exist, who is connected, create, rename, drop."""

    def __init__(self, site: Site, values: dict[str, str], timeout: float) -> None:
        login, settings = admin_login("postgres", values), site.bootstrap.postgres
        self.connection = pg_restore.Connection(settings.host or site.postgres.host,
                                                settings.port or site.postgres.port, login.user, login.password,
                                                settings.sslmode, settings.ca_bundle, max(2, round(timeout)))
        self.admin_db, self.where = settings.admin_database, f"postgresql://{self.connection.host}:{self.connection.port}"

    def _connect(self) -> psycopg.Connection:
        c = self.connection
        bound = c.connect_timeout * 1000  # every statement and lock wait too: a held lock fails, never hangs
        options = dict(host=c.host, port=c.port, user=c.user, password=c.password, dbname=self.admin_db,
                       sslmode=c.sslmode, connect_timeout=c.connect_timeout, autocommit=True,
                       options=f"-c statement_timeout={bound * 4} -c lock_timeout={bound}")
        if c.sslrootcert:
            options["sslrootcert"] = c.sslrootcert
        try:
            return psycopg.connect(**options)
        except psycopg.OperationalError as exc:
            raise RestoreFailed(f"postgres at {self.where}: {_first_line(exc)}; nothing changed",
                                unreachable=exc.sqlstate is None) from exc

    def sessions(self, name: str) -> int | None:
        """Open sessions on ``name``; None when the database does not exist."""
        with self._connect() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                return None
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]

    def execute(self, *statements: sql.Composable, atomic: bool = False) -> None:
        """Run the statements; ``atomic``: in one transaction (the rename swap: both names move, or neither)."""
        with self._connect() as conn:
            try:
                if atomic:
                    with conn.transaction():
                        for statement in statements:
                            conn.execute(statement)
                else:
                    for statement in statements:
                        conn.execute(statement)
            except psycopg.Error as exc:
                raise RestoreFailed(f"postgres at {self.where}: {_first_line(exc)}") from exc


def run_restore(repo: Repo, site_name: str, *, key: str | None = None, dry_run: bool = False,
                timeout: float = DEFAULT_TIMEOUT, restore_timeout: float = 3600, out: TextIO = sys.stdout,
                output: Format = "table") -> int:
    """Restore the chosen backup (the newest, or ``key``). With ``output`` json or yaml, stdout holds the backups'
    rows (the one chosen marked) and the plan's lines go to stderr."""
    site = load_site(repo, site_name)
    if not site.backup_enabled:
        raise UsageError(f"site {site_name}: backups are off (backup.enabled, or cache.enabled: no bucket); "
                         "nothing to restore from")
    store = SecretsFile(repo, site_name)
    if not store.exists():
        raise UsageError(f"{store.rel}: missing; nothing to restore with")
    values = store.read()
    bucket = BackupBucket(site, values, timeout)
    backups = bucket.list()
    wanted = (key if key.startswith(bucket.prefix) else bucket.prefix + key) if key else None
    matches = [b for b in backups if b.key == wanted] if wanted else backups[:1]
    chosen = matches[0] if matches else None
    rows = [{"key": b.key, "size": b.size, "modified": b.modified, "chosen": b is chosen} for b in backups]
    emit(rows, output, lambda: "\n".join([f"backups in {bucket.where} (newest first):",
                                           *(f"  {b.line()}" for b in backups)]), out)
    out = out if output == "table" else sys.stderr  # the plan's lines: beside the table, or apart from the rows
    if not backups:
        raise RestoreFailed(f"no backup in {bucket.where}: nothing to restore; nothing changed")
    if chosen is None:
        raise RestoreFailed(f"--from {key}: no such backup in {bucket.where} (listed above); nothing changed")
    database, role = site.postgres.database, site.postgres.role
    db = Database(site, values, timeout)
    sessions = db.sessions(database)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept, staging = f"{database}_before_restore_{stamp}"[:63], f"{database}_restore_{stamp}"[:63]
    print(f"{'would restore' if dry_run else 'restore'}  s3://{bucket.bucket}/{chosen.key} into database {database}, "
          f"every object owned by {role}", file=out)
    if sessions is not None:
        print(f"{'would keep' if dry_run else 'keep'}     database {database} as {kept} (renamed, never dropped)",
              file=out)
    if dry_run:
        print("dry run: nothing changed", file=out)
        return 0
    if sessions:
        raise RestoreFailed(f"database {database} has {sessions} open session(s): stop LiteLLM first "
                            f"(kubectl -n {site.namespace} scale deploy/litellm --replicas=0); nothing changed")
    dump = bucket.read(chosen.key)
    try:
        entries = pg_restore.table_of_contents(dump)
    except pg_restore.DumpUnreadable as exc:
        raise RestoreFailed(f"s3://{bucket.bucket}/{chosen.key}: {exc}; nothing changed") from exc
    db.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(staging), sql.Identifier(role)),
               sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(staging)))
    try:
        pg_restore.restore(dump, db.connection, dbname=staging, role=role, timeout=restore_timeout)
    except (pg_restore.DumpUnreadable, GeneratorError) as exc:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(staging)))  # ours, made above
        raise RestoreFailed(f"s3://{bucket.bucket}/{chosen.key}: {exc}; nothing changed") from exc
    swap = []
    if sessions is not None:
        swap.append(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(database), sql.Identifier(kept)))
    swap.append(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(database)))
    try:
        db.execute(*swap, atomic=True)
    except RestoreFailed as exc:  # a session came back between the check and the swap, say
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(staging)))
        raise RestoreFailed(f"{exc}; the restored copy was dropped, nothing changed") from exc
    print(f"restored  {len(entries)} archive entries into database {database}"
          + (f"; the previous one is {kept}" if sessions is not None else ""), file=out)
    return 0


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
