"""Profile this project's server (or, with ``--impl``, the relay or Burr's example) under the
benchmark's load with py-spy, and summarise where its CPU time goes per turn.

    python benchmarks/profile_server.py [--turns 200] [--tokens 50] [--concurrency 20] [--delay-ms 5]
    python benchmarks/profile_server.py --preload-turns 300 --turns 30 --concurrency 1   # long chat
    python benchmarks/profile_server.py --protocol ag-ui     # the turns through the AG-UI endpoint
    python benchmarks/profile_server.py --tool-call          # every turn with one tool round

Starts the fake OpenAI server and ``servers.py chatbot`` (as ``compare.py`` does), warms the
server up, attaches ``py-spy record --gil`` to it (only the thread holding the GIL is sampled,
so waiting threads and an idle event loop do not count), runs the load phase of
``loadgen.py``, and reads the server's CPU time around it. Each function's share of the
samples is turned into milliseconds of server CPU per turn (share x measured CPU / turns).
With ``--preload-turns N`` one conversation is first driven to N turns and the profiled turns
continue it (per-turn costs that grow with the history). With ``--protocol ag-ui|ai-sdk`` the
turns go through that endpoint of this project's server instead of the native one. With
``--tool-call`` every turn makes one tool call (the fake upstream calls ``calculator``, then
answers with the ``--tokens`` tokens), as ``compare.py``'s tool row does.

Prints: the CPU per turn, the costs grouped by area (each sample goes to the first area, in
the order listed, that has a frame on its stack), self time by package, the top functions by
inclusive and by self time, and writes the raw collapsed stacks (``--out``; flamegraph.pl or speedscope read them).
Needs py-spy (``pip install -r benchmarks/requirements.txt``), which must be allowed to
attach to a process (ptrace).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

AREAS: list[tuple[str, tuple[str, ...]]] = [
    # (name, substrings of "function (file)" frames); first match over the whole stack wins
    ("Burr tracker: LocalTrackingClient writing log.jsonl", ("burr/tracking/",)),
    ("Burr persister: AsyncSQLitePersister save/load (+aiosqlite)",
     ("burr/integrations/persisters/", "aiosqlite/")),
    ("tools: Toolbox.call and the tools (tools.py)", ("burr_streaming_chatbot/tools.py",)),
    ("openai SDK: request params transform (_transform.py)", ("openai/_utils/_transform.py",)),
    # (the reads of a body: the answer's, and the router call's one read, which is small)
    ("reading the answer's body: transport reads, EventDecoder, json (llm.py)",
     ("_answer_pieces", "_AnswerReader", "AsyncStreamIterator.__anext__", "Response.aiter_bytes")),
    ("openai SDK + HTTP client: requests, chunk parsing",
     ("openai/", "httpx/", "httpcore/", "httpx2/", "httpcore2/")),
    ("Burr step machinery: state copies, hooks, transitions", ("burr/core/", "burr/lifecycle/")),
    ("OpenTelemetry instrumentation (Burr's example)", ("opentelemetry/",)),
    ("wire encoders: encoders/ (+ ag_ui's models and encoder), and turn.follow under them",
     ("burr_streaming_chatbot/encoders/", "ag_ui/")),
    ("SSE encoding: FastAPI stream serialisation + memory streams",
     ("_serialize_sse_item", "format_sse_event", "_sse_producer_cm", "_sse_with_checkpoints",
      "_keepalive_inserter", "anyio/streams/memory.py")),
    ("this project's code (router, turns, conversations, events)", ("burr_streaming_chatbot/",)),
    ("FastAPI/Starlette request handling, validation", ("fastapi/", "starlette/", "pydantic")),
    ("uvicorn + h11 HTTP protocol", ("uvicorn/", "h11/")),
    ("asyncio event loop, sockets, everything else", ("",)),
]  # fmt: skip

ROOT_FRAMES = ("servers.py", "asyncio/", "uvicorn/server.py", "uvicorn/_compat.py", "threading.py")


def py_spy() -> Optional[str]:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def loadgen(server: harness.Process, args: argparse.Namespace, *extra: str) -> dict:
    command = [
        sys.executable, str(harness.BENCH_DIR / "loadgen.py"), "--url", server.url,
        "--pid", str(server.pid), "--tokens", str(args.tokens), "--delay-ms", str(args.delay_ms),
        *extra,
    ]  # fmt: skip
    if args.impl in harness.CHATBOTS:
        command += ["--expect-message", "--protocol", args.protocol]
    if args.tool_call:
        command += ["--expect-tool", harness.TOOL_CALL["name"]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def parse_collapsed(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    return samples


def short(frame: str) -> str:
    """``func (…/site-packages/pkg/mod.py)`` as ``pkg/mod.py:func``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3.", "benchmarks/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            if marker == "lib/python3.":
                where = "stdlib/" + where.split("/", 1)[1]
            break
    return f"{where}:{name}"


def package(frame: str) -> str:
    """The top-level package of a frame's file: ``openai``, ``burr``, ``stdlib``..."""
    where = frame.partition(" (")[2].rstrip(")")
    if "site-packages/" in where:
        return where.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "lib/python3." in where or where.startswith("<frozen"):
        return "stdlib"
    return Path(where).name or "?"


def summarise(samples: list[tuple[list[str], int]], cpu_ms_per_turn: float, top: int) -> None:
    total = sum(n for _, n in samples)
    if not total:
        print("no samples (did py-spy attach?)")
        return
    per = cpu_ms_per_turn / total  # ms of CPU per turn that one sample stands for
    areas: Counter = Counter()
    area_funcs: dict[str, Counter] = {}
    inclusive: Counter = Counter()
    own: Counter = Counter()
    packages: Counter = Counter()
    for frames, n in samples:
        packages[package(frames[-1])] += n
        for name, needles in AREAS:
            if any(needle in frame for frame in frames for needle in needles):
                areas[name] += n
                area_funcs.setdefault(name, Counter())[short(frames[-1])] += n
                break
        for frame in set(frames):
            inclusive[frame] += n
        own[short(frames[-1])] += n
    print(f"{total} samples; server CPU {cpu_ms_per_turn:.1f} ms per turn\n")
    print(f"{'ms/turn':>8} {'share':>6}  area (and its heaviest leaf functions)")
    for name, _ in AREAS:
        n = areas.get(name, 0)
        if not n:
            continue
        leaves = ", ".join(f"{f} {c * per:.2f}" for f, c in area_funcs[name].most_common(3))
        print(f"{n * per:>8.2f} {n / total:>6.1%}  {name}")
        print(f"{'':>17}{leaves}")
    print("\nself time by package (where the leaf frame is):")
    print("  " + ", ".join(f"{name} {n * per:.1f}" for name, n in packages.most_common(10)))
    print("\ntop functions by inclusive time (ms of CPU per turn):")
    shown = 0
    for frame, n in inclusive.most_common():
        if any(root in frame for root in ROOT_FRAMES) or n / total > 0.97:
            continue
        print(f"{n * per:>8.2f} {n / total:>6.1%}  {short(frame)}")
        shown += 1
        if shown >= top:
            break
    print("\ntop functions by self time (ms of CPU per turn):")
    for frame, n in own.most_common(top):
        print(f"{n * per:>8.2f} {n / total:>6.1%}  {frame}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=harness.IMPLEMENTATIONS, default="chatbot")
    parser.add_argument(
        "--protocol", choices=("native", "ag-ui", "ai-sdk"), default="native",
        help="this project's server: the endpoint the turns go through",
    )  # fmt: skip
    parser.add_argument(
        "--tool-call", action="store_true",
        help="this project's server, native protocol: every turn makes one tool call",
    )  # fmt: skip
    parser.add_argument(
        "--no-tools", action="store_true",
        help="this project's server with BURR_CHATBOT_TOOLS=false (no tools offered)",
    )  # fmt: skip
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument(
        "--preload-turns", type=int, default=0, help="drive one chat this far first"
    )
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, help="keep the collapsed stacks here")
    args = parser.parse_args(argv)
    if args.tool_call and (args.impl not in harness.CHATBOTS or args.protocol != "native"):
        parser.error("--tool-call: this project's server, native protocol only")
    if args.no_tools and (args.impl not in harness.CHATBOTS or args.tool_call):
        parser.error("--no-tools: this project's server, without --tool-call")
    if args.protocol != "native" and args.impl not in harness.CHATBOTS:
        parser.error(
            "--protocol ag-ui and ai-sdk: this project's server only (--impl chatbot or chatbot_pg)"
        )
    spy = py_spy()
    if spy is None:
        print(
            "py-spy is not installed: pip install -r benchmarks/requirements.txt", file=sys.stderr
        )
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    raw = args.out or tmp / "profile.txt"
    cluster, env = None, {}
    if args.impl == "chatbot_pg":  # a throwaway PostgreSQL server for the store
        cluster, reason = harness.start_postgres()
        if cluster is None:
            print(f"chatbot_pg: {reason}", file=sys.stderr)
            return 2
        env["BURR_CHATBOT_DATABASE_URL"] = cluster.create_database("bench_profile")
    if args.no_tools:
        env["BURR_CHATBOT_TOOLS"] = "false"
    fake = harness.fake_openai(args.tokens, args.delay_ms, log=tmp / "fake_openai.log")
    if args.tool_call:
        httpx.post(
            fake.url + "/_control", json={"tool_calls": [harness.TOOL_CALL]}
        ).raise_for_status()
    server = harness.start_server(
        args.impl, fake.url + "/v1", tmp / args.impl, log=tmp / "server.log", env=env
    )
    try:
        server.wait_ready()
        if args.preload_turns:
            n = str(args.preload_turns)
            loadgen(server, args, "--warmup", "3", "--single", "0", "--turns", n,
                    "--concurrency", "1", "--turns-per-conversation", n, "--tag", "long")  # fmt: skip
            load = ("--turns", str(args.turns), "--concurrency", "1", "--no-create",
                    "--turns-per-conversation", str(args.turns), "--tag", "long")  # fmt: skip
        else:
            loadgen(server, args, "--warmup", "5", "--single", "0", "--turns", "0")
            load = ("--turns", str(args.turns), "--concurrency", str(args.concurrency))
        recorder = subprocess.Popen(
            [spy, "record", "--pid", str(server.pid), "--gil", "--rate", str(args.rate),
             "--format", "raw", "--full-filenames", "--nolineno", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.0)  # let it attach
        if recorder.poll() is not None:
            print(f"py-spy could not attach:\n{recorder.stderr.read()}", file=sys.stderr)
            return 2
        result = loadgen(server, args, "--warmup", "0", "--single", "0", *load)["load"]
        recorder.send_signal(signal.SIGINT)
        recorder.wait(30)
    finally:
        server.stop()
        fake.stop()
        if cluster is not None:
            cluster.stop()
    turns = result["turns"]
    cpu_ms = result["server_cpu_s"] * 1000 / turns
    print(f"machine: {harness.machine_description()}")
    where = (
        f"continuing one conversation from turn {args.preload_turns + 1}"
        if args.preload_turns
        else (f"{args.concurrency} at a time")
    )
    print(
        f"profiled: {harness.LABELS[args.impl]}"
        f"{f' through {args.protocol}' if args.impl in harness.CHATBOTS else ''}, {turns} turns of {args.tokens} tokens, {where}, {args.delay_ms:g} ms between "
        f"upstream tokens{'; each turn with one tool call' if args.tool_call else ''}"
        f"{'; tools off' if args.no_tools else ''}; "
        f"{result['errors']} errors\n"
    )
    summarise(parse_collapsed(raw), cpu_ms, args.top)
    if args.out:
        print(f"\ncollapsed stacks: {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
