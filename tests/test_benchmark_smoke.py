"""The benchmark harness works: tiny runs of ``benchmarks/compare.py`` and
``benchmarks/long_conversation.py`` finish without errors and report every implementation.

They check the harness (processes start, the load runs, the report prints), never times.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
LABELS = ("bare relay", "relay, aiohttp", "Burr's example", "this project")


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
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"relay", "relay_aiohttp", "burr_example", "chatbot"}
    for impl, result in results.items():
        assert result["errors"] == 0, (impl, result["error_samples"])
        assert result["turns"] == 6, impl
        assert result["cpu_ms_per_turn"] is not None and result["cpu_ms_per_turn"] >= 0, impl
        assert result["ttfd_single_p50_ms"] is not None, impl
    rows = [line for line in done.stdout.splitlines() if line.startswith(LABELS)]
    for label in LABELS:
        # one row in the table and one in the ratios
        assert sum(row.startswith(label) for row in rows) == 2, (label, done.stdout)
    assert "issue 5 targets" in done.stdout


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
