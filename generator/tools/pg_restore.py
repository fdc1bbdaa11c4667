"""pg_restore: read a custom-format dump (pg_dump --format=custom) from stdin, check it or restore it.

The connection travels in the child's environment (libpq's PG* variables, the password among them), never
in argv; the dump travels on stdin, never in a file. Its major version must be at least the dump's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from generator import proc
from generator.errors import GeneratorError, ToolMissing
from generator.tools import find

HINT = "install PostgreSQL's client programs (Debian: apt-get install postgresql-client), of the server's major version or newer"


class DumpUnreadable(GeneratorError):
    """pg_restore could not read or apply the dump."""


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    user: str
    password: str
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    connect_timeout: int = 10

    def env(self, dbname: str) -> dict[str, str]:
        env = proc.child_env({"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                              "PGPASSWORD": self.password, "PGDATABASE": dbname, "PGSSLMODE": self.sslmode,
                              "PGCONNECT_TIMEOUT": str(self.connect_timeout)},
                             drop=("PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGOPTIONS"))
        if self.sslrootcert:
            env["PGSSLROOTCERT"] = self.sslrootcert
        return env


def _binary() -> str:
    found = find("pg_restore")
    if found is None:
        raise ToolMissing("pg_restore", HINT)
    return str(found)


def table_of_contents(dump: bytes, *, timeout: float = 120) -> list[str]:
    """The dump's entries (``pg_restore --list``): a file that is no custom-format dump fails here."""
    result = proc.run([_binary(), "--list"], stdin=dump, check=False, timeout=timeout,
                      env=proc.child_env(drop=("PGPASSWORD",)))
    if result.returncode != 0:  # a damaged data block can end it without a word (zlib): say how it ended
        reason = _reason(result.err_text) if result.err_text.strip() else f"pg_restore --list exit {result.returncode}"
        raise DumpUnreadable(f"not a readable pg_dump archive ({reason})")
    return [line for line in result.text.splitlines() if line and not line.startswith(";")]


def restore(dump: bytes, connection: Connection, *, dbname: str, role: str, timeout: float) -> None:
    """Restore into ``dbname`` in one transaction, every object owned by ``role`` (the site's role)."""
    argv = [_binary(), f"--dbname={dbname}", "--no-owner", "--no-privileges", f"--role={role}", "--exit-on-error",
            "--single-transaction"]
    result = proc.run(argv, stdin=dump, env=connection.env(dbname), check=False, timeout=timeout)
    if result.returncode != 0:
        raise DumpUnreadable(f"pg_restore failed ({_reason(result.err_text)})")


def _reason(stderr: str) -> str:
    """pg_restore's own first error line, without its program prefix (it names no secret: libpq never echoes one)."""
    lines = [re.sub(r"^pg_restore: (error: )?", "", line).strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith(("detail:", "hint:", "warning:"))]
    return (errors or lines or ["no output"])[0][:300]
