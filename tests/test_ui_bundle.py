"""The page's own checks, run from pytest so one command runs everything: Vitest, the check
that the TypeScript types match the server's OpenAPI schema, and the lint (ESLint, tsc)."""

import shutil
import subprocess
from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parent.parent / "ui_bundle"
NPM = shutil.which("npm")

pytestmark = [
    pytest.mark.e2e,  # npm runs the page's Vitest suite and type generation
    pytest.mark.skipif(NPM is None, reason="npm is not installed"),
]


@pytest.fixture(scope="module")
def node_modules() -> Path:
    # Installed when missing, or older than the lock file (a dependency was added since).
    installed = BUNDLE / "node_modules" / ".package-lock.json"
    if (
        not installed.is_file()
        or installed.stat().st_mtime < (BUNDLE / "package-lock.json").stat().st_mtime
    ):
        subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=BUNDLE, check=True)
    return BUNDLE / "node_modules"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([NPM, *args], cwd=BUNDLE, capture_output=True, text=True, timeout=600)


def test_vitest_suite_passes(node_modules: Path) -> None:
    result = run("test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_generated_types_match_the_openapi_schema(node_modules: Path) -> None:
    result = run("run", "check:types")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_lint_finds_nothing(node_modules: Path) -> None:
    """`npm run lint`: ESLint (typescript-eslint, React's hooks rules) with no error or warning,
    then the TypeScript build check."""
    result = run("run", "lint")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
