"""What the per-conversation lease costs: the store's ``acquire`` and ``finish``, timed on each
engine, opened as the server opens it.

    python benchmarks/lease.py                           # SQLite, and PostgreSQL when installed
    python benchmarks/lease.py --engine sqlite --cycles 2000
    python benchmarks/lease.py --engine postgres --database-url postgresql://user@host/db

A prompt is answered only once ``store.acquire`` has returned (``ChatService.start_turn``): that
round trip is all the lease puts before the first delta. The turn's ``finish`` (its last
events and the end of the lease, one transaction) runs when the answer has ended, before its
last event is sent. A server without leases would still read the conversation's stored
sequence id before the turn (``store.sequence_id``: the check of its cached state), which
``acquire`` returns as well; so the lease's net cost before the first delta is ``acquire``
minus that read. Per engine, two phases:

* **alone**: ``--cycles`` times, for a new conversation each time: the sequence-id read, then
  ``acquire``, the state's save after the ``prompt`` step (not the lease: the other store
  write a turn makes before its first delta, timed for comparison), ``finish`` (with a last
  batch of three events, as a turn's usually is), then ``acquire`` and ``finish`` again (the
  conversation's next turn: the lease row exists); then ``--cycles`` times ``acquire`` and
  ``finish`` alone, with this process's CPU time (all threads, user and system) read around
  them: the lease's CPU per turn in the server (on PostgreSQL, without the database's own);
* **with turns running**: ``--concurrency`` simulated turns at a time, each ``acquire``, then
  ``--turn-ms`` (0.8 to 1.2 times that, and their starts spread over the first turn) of
  answering, then ``finish``; meanwhile one publisher writes every running
  turn's new events in one ``publish`` every 50 ms, as the server's keeper does. What the
  store does at ``compare.py``'s default load (20 streams of 50 tokens 5 ms apart), with no
  other work in the process: the time an ``acquire`` waits behind the others' writes.

Prints median, p99 and max in milliseconds; ``--json PATH`` writes them (``-`` for stdout). With
``--engine postgres`` and no ``--database-url``, a throwaway PostgreSQL server is started
(``tests/postgres.py``) and removed at the end; the SQLite files go in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from burr.core import State
from harness import percentile

from burr_streaming_chatbot.settings import Settings
from burr_streaming_chatbot.storage.engines import open_store
from burr_streaming_chatbot.storage.interface import Batch
from burr_streaming_chatbot.turns import new_token
from burr_streaming_chatbot.wire import TurnEvent

try:  # as the servers (uvicorn runs on uvloop where it is installed)
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

PROJECT = "bench_lease"
LEASE_S = 30.0
LAST_BATCH = [
    TurnEvent("delta", "Token48"),
    TurnEvent("delta", " token49"),
    TurnEvent("message", '{"type":"message"}'),
]
"""Stand-ins for a turn's last unpublished events (what ``finish`` writes with the lease's end)."""
PUBLISH_S = 0.05
"""The server's default ``publish_interval_s``."""


def summarize(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": _round(percentile(ms, 50)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(max(ms, default=None)),
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content, "type": "text"}


async def alone(store: Any, cycles: int, tag: str) -> dict[str, Any]:
    timings: dict[str, list[float]] = {
        "read_sequence_id": [], "acquire_new": [], "lease_net_new": [], "save_after_prompt": [],
        "finish": [], "acquire_next": [], "finish_next": [],
    }  # fmt: skip
    clock = time.perf_counter
    persister = await store.persister(PROJECT)
    partition = store.partition_key(PROJECT)
    for i in range(cycles):
        app_id = f"{tag}-{i}"
        t0 = clock()
        await store.sequence_id(PROJECT, app_id)
        t1 = clock()
        token = new_token()
        lease = await store.acquire(PROJECT, app_id, token, LEASE_S)
        if lease is None:
            raise RuntimeError(f"{app_id}: the lease of a new conversation was refused")
        t2 = clock()
        # Not the lease: the turn's first save (after its `prompt` step), which also comes
        # before the first delta; what the engine costs there, for comparison.
        state = State(
            {"chat_history": [message("user", "What is Burr?")], "prompt": "What is Burr?"}
        )
        await persister.save(
            partition,
            app_id,
            0,
            "prompt",
            state,
            "completed",
            expected_sequence_id=lease.sequence_id,
        )
        t3 = clock()
        await store.finish(PROJECT, app_id, token, Batch(0, list(LAST_BATCH)))
        t4 = clock()
        token = new_token()
        if await store.acquire(PROJECT, app_id, token, LEASE_S) is None:
            raise RuntimeError(f"{app_id}: the lease of an idle conversation was refused")
        t5 = clock()
        await store.finish(PROJECT, app_id, token, Batch(0, list(LAST_BATCH)))
        t6 = clock()
        timings["read_sequence_id"].append(t1 - t0)
        timings["acquire_new"].append(t2 - t1)
        timings["lease_net_new"].append((t2 - t1) - (t1 - t0))
        timings["save_after_prompt"].append(t3 - t2)
        timings["finish"].append(t4 - t3)
        timings["acquire_next"].append(t5 - t4)
        timings["finish_next"].append(t6 - t5)
    return {name: summarize(values) for name, values in timings.items()}


async def cpu_per_lease(store: Any, cycles: int, tag: str) -> dict[str, Any]:
    """This process's CPU time (all threads: the event loop, aiosqlite's thread; user and
    system) per ``acquire`` + ``finish`` of a new conversation, one at a time. On PostgreSQL the
    database server's own CPU is not in it."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    for i in range(cycles):
        app_id, token = f"{tag}-{i}", new_token()
        if await store.acquire(PROJECT, app_id, token, LEASE_S) is None:
            raise RuntimeError(f"{app_id}: the lease of a new conversation was refused")
        await store.finish(PROJECT, app_id, token, Batch(0, list(LAST_BATCH)))
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "cycles": cycles,
        "cpu_ms_per_lease": round((user + system) * 1000 / max(1, cycles), 3),
        "system_ms_per_lease": round(system * 1000 / max(1, cycles), 3),
        "wall_ms_per_lease": round(wall * 1000 / max(1, cycles), 3),
    }


async def with_turns(
    store: Any, cycles: int, concurrency: int, turn_s: float, tag: str
) -> dict[str, Any]:
    """``cycles`` simulated turns, ``concurrency`` at a time, each holding its lease ``turn_s``
    while a publisher writes the running turns' events every 50 ms (see the description)."""
    acquire: list[float] = []
    finish: list[float] = []
    publish: list[float] = []
    live: dict[str, int] = {}  # token -> events published so far
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(cycles):
        queue.put_nowait(f"{tag}-{i}")
    writing = asyncio.Lock()  # as TurnRunner._writing: one event-log write at a time
    clock = time.perf_counter

    async def turn(number: int) -> None:
        # Spread out, as real turns are: the n-th starts n/concurrency of a turn late, and
        # answers last 0.8 to 1.2 times turn_s (all of them in step would make every acquire
        # wait behind the others).
        await asyncio.sleep(turn_s * number / max(1, concurrency))
        while True:
            try:
                app_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            token = new_token()
            t0 = clock()
            if await store.acquire(PROJECT, app_id, token, LEASE_S) is None:
                raise RuntimeError(f"{app_id}: the lease of a new conversation was refused")
            acquire.append(clock() - t0)
            live[token] = 0
            await asyncio.sleep(turn_s * random.uniform(0.8, 1.2))
            async with writing:
                first = live.pop(token)
                t0 = clock()
                await store.finish(PROJECT, app_id, token, Batch(first, list(LAST_BATCH)))
                finish.append(clock() - t0)

    async def publisher() -> None:
        while True:
            await asyncio.sleep(PUBLISH_S)
            async with writing:
                if not live:
                    continue
                # 50 ms of a 5 ms/token answer: 10 deltas per running turn
                batches = [
                    (
                        token,
                        Batch(first, [TurnEvent("delta", f" token{first + k}") for k in range(10)]),
                    )
                    for token, first in live.items()
                ]
                t0 = clock()
                await store.publish(PROJECT, batches)
                publish.append(clock() - t0)
                for token, batch in batches:
                    live[token] = batch.first + 10

    keeper = asyncio.get_running_loop().create_task(publisher())
    try:
        await asyncio.gather(*(turn(n) for n in range(max(1, concurrency))))
    finally:
        keeper.cancel()
        try:
            await keeper
        except asyncio.CancelledError:
            pass
    return {
        "acquire": summarize(acquire),
        "finish": summarize(finish),
        "publish": summarize(publish),
    }


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(settings)
    await store.open()
    try:
        tag = new_token()
        await alone(
            store, min(20, max(1, args.cycles)), f"warm-{tag}"
        )  # opens the files, fills the pool
        out: dict[str, Any] = {"alone": await alone(store, args.cycles, f"alone-{tag}")}
        out["cpu"] = await cpu_per_lease(store, args.cycles, f"cpu-{tag}")
        if args.concurrency > 0 and args.cycles > 0:
            # Unreported: as many turns at once as will run, so that PostgreSQL's pool holds the
            # connections a server under this load keeps open.
            await with_turns(store, args.concurrency * 2, args.concurrency, 0.05, f"warm2-{tag}")
            out["with_turns"] = await with_turns(
                store, args.cycles, args.concurrency, args.turn_ms / 1000, f"load-{tag}"
            )
        return out
    finally:
        await store.aclose()


def run(
    engine: str, args: argparse.Namespace, database_url: Optional[str], folder: Path
) -> dict[str, Any]:
    settings = Settings(
        storage_dir=folder / engine,
        database_url=database_url if engine == "postgres" else None,
    )
    runner = uvloop.run if uvloop is not None else asyncio.run
    return runner(measure(settings, args))


def print_report(results: dict[str, Any], args: argparse.Namespace) -> None:
    def cell(stat: Optional[dict[str, Any]]) -> str:
        if not stat or stat["p50_ms"] is None:
            return f"{'-':>24}"
        return f"{stat['p50_ms']:>8.2f}{stat['p99_ms']:>8.2f}{stat['max_ms']:>8.2f}"

    phases = f"lease round trips, ms: {args.cycles} new conversations one at a time"
    if args.concurrency > 0:
        phases += (
            f"; then {args.cycles} turns, {args.concurrency} at a time, about {args.turn_ms:g} ms "
            "each, their events published every 50 ms"
        )
    print(phases)
    print(f"{'':<36}{'p50':>8}{'p99':>8}{'max':>8}")
    for engine, result in results.items():
        if "skipped" in result:
            print(f"{engine}: skipped ({result['skipped']})")
            continue
        a = result["alone"]
        print(f"{engine}, alone")
        print(f"  {'read sequence id (no-lease server)':<34}{cell(a['read_sequence_id'])}")
        print(f"  {'acquire, new conversation':<34}{cell(a['acquire_new'])}")
        print(f"  {'acquire minus the read it replaces':<34}{cell(a['lease_net_new'])}")
        print(f"  {'(not the lease) save after prompt':<34}{cell(a['save_after_prompt'])}")
        print(f"  {'finish (last batch + end)':<34}{cell(a['finish'])}")
        print(f"  {'acquire, next turn':<34}{cell(a['acquire_next'])}")
        print(f"  {'finish, next turn':<34}{cell(a['finish_next'])}")
        c = result["cpu"]
        print(
            f"  CPU of this process per acquire + finish: {c['cpu_ms_per_lease']:.2f} ms "
            f"({c['system_ms_per_lease']:.2f} in the kernel; {c['wall_ms_per_lease']:.2f} ms elapsed)"
        )
        w = result.get("with_turns")
        if w:
            print(f"{engine}, with {args.concurrency} turns running")
            print(f"  {'acquire':<34}{cell(w['acquire'])}")
            print(f"  {'finish':<34}{cell(w['finish'])}")
            print(f"  {'publish (all running turns)':<34}{cell(w['publish'])}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--database-url", help="PostgreSQL database to use (default: a throwaway server)"
    )
    parser.add_argument("--cycles", type=int, default=500, help="leases per phase")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="turns at a time (0: skip that phase)"
    )
    parser.add_argument(
        "--turn-ms", type=float, default=250.0, help="how long a simulated turn holds its lease"
    )
    parser.add_argument("--json", help="write the results here (- for stdout, then no report)")
    args = parser.parse_args(argv)
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    folder = Path(tempfile.mkdtemp(prefix="bench-lease-"))
    cluster = None
    results: dict[str, Any] = {}
    try:
        for engine in engines:
            url = args.database_url
            if engine == "postgres" and not url:
                cluster, reason = harness.start_postgres()
                if cluster is None:
                    results[engine] = {"skipped": reason}
                    continue
                url = cluster.create_database("bench_lease")
            results[engine] = run(engine, args, url, folder)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    harness.report(results, args.json, lambda: print_report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
