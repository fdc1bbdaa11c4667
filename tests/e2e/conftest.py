"""Servers the end-to-end modules share: one Keycloak, PostgreSQL and SeaweedFS for the whole session (each
module makes its own realm, database and bucket), started when the first module asks and stopped at the end."""

from __future__ import annotations

import pytest

from tests.servers import KeycloakServer, PostgresServer, SeaweedServer


@pytest.fixture(scope="session")
def service_trio(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("servers")
    with KeycloakServer(base / "kc") as kc, PostgresServer(base / "pg") as pg, SeaweedServer(base / "s3") as s3:
        yield kc, pg, s3
