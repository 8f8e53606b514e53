"""Fixtures shared by every tier."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _root_required() -> None:
    """Mount tests need root, as nfsvol itself does; say so instead of skipping."""
    if os.geteuid() != 0:
        pytest.fail("the nfsvol test suite runs as root (it makes real mounts); use sudo")
