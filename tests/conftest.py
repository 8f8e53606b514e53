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


# Seconds spent per test module (setup, call and teardown), for the run's summary:
# CI has a time budget, and the slowest single steps do not show where it goes.
_module_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::")[0]
    _module_seconds[module] = _module_seconds.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _module_seconds:
        return
    tiers: dict[str, float] = {}
    for module, secs in _module_seconds.items():
        tier = "/".join(module.split("/")[:2]) if module.count("/") > 1 else module
        tiers[tier] = tiers.get(tier, 0.0) + secs
    terminalreporter.section("seconds per tier and per module")
    for tier, secs in sorted(tiers.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{secs:8.1f}s  {tier}")
    terminalreporter.write_line("")
    for module, secs in sorted(_module_seconds.items(), key=lambda kv: -kv[1])[:25]:
        terminalreporter.write_line(f"{secs:8.1f}s  {module}")
