"""What the ``GET /events`` watchers of one process cost while turns run elsewhere in the
project: on SQLite every turn of another process moves the project's change mark, and each
watched conversation of the project must then be looked at again.

    python benchmarks/busy_watchers.py [--conversations 200] [--seconds 10] [--every-ms 50]
        [--rounds 3] [--baseline-src DIR/src]

In one process, on a temporary SQLite project: store A (this process's) with its
``Watchers``, one tab (a ``follow`` consumer) on each of ``--conversations`` conversations;
store B (another process's, on the same file) starts and ends a turn in one other conversation
every ``--every-ms`` for ``--seconds``. Reports this process's CPU per turn made by B, minus
the same run with no tab open (B's own work), and the statements the watchers ran per pass
(``current_of`` calls and the conversations they read). With ``--baseline-src``, the same is
run again with that build on ``PYTHONPATH`` (in a subprocess), alternating, for ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


async def one_run(tabs: int, seconds: float, every_s: float) -> dict[str, Any]:
    """This process's CPU per turn of the other store, with ``tabs`` conversations watched."""
    from burr_streaming_chatbot.storage.sqlite import SQLiteStore
    from burr_streaming_chatbot.watch import Watchers

    project = "busy"
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as folder:
        here = SQLiteStore(Path(folder), "machine-a:1:x")
        there = SQLiteStore(Path(folder), "machine-b:2:y")
        await here.open()
        await there.open()
        watchers = Watchers(here)
        many = getattr(here, "current_of", None)  # (a build from before it reads one by one)
        calls: list[int] = []
        if many is not None:

            async def counted(project_id: str, app_ids: Any) -> Any:
                calls.append(len(app_ids))
                return await many(project_id, app_ids)

            here.current_of = counted  # type: ignore[method-assign]
        await there.acquire(project, "busy", "t0", lease_s=30)  # (the project's file)
        await there.finish(project, "busy", "t0", None)

        async def tab(app_id: str) -> None:
            async for _ in watchers.follow(project, app_id, app_id, keepalive_s=60):
                pass

        tasks = [asyncio.create_task(tab(f"c{i}")) for i in range(tabs)]
        for _ in range(1000):  # (at most 10 s for the tabs to be watched)
            if watchers.watching >= tabs:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)  # (first readings done)
        calls.clear()
        began, turns = time.process_time(), 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            token = f"t{turns + 1}"
            await there.acquire(project, "busy", token, lease_s=30)
            await asyncio.sleep(every_s / 2)
            await there.finish(project, "busy", token, None)
            await asyncio.sleep(every_s / 2)
            turns += 1
        cpu_ms = (time.process_time() - began) * 1000
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watchers.close()
        await here.aclose()
        await there.aclose()
    return {
        "turns": turns,
        "cpu_ms_per_turn": cpu_ms / turns,
        "batched_reads": len(calls),
        "conversations_per_read": statistics.mean(calls) if calls else None,
    }


async def measure(conversations: int, seconds: float, every_s: float) -> dict[str, Any]:
    """CPU ms of this process per turn of the other store, with and without the tabs."""
    alone = await one_run(0, seconds, every_s)
    tabs = await one_run(conversations, seconds, every_s)
    return {
        "cpu_ms_per_turn_alone": alone["cpu_ms_per_turn"],
        "cpu_ms_per_turn_tabs": tabs["cpu_ms_per_turn"],
        "watchers_cpu_ms_per_turn": tabs["cpu_ms_per_turn"] - alone["cpu_ms_per_turn"],
        "turns": tabs["turns"],
        "batched_reads": tabs["batched_reads"],
        "conversations_per_read": tabs["conversations_per_read"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--every-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # (a subprocess: one measurement, as JSON)
        print(
            json.dumps(asyncio.run(measure(args.conversations, args.seconds, args.every_ms / 1000)))
        )
        return 0
    builds = {"this tree": None}
    if args.baseline_src:
        builds["baseline"] = str(args.baseline_src.resolve())
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for round_ in range(args.rounds):
        order = list(builds.items())
        for name, path in order if round_ % 2 == 0 else order[::-1]:
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = path
            done = subprocess.run(
                [sys.executable, __file__, "--one", "--conversations", str(args.conversations),
                 "--seconds", str(args.seconds), "--every-ms", str(args.every_ms)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"{args.conversations} conversations watched, a tab each; another store starts and "
        f"ends a turn every {args.every_ms:g} ms for {args.seconds:g} s"
    )
    for name, runs in rows.items():
        for run in runs:
            print(
                f"  {name:10} watchers {run['watchers_cpu_ms_per_turn']:6.2f} ms CPU per turn "
                f"(with tabs {run['cpu_ms_per_turn_tabs']:.2f}, alone "
                f"{run['cpu_ms_per_turn_alone']:.2f}); batched reads: "
                f"{run.get('batched_reads', '-')}, conversations each: "
                f"{run.get('conversations_per_read') or '-'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
