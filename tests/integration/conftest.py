"""Fixtures shared by the integration tests that start real servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import KeycloakServer


@pytest.fixture(scope="session")
def keycloak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """ONE real Keycloak for the whole session (~15-20 s to start); tests isolate themselves by realm."""
    with KeycloakServer(tmp_path_factory.mktemp("keycloak")) as server:
        yield server
