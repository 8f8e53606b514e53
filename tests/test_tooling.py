"""The toolchain the project promises: ruff and mypy stay clean."""

import ast
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


# One room per job (issue 25): a module or class past these has grown a second job.
MAX_MODULE_LINES = 400
MAX_CLASS_METHODS = 25


def _modules() -> dict[str, Path]:
    package = ROOT / "nfsvol"
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted(package.rglob("*.py"))
    }


def test_no_module_outgrows_one_job():
    """Every module of the package is at most MAX_MODULE_LINES lines long."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_MODULE_LINES} == {}


def test_no_class_outgrows_one_job():
    """Every class of the package has at most MAX_CLASS_METHODS methods."""
    big = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
                if len(methods) > MAX_CLASS_METHODS:
                    big[f"{name}.{node.name}"] = len(methods)
    assert big == {}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The package's own modules that `path` imports at its top level."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {n for n in [node.module, *names] if n in known}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
    return found


def test_no_import_cycles():
    """The package's modules import each other without a cycle."""
    modules = _modules()
    graph = {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}
    done: set[str] = set()

    def cycle_from(name: str, trail: list[str]) -> list[str]:
        if name in trail:
            return [*trail[trail.index(name) :], name]
        if name in done:
            return []
        for nxt in sorted(graph[name]):
            found = cycle_from(nxt, [*trail, name])
            if found:
                return found
        done.add(name)
        return []

    assert [c for c in (cycle_from(n, []) for n in sorted(graph)) if c] == []
