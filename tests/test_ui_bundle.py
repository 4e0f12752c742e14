"""The page's own checks, run from pytest so one command runs everything: Vitest, and the
check that the TypeScript types match the server's OpenAPI schema."""

import shutil
import subprocess
from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parent.parent / "ui_bundle"
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(NPM is None, reason="npm is not installed")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if not (BUNDLE / "node_modules").is_dir():
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
