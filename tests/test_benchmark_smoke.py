"""The benchmark harness works: tiny runs of ``benchmarks/compare.py`` (every server, PostgreSQL
too when installed, the two-process reattach and the lease round trips) and
``benchmarks/long_conversation.py`` finish without errors and report every implementation.

They check the harness (processes start, the load runs, the report prints), never times.
"""

import json
import subprocess
import sys
from pathlib import Path

from postgres import find_pg_bin

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))
from harness import LABELS  # noqa: E402  (the names the report prints)


def run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_compare_runs_every_implementation_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    done = run(
        "compare.py",
        "--turns", "6", "--tokens", "5", "--concurrency", "2", "--delay-ms", "1",
        "--single", "2", "--warmup", "1", "--json", str(out),
        "--reattach", "1", "--reattach-tokens", "10", "--reattach-delay-ms", "10",
        "--reattach-after", "2", "--lease-cycles", "10",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    results = report["results"]
    postgres = find_pg_bin() is not None
    engines = {"sqlite", "postgres"} if postgres else {"sqlite"}
    expected = {"relay", "relay_aiohttp", "burr_example", "chatbot"} | ({"chatbot_pg"} if postgres else set())
    assert set(results) == expected
    if not postgres:
        assert "this project, PG: skipped" in done.stdout
    for impl, result in results.items():
        assert result["errors"] == 0, (impl, result["error_samples"])
        assert result["turns"] == 6, impl
        assert result["cpu_ms_per_turn"] is not None and result["cpu_ms_per_turn"] >= 0, impl
        assert result["ttfd_single_p50_ms"] is not None, impl
    if postgres:
        assert results["chatbot_pg"]["db_cpu_ms_per_turn"] is not None
        assert "CPU per turn on PostgreSQL <= 1.2x SQLite" in done.stdout
    rows = [line[:16].rstrip() for line in done.stdout.splitlines()]
    for impl in expected:
        # one row in the table and one in the ratios
        assert rows.count(LABELS[impl]) == 2, (impl, done.stdout)
    assert "issue 5 targets" in done.stdout
    # two processes on one store, per engine: a reattach on the other process, and the lease
    assert set(report["reattach"]) == engines
    for engine, result in report["reattach"].items():
        assert result["errors"] == 0 and result["trials"] == 1, (engine, result)
        assert result["first_event_p50_ms"] is not None, engine
    assert set(report["lease"]) == engines
    for engine, result in report["lease"].items():
        assert result["alone"]["acquire_new"]["n"] == 10, engine
        assert result["with_turns"]["acquire"]["n"] == 10, engine
    assert "first replayed event <= 100 ms" in done.stdout
    assert "time to first delta added by the lease" in done.stdout


def test_long_conversation_runs_and_restarts(tmp_path: Path) -> None:
    out = tmp_path / "long.json"
    done = run("long_conversation.py", "--turns", "4", "--restarts", "1", "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [row["turn"] for row in result["turns"]] == [1, 2, 3, 4]
    assert all(row["tracking_bytes"] > 0 for row in result["turns"])
    assert result["history_cached"][0][2] == 8  # four prompts and four answers
    assert len(result["restarts"]) == 1
    assert "after restart 1" in done.stdout
