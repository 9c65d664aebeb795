"""Shared fixtures of the sim tests: one headless PyBullet world and a private asset cache."""

from __future__ import annotations

import pytest

from sim.world import World, create


@pytest.fixture(scope="module")
def world() -> World:
    w = create(direct=True)
    yield w
    w.close()


@pytest.fixture(scope="session")
def asset_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("assets"))
