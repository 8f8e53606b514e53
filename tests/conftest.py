"""Fixtures shared by every tier."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _root_required() -> None:
    """Mount tests need root, as nfsvol itself does; say so instead of skipping."""
    if os.geteuid() != 0:
        pytest.fail("the nfsvol test suite runs as root (it makes real mounts); use sudo")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--drill-rounds", type=int, default=1,
        help="run each test that takes `drill_round` this many times (to catch a rare race)",
    )  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "drill_round" in metafunc.fixturenames:
        rounds = metafunc.config.getoption("--drill-rounds")
        metafunc.parametrize("drill_round", range(1, rounds + 1))
