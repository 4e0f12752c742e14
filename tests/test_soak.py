"""The soak benchmark, small, against two server processes sharing one store: on PostgreSQL (two
"machines", a throwaway server) and on SQLite (two processes of one machine). Its report must
show no lost, duplicated or interleaved user message, and it must exit 0 (its other checks:
no 409 for a prompt sent after the previous answer ended, reattached text joining up, memory
flat, nothing left streaming).

Then with double texts (``--double-text-rate``): a second prompt, or two, sent with
``if_busy=interrupt`` or ``enqueue`` while the first answer streams, on SQLite for each policy
and both policies mixed on PostgreSQL. Every accepted prompt and every answer must be in the
history once, in the order the turns started, interrupted answers marked and their streams
ended with ``stopped``, and no 5xx nor 409 but a fourth enqueued prompt's.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from postgres import SKIP_REASON, find_pg_bin

pytestmark = pytest.mark.e2e  # the soak script and its servers in subprocesses

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "benchmarks" / "soak.py"
SMALL = ("--conversations", "20", "--turns", "6", "--concurrency", "10", "--processes", "2")
CHECKS = {
    "lost": r"lost user messages: (\d+)",
    "duplicated": r"duplicated user messages: (\d+)",
    "interleaved": r"interleaved or out-of-order histories: (\d+)",
}


DOUBLE = ("--conversations", "6", "--turns", "6", "--double-text-rate", "0.5")


def run_soak(storage: Path, *args: str, timeout: float, expect_turns: bool = True) -> str:
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
    if expect_turns:
        assert accepted and int(accepted.group(1)) == 20 * 6, report
    assert "2 server process(es)" in done.stdout, report
    return report


def check_double_texts(report: str, policy: str) -> None:
    """The double texts happened, with the policy asked for, and broke no rule."""
    violations = re.search(r"double-text violations: (\d+)", report)
    assert violations and int(violations.group(1)) == 0, report
    doubles = re.search(r"double texts \(.*--if-busy (\w+)\): (\d+) turns", report)
    assert doubles and doubles.group(1) == policy and int(doubles.group(2)) > 0, report
    sent = {name: int(n) for name, n in re.findall(r"(interrupt|enqueue): sent (\d+)", report)}
    if policy in ("interrupt", "mixed"):
        assert sent["interrupt"] > 0, report
    if policy in ("enqueue", "mixed"):
        assert sent["enqueue"] > 0, report
    accepted = re.search(r"turns accepted (\d+)", report)
    assert accepted and int(accepted.group(1)) > 6 * 6, report  # (the second prompts too)


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


@pytest.mark.parametrize("policy", ["interrupt", "enqueue"])
def test_soak_double_texts_on_sqlite(tmp_path: Path, policy: str) -> None:
    report = run_soak(tmp_path, *DOUBLE, "--if-busy", policy, timeout=60, expect_turns=False)
    assert "on SQLite" in report
    check_double_texts(report, policy)


def test_soak_double_texts_mixed_on_postgres(tmp_path: Path) -> None:
    if find_pg_bin() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(SKIP_REASON + ", and CI=true: .ci/run should have installed it")
        pytest.skip(SKIP_REASON)
    report = run_soak(
        tmp_path, *DOUBLE, "--if-busy", "mixed", "--postgres", timeout=60, expect_turns=False
    )
    assert "on PostgreSQL" in report
    check_double_texts(report, "mixed")
