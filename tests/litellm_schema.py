"""LiteLLM's database schema as LiteLLM 1.108.7 creates it: every migration of litellm-proxy-extras (the package the
image runs `prisma migrate deploy` from), applied in order to a database of a real PostgreSQL. TEST HARNESS ONLY."""

from __future__ import annotations

import psycopg

from tests.e2e.pod import VENV

MIGRATIONS = next((VENV / "lib").glob("python3*/site-packages/litellm_proxy_extras/migrations"))


def apply_migrations(dsn: str) -> int:
    """Apply every migration (each one's migration.sql, in name order, as Prisma does); the number applied."""
    applied = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in sorted(MIGRATIONS.glob("*/migration.sql")):
            conn.execute(path.read_text())  # several statements, no parameters: one simple query
            applied += 1
    return applied
