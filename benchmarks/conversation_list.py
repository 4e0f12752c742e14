"""The conversation list and search at scale: 10,000 conversations of 10 messages in one project,
then the first page of the list and full-text searches, timed on each engine.

    python benchmarks/conversation_list.py                     # both engines, 10,000 conversations
    python benchmarks/conversation_list.py --engine sqlite --conversations 500 --repeats 5

Each conversation is saved as the server saves one (``Store.save_state``: the state row and its
messages, in one transaction, which also writes the search index). Its messages are made of
words drawn from a vocabulary of 5,000 made-up words, plus marker words of known frequency:
``rareword`` in 1 conversation in 1,000, ``someword`` in 1 in 100 and ``oftenword`` in 1 in 3.
Every 20th conversation is renamed (a stored title).

The timings are the store's calls, what ``GET /conversations/{project}`` runs (``Store.find``;
HTTP adds about a millisecond): each query is run ``--repeats`` times after one unreported run.
Target: each answers within 50 ms (p95) on both engines. On PostgreSQL the tables are analyzed
after the load (autovacuum does the same within a minute of a bulk load; see RESULTS.md). With ``--engine postgres`` and no
``--database-url``, a throwaway PostgreSQL server is started (``tests/postgres.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
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
from burr_streaming_chatbot.storage.interface import Store
from burr_streaming_chatbot.storage.messages import HISTORY

PROJECT = "bench_list"
TARGET_MS = 50.0
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ba", "de", "fo", "gu", "pe", "zi"]
MARKERS = {"rareword": 1000, "someword": 100, "oftenword": 3}
"""Marker words and one conversation in how many holds each."""


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def conversation(number: int, words: list[str], rng: random.Random) -> list[dict[str, Any]]:
    """Ten messages, user and assistant in turn, of 8 to 40 words each."""
    markers = [word for word, every in MARKERS.items() if number % every == 0]
    history = []
    for index in range(10):
        text = rng.choices(words, k=rng.randint(8, 40))
        if index == 1 and markers:
            text += markers
        role = "user" if index % 2 == 0 else "assistant"
        history.append({"role": role, "content": " ".join(text), "type": "text"})
    return history


async def fill(store: Store, count: int, batch: int) -> float:
    """Save ``count`` conversations (``batch`` at a time); returns the seconds it took."""
    rng = random.Random(24)
    words = vocabulary(5000, rng)
    began = time.perf_counter()

    async def save(number: int) -> None:
        app_id = f"c{number:06d}"
        state = State({HISTORY: conversation(number, words, rng)})
        await store.save_state(PROJECT, app_id, 9, "prompt", state, expected_sequence_id=None)
        if number % 20 == 0:
            await store.rename(PROJECT, app_id, f"Renamed {words[number % len(words)]} notes")

    for start in range(0, count, batch):
        await asyncio.gather(*(save(n) for n in range(start, min(count, start + batch))))
    return time.perf_counter() - began


QUERIES: list[tuple[str, list[str], int]] = [
    ("list, first page of 200 (the page's)", [], 200),
    ("list, first page of 50", [], 50),
    ("search, a rare word (1 in 1,000)", ["rareword"], 50),
    ("search, a word in 1 in 100", ["someword"], 50),
    ("search, a word in 1 in 3", ["oftenword"], 50),
    ("search, two words, a prefix", ["someword", "often"], 50),
    ("search, a word of the titles", ["renamed"], 50),
    ("search, no match", ["nosuchword"], 50),
]


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(settings)
    await store.open()
    try:
        fill_s = await fill(store, args.conversations, 1 if settings.database_url is None else 16)
        if settings.database_url is not None:
            # What autovacuum does within a minute of a bulk load: fresh planner statistics
            # (without them, the search's plan was a nested loop: 918 ms at 5,000).
            async with store.pool.acquire() as conn:  # type: ignore[attr-defined]
                await conn.execute("ANALYZE")
        out: dict[str, Any] = {"conversations": args.conversations, "fill_s": round(fill_s, 1)}
        for label, words, limit in QUERIES:
            await store.find(PROJECT, words, limit)  # (unreported: warms the caches)
            times = []
            found = 0
            for _ in range(args.repeats):
                began = time.perf_counter()
                found = len(await store.find(PROJECT, words, limit))
                times.append((time.perf_counter() - began) * 1000)
            out[label] = {
                "found": found,
                "p50_ms": round(percentile(times, 50) or 0, 2),
                "p95_ms": round(percentile(times, 95) or 0, 2),
                "max_ms": round(max(times), 2),
            }
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
    return asyncio.run(measure(settings, args))


def print_report(results: dict[str, Any]) -> None:
    for engine, result in results.items():
        if "skipped" in result:
            print(f"{engine}: skipped ({result['skipped']})")
            continue
        print(
            f"{engine}: {result['conversations']} conversations of 10 messages "
            f"(saved in {result['fill_s']} s); ms"
        )
        print(f"  {'':<40}{'found':>6}{'p50':>8}{'p95':>8}{'max':>8}")
        for label, _, _ in QUERIES:
            row = result[label]
            verdict = "met" if row["p95_ms"] <= TARGET_MS else "MISSED"
            print(
                f"  {label:<40}{row['found']:>6}{row['p50_ms']:>8.2f}{row['p95_ms']:>8.2f}"
                f"{row['max_ms']:>8.2f}  [{verdict}]"
            )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--database-url", help="PostgreSQL database to use (default: a throwaway server)"
    )
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30, help="runs of each query")
    parser.add_argument("--json", help="write the results here (- for stdout, then no report)")
    args = parser.parse_args(argv)
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    folder = Path(tempfile.mkdtemp(prefix="bench-list-"))
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
                url = cluster.create_database("bench_list")
            results[engine] = run(engine, args, url, folder)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    harness.report(results, args.json, lambda: print_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
