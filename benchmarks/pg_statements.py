"""What this project's server asks PostgreSQL per turn: each statement's calls, rows and
time per turn (``pg_stat_statements``), and the CPU of the server and of the database.

    python benchmarks/pg_statements.py [--turns 100] [--concurrency 20] [--src DIR]

Starts a throwaway PostgreSQL server (``tests/postgres.py``) with ``pg_stat_statements``
loaded (``track = all``, utility statements such as ``BEGIN`` and ``COMMIT`` counted), the fake
OpenAI server and ``servers.py chatbot_pg`` (with ``--src DIR``: imported from that source
folder, e.g. a ``git archive`` of an older commit), warms the server up, resets the counters,
runs ``--turns`` turns (``loadgen.py``, each a new conversation) and prints, per turn: the
statements (normalised text, parameters as ``$n``) by calls, their rows and execution time in
the database, the total of calls (each a round trip, apart from the statements a function
runs inside the database) and the CPU per turn of the server process and of the database's
processes (and the database's by kind of process: its client backends, autovacuum, the WAL
writer...). ``--json PATH`` writes the rows too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

QUERY = """SELECT s.calls, s.rows, s.total_exec_time, s.query
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
           WHERE d.datname = '{database}' AND s.query NOT LIKE '%pg_stat_statements%'
           ORDER BY s.calls DESC, s.total_exec_time DESC"""


def start_cluster() -> Any:
    """A throwaway PostgreSQL server with ``pg_stat_statements`` preloaded."""
    cluster, reason = harness.start_postgres()
    if cluster is None:
        raise SystemExit(reason)
    cluster.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    cluster.pause()  # (a restart loads the library)
    cluster.resume()
    cluster.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
    cluster.psql("SELECT pg_reload_conf()")
    return cluster


def processes(postmaster: int) -> dict[int, tuple[str, float]]:
    """The database server's processes: pid -> (kind, CPU seconds so far); the postmaster's
    entry holds its own CPU plus that of its children that exited (``cutime + cstime``)."""
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            fields = harness._stat_fields(pid)
            if pid != postmaster and int(fields[1]) != postmaster:
                continue
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        ticks = sum(int(value) for value in fields[11:15])
        kind = "postmaster (and exited children)" if pid == postmaster else _kind(title)
        found[pid] = (kind, ticks / harness.CLK_TCK)
    return found


def _kind(title: str) -> str:
    """``postgres: walwriter`` -> walwriter; a backend's title -> client backend."""
    title = title.removeprefix("postgres: ").strip()
    if title.startswith(("autovacuum", "logical replication", "background writer")):
        return " ".join(title.split()[:3])
    if "(" in title or " idle" in title or "SELECT" in title or "INSERT" in title:
        return "client backends"
    return title.split()[0] if title else "?"


def cpu_by_kind(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds each kind of process used between two :func:`processes` snapshots."""
    used: dict[str, float] = {}
    for pid, (kind, cpu) in after.items():
        used[kind] = used.get(kind, 0.0) + cpu - before.get(pid, (kind, 0.0))[1]
    return used


def loadgen(server: harness.Process, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    command = [
        sys.executable, str(harness.BENCH_DIR / "loadgen.py"), "--url", server.url,
        "--pid", str(server.pid), "--tokens", str(args.tokens), "--delay-ms", str(args.delay_ms),
        "--expect-message", *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def statements(cluster: Any, database: str) -> list[dict[str, Any]]:
    out = cluster.psql(
        "SELECT json_agg(row_to_json(q)) FROM (" + QUERY.format(database=database) + ") q",
        database=database,
    )
    rows = json.loads(out.strip() or "null") or []
    return [
        {
            "calls": row["calls"],
            "rows": row["rows"],
            "ms": row["total_exec_time"],
            "query": re.sub(r"\s+", " ", row["query"]).strip(),
        }
        for row in rows
    ]


def print_report(result: dict[str, Any], width: int) -> None:
    turns = result["turns"]
    print(f"machine: {result['machine']}")
    print(
        f"{turns} turns, {result['concurrency']} at a time, {result['tokens']} tokens"
        f" ({result['build']})"
    )
    print(f"\n{'calls/turn':>10} {'rows/turn':>9} {'ms/turn':>8}  statement")
    for row in result["statements"]:
        query = row["query"]
        query = query if len(query) <= width else query[: width - 3] + "..."
        print(
            f"{row['calls'] / turns:10.2f} {row['rows'] / turns:9.2f} "
            f"{row['ms'] / turns:8.3f}  {query}"
        )
    calls = sum(row["calls"] for row in result["statements"])
    ms = sum(row["ms"] for row in result["statements"])
    print(f"{calls / turns:10.2f} {'':>9} {ms / turns:8.3f}  (all statements)")
    print(
        f"\nCPU per turn: server {result['server_cpu_ms_per_turn']:.2f} ms, database "
        f"{result['db_cpu_ms_per_turn']:.2f} ms ("
        + ", ".join(
            f"{kind} {ms:.2f}" for kind, ms in result["db_cpu_ms_per_turn_by_process"].items()
        )
        + ")"
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--src", type=Path, help="run the server from this source folder")
    parser.add_argument("--width", type=int, default=150, help="statement text cut at this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pgstat-"))
    cluster = start_cluster()
    server = fake = None
    try:
        database = "bench_statements"
        env = {"BURR_CHATBOT_DATABASE_URL": cluster.create_database(database)}
        cluster.psql("CREATE EXTENSION pg_stat_statements", database=database)
        if args.src:
            env["PYTHONPATH"] = str(args.src.resolve())
        fake = harness.fake_openai(args.tokens, args.delay_ms, log=tmp / "fake_openai.log")
        server = harness.start_server(
            "chatbot_pg", fake.url + "/v1", tmp / "server", log=tmp / "server.log", env=env
        )
        server.wait_ready()
        loadgen(server, args, "--warmup", "5", "--single", "0", "--turns", "0")
        cluster.psql("SELECT pg_stat_statements_reset()", database=database)
        postmaster = harness.postmaster_pid(cluster)
        before = processes(postmaster)
        load = loadgen(
            server, args, "--warmup", "0", "--single", "0", "--turns", str(args.turns),
            "--concurrency", str(args.concurrency), "--db-pid", str(harness.postmaster_pid(cluster)),
        )["load"]  # fmt: skip
        by_kind = cpu_by_kind(before, processes(postmaster))
        rows = statements(cluster, database)
    finally:
        if server is not None:
            server.stop()
        if fake is not None:
            fake.stop()
        cluster.stop()
    turns = load["turns"]
    result = {
        "machine": harness.machine_description(),
        "build": f"source {args.src}" if args.src else "this tree",
        "turns": turns,
        "concurrency": args.concurrency,
        "tokens": args.tokens,
        "server_cpu_ms_per_turn": load["server_cpu_s"] * 1000 / turns,
        "db_cpu_ms_per_turn": (load.get("db_cpu_s") or 0.0) * 1000 / turns,
        "db_cpu_ms_per_turn_by_process": {
            kind: cpu * 1000 / turns for kind, cpu in sorted(by_kind.items())
        },
        "statements": rows,
    }
    print_report(result, args.width)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
