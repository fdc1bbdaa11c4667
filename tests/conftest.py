from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the committed repository's sites and rendered tree."""
    return copy_repo(tmp_path / "repo")


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    root = tmp_path / "bare"
    (root / "sites").mkdir(parents=True)
    return root
