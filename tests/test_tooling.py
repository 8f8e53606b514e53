"""The toolchain the project promises: ruff and mypy stay clean."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_lint_is_clean():
    """ruff finds nothing to complain about."""
    result = _run(sys.executable, "-m", "ruff", "check", "nfsvol", "testbed", "bench", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    """The code is formatted as ruff formats it."""
    result = _run(
        sys.executable, "-m", "ruff", "format", "--check", "nfsvol", "testbed", "bench", "tests"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean():
    """The package and the test bed type-check under mypy --strict."""
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
