"""Shared pieces of the streaming benchmarks: processes, CPU readings, statistics, the machine.

Every server runs as its own process on 127.0.0.1 and announces its port with a ``PORT=<n>``
line on stdout (the fake OpenAI server does the same), so nothing here races for ports.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import httpx

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FAKE_OPENAI = ROOT / "tests" / "fake_openai.py"
FAKE_UPSTREAM = BENCH_DIR / "fake_upstream.py"
"""Runs the fake with TCP_NODELAY (see that file for why)."""
API = "/api/v0/streaming_chatbot"
READY_PATH = "/_bench/ready"
"""A route every benchmark server has (see ``servers.py``): answers with the server's pid."""

sys.path.insert(0, str(ROOT / "tests"))
from processes import stop_process_group  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")

IMPLEMENTATIONS = ("relay", "relay_aiohttp", "burr_example", "chatbot", "chatbot_pg")
LABELS = {
    "relay": "bare relay",
    "relay_aiohttp": "relay, aiohttp",
    "burr_example": "Burr's example",
    "chatbot": "this project",
    "chatbot_pg": "this project, PG",
    "chatbot_base": "baseline build",
    "chatbot_base_pg": "baseline, PG",
    "chatbot_agui": "project, AG-UI",
    "chatbot_aisdk": "project, AI SDK",
    "chatbot_toolplain": "plain, same proc",
    "chatbot_tool": "tool turn",
    "chatbot_notools": "tools off",
}
"""(``chatbot_base``: this project's server from another source tree, ``compare.py
--baseline-src``; ``chatbot_base_pg``: the same on PostgreSQL, when ``chatbot_pg`` runs too; ``chatbot_agui``, ``chatbot_aisdk``: see ENCODER_ROWS; the last three: see
TOOL_ROWS; not in IMPLEMENTATIONS.)"""
ENCODER_ROWS = {"chatbot_agui": "ag-ui", "chatbot_aisdk": "ai-sdk"}
"""Rows of ``compare.py``: this project's server on SQLite (``servers.py chatbot``), driven
through another wire protocol than the native one (``loadgen.py --protocol``)."""
TOOL_ROWS = ("chatbot_toolplain", "chatbot_tool", "chatbot_notools")
"""Rows of ``compare.py``: this project's server on SQLite (``servers.py chatbot``) with tools.
``chatbot_tool``: every turn makes one tool call (its own fake upstream calls
:data:`TOOL_CALL`, then answers); ``chatbot_toolplain``: the same server process, its fake
making no call (plain turns, tools offered), in the same rounds; ``chatbot_notools``: a server
with ``BURR_CHATBOT_TOOLS=false`` (no tools offered)."""
TOOL_CALL = {"name": "calculator", "arguments": {"expression": "6*7"}}
"""The call the tool row's fake upstream makes in every turn's first answer."""
CHATBOTS = ("chatbot", "chatbot_pg")
"""This project's server: on SQLite (its default), and on PostgreSQL (``BURR_CHATBOT_DATABASE_URL``)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = _stat_fields(pid)
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def _stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rindex(b")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and all its descendants, including those that already exited
    (a reaped child's time is in its parent's ``cutime + cstime``): for PostgreSQL, whose
    postmaster forks a backend per connection and a few background workers.

    Read from ``/proc`` (fields 14 to 17 of proc(5) of every process in the tree); a process
    that ends while the tree is read is skipped."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    ticks = 0
    for pid in tree:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / CLK_TCK


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """The ``q``-th percentile (0-100) by the nearest-rank method; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def machine_description() -> str:
    """One line: cores, CPU model, Python version, date, and the load average when called
    (other processes on the machine show there)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, {datetime.date.today().isoformat()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )


class Process:
    """A child process that prints ``PORT=<n>``; its port, pid and a clean stop."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: Optional[dict[str, str]] = None,
        log: Optional[Path] = None,
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log
        self.process: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None

    def start(self) -> Process:
        """Start it and read its ``PORT=`` line (does not wait for readiness)."""
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        if self.log_path:
            stderr.close()
        return self

    def read_port(self, timeout: float = 60.0) -> int:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("PORT="):
                self.port = int(line.strip().split("=", 1)[1])
                return self.port
        raise RuntimeError(f"{self.name} did not print PORT= ({self.log_tail()})")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, path: str = READY_PATH, timeout: float = 90.0) -> None:
        """Poll ``path`` until it answers 200."""
        if self.port is None:
            self.read_port(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                if httpx.get(self.url + path, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} was not ready in {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return "(no log)"

    def stop(self) -> None:
        """SIGTERM (a graceful uvicorn shutdown), SIGKILL after 15 s."""
        if self.process is None:
            return
        stop_process_group(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fake_openai(tokens: int, delay_ms: float, log: Optional[Path] = None) -> Process:
    """The fake OpenAI-compatible server (``tests/fake_openai.py``, through
    ``fake_upstream.py``), started and ready.

    Router (non-streaming) calls always answer ``answer_question``: Burr's example wraps the
    user's words in a long instruction that itself mentions a poem, which the fake's keyword
    router would otherwise send to ``generate_poem``. Every implementation then streams the
    same ``tokens`` tokens.
    """
    command = [
        sys.executable,
        str(FAKE_UPSTREAM),
        "--port",
        "0",
        "--tokens",
        str(tokens),
        "--delay-ms",
        str(delay_ms),
        "--route",
        "answer_question",
    ]
    process = Process("fake_openai", command, log=log).start()
    process.read_port()
    process.wait_ready("/v1/models")
    return process


PASSED_THROUGH = ("BURR_CHATBOT_STREAM_FRAME_MS",)
"""Settings of the benchmark's environment that reach the servers (to measure them on and
off: ``BURR_CHATBOT_STREAM_FRAME_MS=0 python benchmarks/compare.py ...``); every other
``BURR_CHATBOT_`` variable is left out, so each server runs with the defaults."""


def server_env(
    impl: str, upstream_url: str, home: Path, extra: Optional[dict[str, str]] = None
) -> dict[str, str]:
    """The environment of one benchmark server: its own storage under ``home`` (plus
    ``extra``, such as ``BURR_CHATBOT_DATABASE_URL``)."""
    storage = home / "burr"
    storage.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if (not key.startswith(("OPENAI_", "BURR_CHATBOT_")) or key in PASSED_THROUGH)
        and key != "burr_path"
    }
    env.update(
        HOME=str(home),  # Burr's example writes to ~/.burr
        burr_path=str(storage),
        BURR_CHATBOT_STORAGE_DIR=str(storage),
        OPENAI_BASE_URL=upstream_url,
        OPENAI_API_KEY="sk-benchmark",
        PYTHONUNBUFFERED="1",
        # As the `burr-streaming-chatbot` command and `burr`'s startup hook run this project:
        # what was loaded at startup out of the collector's reach (servers.py does the same
        # for the other servers). Without it a full collection scans about 170,000 objects.
        BURR_CHATBOT_GC_FREEZE="1",
    )
    env.update(extra or {})
    return env


def start_server(
    impl: str,
    upstream_url: str,
    home: Path,
    log: Optional[Path] = None,
    prefix: Sequence[str] = (),
    env: Optional[dict[str, str]] = None,
    name: Optional[str] = None,
) -> Process:
    """Start ``servers.py <impl>`` (optionally under a ``prefix`` command such as a profiler;
    ``env``: variables added to :func:`server_env`'s)."""
    command = [*prefix, sys.executable, str(BENCH_DIR / "servers.py"), impl, "--port", "0"]
    return Process(
        name or impl, command, env=server_env(impl, upstream_url, home, env), log=log
    ).start()


def start_postgres() -> tuple[Optional[Any], str]:
    """A throwaway PostgreSQL server (``tests/postgres.py``: a fresh cluster in a temporary
    folder, on 127.0.0.1, ``fsync=off``), started; or None and the reason it cannot be.
    The caller stops it (``.stop()``); ``.create_database(name)`` gives a fresh database's URL."""
    from postgres import SKIP_REASON, PostgresCluster, PostgresError, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        return None, SKIP_REASON
    try:
        return PostgresCluster(bin_dir=bin_dir).start(), ""
    except (PostgresError, OSError, subprocess.SubprocessError) as exc:
        return None, f"PostgreSQL did not start: {str(exc).strip().splitlines()[0]}"


def postmaster_pid(cluster: Any) -> int:
    """The pid of a started cluster's postmaster (from ``postmaster.pid`` in its data folder)."""
    return int((cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def report(results: Any, json_path: Optional[str], print_report: Callable[[], None]) -> None:
    """A script's results: as JSON on stdout with ``--json -``; else the machine and the printed
    report, and the JSON in ``json_path`` when one is given."""
    if json_path == "-":
        json.dump(results, sys.stdout)
        sys.stdout.write("\n")
        return
    print(f"machine: {machine_description()}")
    print_report()
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))
