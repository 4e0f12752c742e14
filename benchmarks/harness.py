"""Shared pieces of the streaming benchmarks: processes, CPU readings, statistics, the machine.

Every server runs as its own process on 127.0.0.1 and announces its port with a ``PORT=<n>``
line on stdout (the fake OpenAI server does the same), so nothing here races for ports.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

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

IMPLEMENTATIONS = ("relay", "relay_aiohttp", "burr_example", "chatbot")
LABELS = {
    "relay": "bare relay",
    "relay_aiohttp": "relay, aiohttp",
    "burr_example": "Burr's example",
    "chatbot": "this project",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # The command name (field 2) may hold spaces; the fields after it are space-separated.
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


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

    def start(self) -> "Process":
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

    def __enter__(self) -> "Process":
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


def server_env(impl: str, upstream_url: str, home: Path) -> dict[str, str]:
    """The environment of one benchmark server: its own storage under ``home``."""
    storage = home / "burr"
    storage.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "BURR_CHATBOT_")) and key != "burr_path"
    }
    env.update(
        HOME=str(home),  # Burr's example writes to ~/.burr
        burr_path=str(storage),
        BURR_CHATBOT_STORAGE_DIR=str(storage),
        OPENAI_BASE_URL=upstream_url,
        OPENAI_API_KEY="sk-benchmark",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_server(
    impl: str, upstream_url: str, home: Path, log: Optional[Path] = None, prefix: Sequence[str] = ()
) -> Process:
    """Start ``servers.py <impl>`` (optionally under a ``prefix`` command such as a profiler)."""
    command = [*prefix, sys.executable, str(BENCH_DIR / "servers.py"), impl, "--port", "0"]
    return Process(impl, command, env=server_env(impl, upstream_url, home), log=log).start()
