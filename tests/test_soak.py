"""The soak benchmark, small, against two server processes sharing one store: on PostgreSQL (two
"machines", a throwaway server) and on SQLite (two processes of one machine). Its report must
show no lost, duplicated or interleaved user message, and it must exit 0 (its other checks:
no 409 for a prompt sent after the previous answer ended, reattached text joining up, memory
flat, nothing left streaming).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from postgres import SKIP_REASON, find_pg_bin

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "benchmarks" / "soak.py"
SMALL = ("--conversations", "20", "--turns", "6", "--concurrency", "10", "--processes", "2")
CHECKS = {
    "lost": r"lost user messages: (\d+)",
    "duplicated": r"duplicated user messages: (\d+)",
    "interleaved": r"interleaved or out-of-order histories: (\d+)",
}


def run_soak(storage: Path, *args: str, timeout: float) -> str:
    """Run the soak; its report, after checking its exit code and the three counts."""
    done = subprocess.run(
        [sys.executable, str(SOAK), *SMALL, "--storage", str(storage), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"soak exited {done.returncode} (logs in {storage}):\n{report}"
    counts = {}
    for name, pattern in CHECKS.items():
        found = re.search(pattern, done.stdout)
        assert found, f"no {name!r} count in the report:\n{report}"
        counts[name] = int(found.group(1))
    assert counts == {"lost": 0, "duplicated": 0, "interleaved": 0}, report
    accepted = re.search(r"turns accepted (\d+)", done.stdout)
    assert accepted and int(accepted.group(1)) == 20 * 6, report
    assert "2 server process(es)" in done.stdout, report
    return report


def test_soak_two_processes_on_postgres(tmp_path: Path) -> None:
    if find_pg_bin() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(SKIP_REASON + ", and CI=true: .ci/run should have installed it")
        pytest.skip(SKIP_REASON)
    report = run_soak(tmp_path, "--postgres", timeout=120)
    assert "on PostgreSQL" in report


def test_soak_two_processes_on_sqlite(tmp_path: Path) -> None:
    report = run_soak(tmp_path, timeout=90)
    assert "on SQLite" in report
