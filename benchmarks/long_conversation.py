"""One long conversation: how the files grow per turn, how fast its history reads, and how fast
its next turn starts after a server restart.

    python benchmarks/long_conversation.py [--turns 1000] [--tokens 3] [--restarts 2]

Starts the fake OpenAI server (``--tokens`` tokens, no delay) and this project's server
(``servers.py chatbot``, Burr tracking on, files in a temporary directory), then drives one
conversation through ``--turns`` turns, one after another (or as many as fit in ``--budget-s``
seconds, so a slow server cannot make a default run take forever; the report says so). After every turn it records:

* tracking: the growth of the conversation's Burr tracking folder (``log.jsonl``);
* state rows: the bytes of the state rows the persister added (``length(state)`` of the new
  rows of the SQLite table), and the growth of the SQLite files (database + WAL; the WAL is
  reused after a checkpoint, so this one comes in steps);
* disk writes: ``write_bytes`` of ``/proc/<pid>/io``, what the kernel counted the server
  dirtying in the page cache (files only, not sockets);
* the time to first delta and the whole turn's time.

It prints those at turns 1, 10, 100, 500 and 1000 (the ones that exist). Then it reads the
history at the last turn (cached conversation), restarts the server ``--restarts`` times, and
after each restart (and one warm-up turn in another conversation) reads the history from
storage, runs the next turn (time to first delta of turn N+1, loaded from storage), a first
turn of a new conversation on the same server, and reads the history again (cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from loadgen import Options, client_session, one_turn

PROJECT = "long_project"
APP = "long-conversation"
REPORT_AT = (1, 10, 100, 500, 1000)


def write_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


class Storage:
    """What the server keeps for the long conversation, read from the outside."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tracking = root / PROJECT / APP
        self.last_sequence = -1
        self._db: Optional[sqlite3.Connection] = None

    def state_files(self) -> list[Path]:
        """Everything in the storage folder outside Burr's tracking folders (the SQLite files)."""
        return [p for p in self.root.iterdir() if p.is_file()] if self.root.exists() else []

    def state_file_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.state_files())

    def new_row_bytes(self) -> Optional[int]:
        """Bytes of the state rows added since the last call (None without that table)."""
        if self._db is None:
            dbs = [p for p in self.state_files() if p.name.endswith((".sqlite3", ".db", ".sqlite"))]
            if not dbs:
                return None
            self._db = sqlite3.connect(str(dbs[0]))
        try:
            row = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(CAST(state AS BLOB))), 0), MAX(sequence_id) "
                "FROM burr_state WHERE partition_key = '' AND app_id = ? AND sequence_id > ?",
                (APP, self.last_sequence),
            ).fetchone()
        except sqlite3.Error:
            return None
        if row[1] is not None:
            self.last_sequence = row[1]
        return row[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Driver:
    """A server process plus an async client for it."""

    def __init__(
        self, upstream: str, home: Path, log: Path, tokens: int, full_history: bool
    ) -> None:
        self.upstream = upstream
        self.home = home
        self.log = log
        self.tokens = tokens
        self.full_history = full_history
        self.server: Optional[harness.Process] = None
        self.client: Optional[aiohttp.ClientSession] = None

    async def start(self) -> None:
        self.server = harness.start_server("chatbot", self.upstream, self.home, log=self.log)
        await asyncio.to_thread(self.server.wait_ready)
        self.client = client_session(concurrency=4)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
            self.server = None

    def options(self, history_after: int = 0) -> Options:
        assert self.server is not None
        return Options(
            url=self.server.url,
            project=PROJECT,
            prompt="What is Burr?",
            create=False,
            tokens=self.tokens,
            delay_s=0.0,
            expect_message=True,
            tag="",
            turns_per_conversation=1,
            history_after=history_after,
        )

    async def turn(self, app_id: str = APP, done: int = 0) -> dict[str, Any]:
        """One turn of ``app_id``, which has ``done`` turns already; like the page, it asks for
        the history after the messages it has but the last two (unless ``full_history``)."""
        assert self.client is not None
        began = time.perf_counter()
        after = 0 if self.full_history else max(0, 2 * done - 2)
        record = await one_turn(self.client, self.options(after), app_id, create=False)
        if record.error:
            raise RuntimeError(f"turn in {app_id} failed: {record.error}")
        return {"ttfd": record.ttfd, "turn": time.perf_counter() - began}

    async def history(self) -> tuple[float, int, int]:
        """(seconds, response bytes, items) of ``GET /history``."""
        assert self.client is not None and self.server is not None
        began = time.perf_counter()
        url = f"{self.server.url}{harness.API}/history/{PROJECT}/{APP}"
        async with self.client.get(url) as response:
            body = await response.read()
            elapsed = time.perf_counter() - began
            response.raise_for_status()
        return elapsed, len(body), len(json.loads(body))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    fake = harness.fake_openai(args.tokens, 0.0, log=home / "fake_openai.log")
    driver = Driver(
        fake.url + "/v1", home / "chatbot", home / "chatbot.log", args.tokens, args.full_history
    )
    storage = Storage(home / "chatbot" / "burr")
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"turns": rows}
    began = time.perf_counter()
    try:
        await driver.start()
        await driver.turn("warm-up-0")
        storage.new_row_bytes()
        for n in range(1, args.turns + 1):
            log_before = dir_bytes(storage.tracking)
            files_before = storage.state_file_bytes()
            disk_before = write_bytes(driver.server.pid)
            timing = await driver.turn(done=n - 1)
            rows.append(
                {
                    "turn": n,
                    "ttfd_ms": timing["ttfd"] * 1000,
                    "turn_ms": timing["turn"] * 1000,
                    "tracking_bytes": dir_bytes(storage.tracking) - log_before,
                    "state_row_bytes": storage.new_row_bytes(),
                    "state_file_bytes": storage.state_file_bytes() - files_before,
                    "disk_write_bytes": write_bytes(driver.server.pid) - disk_before,
                }
            )
            if n % 100 == 0:
                print(f"  turn {n}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
            if args.budget_s and time.perf_counter() - began > args.budget_s and n < args.turns:
                out["stopped_early"] = n
                break
        out["drive_s"] = time.perf_counter() - began
        out["tracking_total_bytes"] = dir_bytes(storage.tracking)
        out["state_files_total_bytes"] = storage.state_file_bytes()
        out["history_cached"] = [await driver.history() for _ in range(5)]

        restarts = []
        for r in range(args.restarts):
            await driver.stop()
            await driver.start()
            await driver.turn(f"warm-up-{r + 1}")
            after: dict[str, Any] = {}
            after["history_stored"] = [await driver.history() for _ in range(3)]
            after["next_turn"] = await driver.turn(done=len(rows) + r)
            after["new_conversation_turn"] = await driver.turn(f"fresh-{r + 1}")
            after["history_cached"] = [await driver.history() for _ in range(3)]
            restarts.append(after)
        out["restarts"] = restarts
    finally:
        storage.close()
        await driver.stop()
        fake.stop()
    out["total_s"] = time.perf_counter() - began
    return out


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    rows = out["turns"]
    print()
    print(f"machine: {harness.machine_description()}")
    print(
        f"one conversation, {len(rows)} turns of {args.tokens} tokens (no upstream delay), "
        f"driven in {out['drive_s']:.0f} s; "
        + (
            "no history_after: each chat_history event carries the whole conversation"
            if args.full_history
            else "history_after as the page sends it: each chat_history event carries the last exchange"
        )
    )
    if out.get("stopped_early"):
        print(
            f"STOPPED EARLY at turn {out['stopped_early']} of {args.turns}: the --budget-s of "
            f"{args.budget_s:g} s ran out (turns got that slow; --budget-s 0 runs them all)"
        )
    print()
    print(f"{'turn':>6}{'tracking':>12}{'state rows':>12}{'SQLite files':>14}{'disk writes':>13}"
          f"{'TTFD ms':>9}{'turn ms':>9}")  # fmt: skip
    print(f"{'':>6}{'bytes':>12}{'bytes':>12}{'bytes':>14}{'bytes':>13}{'':>9}{'':>9}")
    for row in rows:
        if row["turn"] in REPORT_AT or row["turn"] == len(rows):
            state = "-" if row["state_row_bytes"] is None else f"{row['state_row_bytes']:,}"
            print(
                f"{row['turn']:>6}{row['tracking_bytes']:>12,}{state:>12}"
                f"{row['state_file_bytes']:>14,}{row['disk_write_bytes']:>13,}"
                f"{row['ttfd_ms']:>9.1f}{row['turn_ms']:>9.1f}"
            )
    print(
        f"after {len(rows)} turns: tracking folder {out['tracking_total_bytes']:,} bytes, "
        f"SQLite files {out['state_files_total_bytes']:,} bytes"
    )
    if len(rows) >= 20:
        # Per-turn bytes grow linearly with the turn number (so the total with its square).
        tail = rows[len(rows) // 2 :]
        head = rows[: max(10, len(rows) // 10)]
        for key, name in (("tracking_bytes", "tracking"), ("state_row_bytes", "state rows")):
            if rows[0][key] is None:
                continue
            slope = (
                statistics.mean(r[key] for r in tail) - statistics.mean(r[key] for r in head)
            ) / (
                statistics.mean(r["turn"] for r in tail) - statistics.mean(r["turn"] for r in head)
            )
            print(f"  {name}: each turn writes about {slope:,.0f} bytes more than the one before")
    print()
    hist = out["history_cached"]
    print(
        f"history at turn {len(rows)} ({hist[0][2]} items, {hist[0][1]:,} bytes), server warm: "
        f"median {ms(statistics.median(h[0] for h in hist))} ms"
    )
    first = rows[0]
    for i, after in enumerate(out["restarts"], 1):
        stored = after["history_stored"]
        cached = after["history_cached"]
        print(
            f"after restart {i}: history from storage {', '.join(ms(h[0]) for h in stored)} ms; "
            f"cached {', '.join(ms(h[0]) for h in cached)} ms; TTFD of turn "
            f"{len(rows) + i} {ms(after['next_turn']['ttfd'])} ms (turn "
            f"{ms(after['next_turn']['turn'])} ms), of a new conversation's turn 1 "
            f"{ms(after['new_conversation_turn']['ttfd'])} ms"
        )
    if out["restarts"]:
        next_ttfd = statistics.median(a["next_turn"]["ttfd"] for a in out["restarts"]) * 1000
        fresh = (
            statistics.median(a["new_conversation_turn"]["ttfd"] for a in out["restarts"]) * 1000
        )
        history = min(h[0] for a in out["restarts"] for h in a["history_stored"][:1]) * 1000
        print()
        print("issue 5 targets:")
        print(
            f"  [{'met' if history <= 50 else 'MISSED'}] history of a {len(rows)}-turn conversation "
            f"<= 50 ms: first read after a restart {history:.1f} ms"
        )
        slower = next_ttfd - first["ttfd_ms"]
        print(
            f"  [{'met' if slower <= 20 else 'MISSED'}] first delta of turn {len(rows) + 1} after a "
            f"restart <= turn 1 + 20 ms: {next_ttfd:.1f} vs {first['ttfd_ms']:.1f} ms "
            f"({slower:+.1f}; a new conversation on the restarted server: {fresh:.1f} ms)"
        )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=3, help="tokens per answer")
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument(
        "--full-history",
        action="store_true",
        help="send no history_after, as Burr's example's page: every turn's chat_history "
        "event carries the whole conversation",
    )
    parser.add_argument(
        "--budget-s", type=float, default=150.0,
        help="stop driving turns after this many seconds (0: no limit)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every turn's numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the server's files")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="bench-long-"))
    try:
        out = asyncio.run(run(args, home))
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    report(out, args)
    print(f"\n(total {out['total_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
