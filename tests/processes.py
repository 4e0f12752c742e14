"""Stopping the servers that the tests and the benchmarks start, each in a session of its own."""

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the process's group (``burr`` starts uvicorn as a child); SIGKILL if it
    has not exited 15 s later."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
