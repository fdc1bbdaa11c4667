"""One control plane per test session (about 10 s to start); tests isolate themselves by namespace and site."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.controlplane import ControlPlane


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path_factory.mktemp("control-plane")) as control_plane:
        print("control plane up:", ", ".join(f"{c.name} {c.startup_seconds:.1f}s" for c in control_plane.components))
        yield control_plane
