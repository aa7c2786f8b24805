"""Fixtures only; the shared helpers live in ``support.py`` (``from support import ...``)."""

from __future__ import annotations

import pytest
from support import simulate


@pytest.fixture(scope="session")
def sim():
    """The ``simulate`` helper as a fixture (tests may also import it from support)."""
    return simulate
