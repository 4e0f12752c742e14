"""What open tabs cost while nothing happens: many ``GET /events`` streams held open on this
project's server, its CPU (and the database's) over a quiet window, and how long a turn's
start takes to reach the tabs; on SQLite and on PostgreSQL, against a baseline build in the
same run.

    python benchmarks/idle_tabs.py [--tabs 200] [--conversations 1 --conversations 20]
        [--measure-s 15] [--turns 10] [--rounds 3] [--baseline-src DIR/src] [--no-postgres]

Starts the fake OpenAI-compatible server, a throwaway PostgreSQL server (``tests/postgres.py``;
skipped with the reason printed when it is not installed) and, for each engine and each build
in turn (the order rotating from round to round), this project's server (``servers.py
chatbot`` or ``chatbot_pg``; the baseline build with ``PYTHONPATH`` at ``--baseline-src``).
Then, for each server:

1. the server's CPU with no tab open, over ``--floor-s`` (what it costs doing nothing);
2. for each ``--conversations`` value N: ``--tabs`` streams over N conversations (each answered
   once before, so it exists), opened from many loopback addresses (127.0.0.2, 127.0.0.3, …;
   ``--tabs-per-address`` each, under the per-client cap ``BURR_CHATBOT_MAX_STREAMS_PER_CLIENT``),
   left to settle for ``--settle-s``, then the server's CPU over ``--measure-s`` as % of one
   core (on PostgreSQL also the database server's, its whole process tree), read from
   ``/proc``; with N = 1, ``--turns`` turns in the conversation one after another, and for
   each the time from the prompt being sent to each tab reading ``turn_started`` (p50 over
   every tab and turn, and the slowest).

The tabs are asyncio sockets in this process; only the server's CPU (and the database's) is
measured.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

PROJECT = "idle_tabs"


class Tab:
    """One ``GET /events`` stream on a socket of its own, from loopback address ``source``;
    notes when each ``turn_started`` arrived."""

    def __init__(self, port: int, source: str, app_id: str) -> None:
        self.port = port
        self.source = source
        self.app_id = app_id
        self.started_at: list[float] = []
        self.opened = asyncio.Event()
        self.failed: Optional[str] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._writer: Optional[asyncio.StreamWriter] = None

    def open(self) -> None:
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, local_addr=(self.source, 0)
            )
            self._writer = writer
            writer.write(
                f"GET {harness.API}/events/{PROJECT}/{self.app_id} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            status = await reader.readline()
            if b" 200 " not in status:
                self.failed = status.decode(errors="replace").strip()
                return
            self.opened.set()
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                if b'"turn_started"' in chunk:
                    self.started_at.append(time.perf_counter())
        except OSError as exc:
            self.failed = repr(exc)
        finally:
            self.opened.set()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


def addresses(count: int) -> list[str]:
    """``count`` loopback source addresses, from 127.0.0.2."""
    return [f"127.0.{(n + 2) // 256}.{(n + 2) % 256}" for n in range(count)]


async def open_tabs(port: int, app_ids: list[str], tabs: int, per_address: int) -> list[Tab]:
    sources = addresses((tabs + per_address - 1) // per_address)
    opened = [Tab(port, sources[n // per_address], app_ids[n % len(app_ids)]) for n in range(tabs)]
    for n, tab in enumerate(opened):
        tab.open()
        if n % 20 == 19:
            await asyncio.sleep(0.05)  # (not all in one burst)
    await asyncio.wait_for(asyncio.gather(*(tab.opened.wait() for tab in opened)), 60)
    failed = [tab.failed for tab in opened if tab.failed]
    if failed:
        raise RuntimeError(f"{len(failed)} tabs failed to open, e.g. {failed[0]}")
    return opened


def cpu_window(server_pid: int, db_pid: int, seconds: float) -> dict[str, float]:
    """The server's (and the database's) CPU over ``seconds``, as % of one core."""
    began = time.perf_counter()
    server0 = harness.cpu_seconds(server_pid)
    db0 = harness.tree_cpu_seconds(db_pid) if db_pid else 0.0
    time.sleep(seconds)
    wall = time.perf_counter() - began
    result = {"server_pct": 100 * (harness.cpu_seconds(server_pid) - server0) / wall}
    if db_pid:
        result["db_pct"] = 100 * (harness.tree_cpu_seconds(db_pid) - db0) / wall
    return result


def turn(client: httpx.Client, app_id: str, prompt: str) -> None:
    """One turn, read to its end."""
    with client.stream(
        "POST", f"{harness.API}/response/{PROJECT}/{app_id}", json={"prompt": prompt}
    ) as response:
        response.raise_for_status()
        for _ in response.iter_bytes():
            pass


async def measure(server: harness.Process, db_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every phase on one started server (see the module's description)."""
    result: dict[str, Any] = {}
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        conversations = max(args.conversations)
        app_ids = [f"conversation-{n}" for n in range(conversations)]
        for app_id in app_ids:
            turn(client, app_id, "What is one?")
        await asyncio.sleep(1.0)
        result["floor"] = await asyncio.to_thread(cpu_window, server.pid, db_pid, args.floor_s)
        for count in args.conversations:
            tabs = await open_tabs(server.port, app_ids[:count], args.tabs, args.tabs_per_address)
            try:
                await asyncio.sleep(args.settle_s)
                profiler = start_profiler(server, args) if count == 1 else None
                row = await asyncio.to_thread(cpu_window, server.pid, db_pid, args.measure_s)
                if profiler is not None:
                    row["profile"] = await asyncio.to_thread(read_profile, *profiler)
                if count == 1 and args.turns:
                    row["reach_ms"] = await reach(client, tabs, app_ids[0], args.turns)
                result[f"tabs_{count}"] = row
            finally:
                await asyncio.gather(*(tab.close() for tab in tabs))
            await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(client.close)
    return result


def start_profiler(
    server: harness.Process, args: argparse.Namespace
) -> Optional[tuple[subprocess.Popen, Path]]:
    """py-spy recording the server over the measuring window (with ``--profile``)."""
    if not args.profile:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = Path(args.profile) / f"{server.name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy, "record", "--pid", str(server.pid), "--duration", str(int(args.measure_s))]
    command += ["--rate", "100", "--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def read_profile(process: subprocess.Popen, out: Path) -> dict[str, Any]:
    """The recorded samples: their count, and the functions most often running (self)."""
    process.wait(timeout=120)
    leaves: Counter[str] = Counter()
    for line in out.read_text().splitlines() if out.exists() else []:
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            leaves[stack.split(";")[-1]] += int(count)
    total = sum(leaves.values())
    return {"samples": total, "file": str(out), "top": leaves.most_common(12)}


async def reach(client: httpx.Client, tabs: list[Tab], app_id: str, turns: int) -> list[float]:
    """For each of ``turns`` turns, the time from its prompt being sent to each tab's
    ``turn_started``, in ms."""
    times: list[float] = []
    for n in range(turns):
        before = [len(tab.started_at) for tab in tabs]
        sent = time.perf_counter()
        await asyncio.to_thread(turn, client, app_id, f"What is {n}?")
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and any(  # noqa: ASYNC110  (this process's tabs)
            len(tab.started_at) == seen for tab, seen in zip(tabs, before, strict=True)
        ):
            await asyncio.sleep(0.01)
        for tab, seen in zip(tabs, before, strict=True):
            if len(tab.started_at) > seen:
                times.append((tab.started_at[seen] - sent) * 1000)
        await asyncio.sleep(0.3)
    return times


def print_profiles(results: dict[str, Any]) -> None:
    """Each profiled server's heaviest functions, as % of one core."""
    for r, measured in enumerate(results["rounds"]):
        for engine, builds in measured.items():
            for build, phases in builds.items():
                row = phases.get("tabs_1", {})
                profile = row.get("profile")
                if not profile or not profile["samples"]:
                    continue
                print(
                    f"\nprofile, round {r + 1}, {engine}, {build}: {profile['samples']} samples "
                    f"over {row['server_pct']:.2f}% of a core ({profile['file']})"
                )
                for frame, count in profile["top"]:
                    share = row["server_pct"] * count / profile["samples"]
                    print(f"  {share:6.2f}%  {frame[:110]}")


def print_report(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"machine at start: {results['machine_at_start']}")
    print(
        f"{args.tabs} tabs, {args.tabs_per_address} per address; CPU over {args.measure_s:g} s "
        f"as % of one core (median of {len(results['rounds'])} rounds; each round's in brackets)"
    )
    header = f"{'engine':8} {'build':9} {'phase':14} {'server %':>22} {'database %':>22} {'turn start reaches a tab, ms':>30}"
    print(header)
    for engine in results["engines"]:
        for build in results["builds"]:
            rows = [r[engine][build] for r in results["rounds"] if engine in r]
            if not rows:
                continue
            phases = ["floor"] + [f"tabs_{n}" for n in args.conversations]
            for phase in phases:
                server = [row[phase]["server_pct"] for row in rows if phase in row]
                db = [row[phase].get("db_pct") for row in rows if phase in row]
                reach_ms = [
                    t for row in rows if phase in row for t in row[phase].get("reach_ms", [])
                ]
                name = "no tab" if phase == "floor" else f"{phase[5:]} conv."
                cells = [
                    f"{statistics.median(server):5.2f} [{' '.join(f'{v:.2f}' for v in server)}]",
                    (
                        f"{statistics.median(db):5.2f} [{' '.join(f'{v:.2f}' for v in db)}]"
                        if db and db[0] is not None
                        else "-"
                    ),
                    (
                        f"p50 {harness.percentile(reach_ms, 50):6.1f}  max {max(reach_ms):6.1f}"
                        if reach_ms
                        else ""
                    ),
                ]
                print(
                    f"{engine:8} {build:9} {name:14} {cells[0]:>22} {cells[1]:>22} {cells[2]:>30}"
                )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=200, help="event streams open at once")
    parser.add_argument(
        "--conversations", type=int, action="append",
        help="spread the tabs over this many conversations (repeatable; default 1 and 20)",
    )  # fmt: skip
    parser.add_argument("--tabs-per-address", type=int, default=4, help="tabs per source address")
    parser.add_argument("--floor-s", type=float, default=10.0, help="CPU window with no tab")
    parser.add_argument("--settle-s", type=float, default=5.0, help="wait after opening the tabs")
    parser.add_argument("--measure-s", type=float, default=15.0, help="CPU window with the tabs")
    parser.add_argument("--turns", type=int, default=10, help="turns timed to the tabs")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, the order rotating")
    parser.add_argument(
        "--baseline-src", type=Path,
        help="also run the server from this source folder (the one holding burr_streaming_chatbot/)",
    )  # fmt: skip
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument("--profile", help="also record py-spy samples of each server here")
    parser.add_argument("--json", help="also write the results here ('-': only JSON on stdout)")
    args = parser.parse_args(argv)
    args.conversations = sorted(set(args.conversations or [1, 20]))
    builds = ["this", *(["baseline"] if args.baseline_src else [])]
    results: dict[str, Any] = {
        "machine_at_start": harness.machine_description(),
        "builds": builds,
        "engines": ["sqlite"],
        "rounds": [],
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-idle-tabs-"))
    cluster = None
    if args.postgres:
        cluster, reason = harness.start_postgres()
        if cluster is None:
            print(f"PostgreSQL skipped: {reason}", file=sys.stderr)
        else:
            results["engines"].append("postgres")
    fake = harness.fake_openai(5, 0, log=tmp / "fake_openai.log")
    try:
        plan = [(engine, build) for engine in results["engines"] for build in builds]
        for r in range(args.rounds):
            order = plan[r % len(plan) :] + plan[: r % len(plan)]
            measured: dict[str, dict[str, Any]] = {}
            for engine, build in order:
                env: dict[str, str] = {}
                if build == "baseline":
                    env["PYTHONPATH"] = str(args.baseline_src.resolve())
                db_pid = 0
                if engine == "postgres":
                    assert cluster is not None
                    env["BURR_CHATBOT_DATABASE_URL"] = cluster.create_database(f"idle_{build}_{r}")
                    db_pid = harness.postmaster_pid(cluster)
                name = f"{engine}-{build}-{r}"
                server = harness.start_server(
                    "chatbot_pg" if engine == "postgres" else "chatbot",
                    fake.url + "/v1", tmp / name, log=tmp / f"{name}.log", env=env, name=name,
                )  # fmt: skip
                try:
                    server.wait_ready()
                    measured.setdefault(engine, {})[build] = asyncio.run(
                        measure(server, db_pid, args)
                    )
                finally:
                    server.stop()
                print(f"  round {r + 1}/{args.rounds}: {engine}, {build} done", file=sys.stderr)
            results["rounds"].append(measured)
    finally:
        fake.stop()
        if cluster is not None:
            cluster.stop()
    harness.report(
        results, args.json, lambda: (print_report(results, args), print_profiles(results))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
