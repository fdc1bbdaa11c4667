from __future__ import annotations

from pathlib import Path

import pytest

from tests import egress
from tests.egress import EgressTrap
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """No test skips: setup installs whatever a test needs, so a skip can only hide a missing install step.
    A skip (pytest.skip, a skip mark, importorskip) is reported as a failure naming its reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and this suite allows no skip: {reason}"


@pytest.fixture(scope="session", autouse=True)
def egress_trap():
    """Every LiteLLM process the tests start sends its outbound HTTP(S) to this local trap (tests/egress.py):
    nothing leaves the machine, and what was attempted is printed at the end of the session."""
    with EgressTrap() as trap:
        egress.activate(trap)
        try:
            yield trap
        finally:
            egress.activate(None)
    if trap.seen():
        print(f"\negress refused: {', '.join(sorted(set(trap.seen())))}")
