"""Fixtures only; the shared helpers live in ``support.py`` (``from support import ...``)."""

from __future__ import annotations

import os
import stat

import pytest
from crafted import make_files
from support import simulate


@pytest.fixture(scope="session")
def sim():
    """The ``simulate`` helper as a fixture (tests may also import it from support)."""
    return simulate


@pytest.fixture(scope="session")
def crafted_files(tmp_path_factory):
    """The small real results files of ``crafted.make_files`` (one run, two shards, a sweep), made once for
    the session: the crafted-results, results-fuzz and resource-guard tests only read them (each writes
    its mutants and outputs in its own folder). Made read-only, so that a test writing there fails."""
    files = make_files(tmp_path_factory.mktemp("crafted-shared"))
    for f in [files["scn"], files["good"], files["sweep"], *files["shards"].iterdir()]:
        os.chmod(f, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return files
