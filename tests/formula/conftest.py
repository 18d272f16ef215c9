"""Fixtures: the test schema on each database (``engine`` comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from .helpers import World, seed_basic


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def db(engine):
    """(world, engine) with the tables created and the basic rows inserted."""
    w = World()
    w.create(engine)
    seed_basic(w)
    w.insert_all(engine)
    return w, engine
