"""The reliability drills' size switch (helpers shared by the drills live in ``_drills.py``).

Each drill runs at a CI size by default. For the full size, either pass
``--full-drills`` (honoured when pytest is pointed at this folder, e.g.
``pytest tests/reliability --full-drills``, since pytest only reads options from
conftests it loads at start-up) or set ``PROTOKIT_FULL_DRILLS=1``, which works
from any invocation (``pytest``, ``pytest tests``, ``.ci/run``).
"""

from __future__ import annotations

import os

import pytest

FULL_ENV = "PROTOKIT_FULL_DRILLS"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--full-drills``."""
    parser.addoption("--full-drills", action="store_true", default=False,
                     help=f"run the reliability drills at full size (or set {FULL_ENV}=1)")


@pytest.fixture(scope="session")
def full_drills(request: pytest.FixtureRequest) -> bool:
    """True when the drills should run at full size."""
    # getoption's default covers runs where this conftest was loaded too late to add the option.
    flag = bool(request.config.getoption("--full-drills", default=False))
    return flag or os.environ.get(FULL_ENV, "").strip().lower() in ("1", "true", "yes", "on")
