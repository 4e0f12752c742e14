"""The Python checks: ruff (lint and format) on every Python folder (the package, the tests, the
benchmarks) and mypy on the package, with the configuration in pyproject.toml. (The front end's
ESLint and tsc run in test_ui_bundle.py.)"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # subprocesses

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "src/burr_streaming_chatbot"
PYTHON_FOLDERS = ("src", "tests", "benchmarks", "hatch_build.py")


def check(*command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (
        f"{' '.join(command)}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
    )


def test_ruff_finds_nothing() -> None:
    check("ruff", "check", *PYTHON_FOLDERS)


def test_ruff_format_changes_nothing() -> None:
    check("ruff", "format", "--check", "--diff", *PYTHON_FOLDERS)


def test_mypy_finds_nothing() -> None:
    check("mypy", PACKAGE)
