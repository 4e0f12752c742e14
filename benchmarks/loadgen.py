"""The load generator: drives one server with chat turns and times every delta it receives.

Runs in its own process (``compare.py`` starts one per measurement) so its CPU never counts as
the server's. A turn is: ``POST /create/{project}/{app}`` (unless ``--no-create``), then the
prompt in the wire protocol of ``--protocol``, reading the event stream to its end:

* ``native`` (the default, every server): ``POST /response/{project}/{app}`` with
  ``{"prompt": ...}``; deltas are ``delta`` events, the turn ends with ``message``;
* ``ag-ui`` (this project only): ``POST /ag-ui/{project}`` with an AG-UI ``RunAgentInput``
  (``threadId``: the conversation); deltas are ``TEXT_MESSAGE_CONTENT`` events, the stream
  starts with ``RUN_STARTED`` and ends with ``RUN_FINISHED`` (``RUN_ERROR``: an error);
* ``ai-sdk`` (this project only): ``POST /ai-sdk/{project}`` with what the AI SDK's
  ``DefaultChatTransport`` sends (``id``: the conversation); deltas are ``text-delta`` chunks,
  the stream starts with ``start`` and ends with ``finish`` then ``data: [DONE]`` (``error``,
  ``abort``, ``data-burr-error``: an error).

Three phases, in order:

* warm-up: ``--warmup`` turns, one at a time, not reported;
* single: ``--single`` turns, one at a time: time to first delta with nothing else running;
* load: ``--turns`` turns, ``--concurrency`` at a time; the server's CPU time (utime + stime
  from ``/proc/<pid>/stat``) is read just before and just after this phase, and with
  ``--db-pid`` (a PostgreSQL postmaster) the CPU time of the database server's whole process
  tree too.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000 --pid 1234 --turns 200 \\
        --concurrency 20 --tokens 50

prints one JSON object: per phase the times to first delta (s), and for the load phase the
gaps between delta events (s), the per-token hold-back lower bounds (s, see
:func:`holdback_lower_bounds`), the number of delta events, errors with a few samples, and the
server's CPU seconds. A turn is an error when the HTTP status is not 200, the connection
fails, the stream carries an error event, the deltas do not join up to the fake's answer
(with ``--tokens``), or the turn's end did not come: with ``--expect-message``, no ``message``
event (native); always, for the other protocols, no ``RUN_FINISHED`` or no ``finish`` and
``[DONE]``, or events after them. With ``--expect-tool NAME`` (native), a turn must also have
made exactly one tool call, to ``NAME``, that ran (one ``tool_call`` and one ``tool_result``
event of that name, no ``tool_error``, ``tool_denied`` or ``tool_approval_request``): the
turns of ``compare.py``'s tool row, against a fake upstream that calls that tool.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import resource
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlsplit

import aiohttp

from burr_streaming_chatbot.sse import EventDecoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from harness import API, cpu_seconds, tree_cpu_seconds

try:  # the servers run on uvloop (uvicorn's default where it is installed); so does the load
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


@dataclass
class TurnRecord:
    ttfd: Optional[float] = None
    gaps: list[float] = field(default_factory=list)
    holdback: list[float] = field(default_factory=list)
    deltas: int = 0
    error: Optional[str] = None


def expected_text(tokens: int) -> str:
    """What the fake streams with ``--tokens N``: ``"Token0 token1 ... token<N-1>"``."""
    return "".join(f"Token{i}" if i == 0 else f" token{i}" for i in range(tokens))


_TOKEN = re.compile(r"[Tt]oken(\d+)")


def holdback_lower_bounds(arrivals: list[tuple[float, str]], delay_s: float) -> list[float]:
    """For every token of the fake's answer, a lower bound of how long the server held it back.

    The fake sends token ``k`` at least ``(k - j) * delay`` after token ``j``, so whatever the
    network and the fake's own timer drift, token ``j`` was held at least
    ``max over k >= j of ((k - j) * delay - (arrival_k - arrival_j))``; tokens that come
    coalesced in one event show up here. Seconds, one value per token (0 when nothing shows).
    """
    tokens: list[tuple[int, float]] = []
    for arrival, text in arrivals:
        tokens.extend((int(number), arrival) for number in _TOKEN.findall(text))
    bounds = [0.0] * len(tokens)
    best = float("-inf")  # max over k >= j of (k * delay - arrival_k)
    for j in range(len(tokens) - 1, -1, -1):
        k, arrival = tokens[j]
        best = max(best, k * delay_s - arrival)
        bounds[j] = max(0.0, best - (k * delay_s - arrival))
    return bounds


PROTOCOLS = ("native", "ag-ui", "ai-sdk")
"""The wire protocols a turn can be driven through (see the module's docstring)."""


TOOL_OUTCOMES = ("tool_result", "tool_error", "tool_denied", "tool_approval_request")
"""Native events that end a tool call's part of a turn (or halt the turn for a person)."""


class TurnReader:
    """Reads one turn's events (each SSE block's ``data``) in the native protocol: returns each
    delta's text, notes errors, the turn's end (``message``), and its tool calls: ``calls``,
    the name of each complete call (``tool_call``), ``outcomes``, ``(type, name)`` of each of
    :data:`TOOL_OUTCOMES`."""

    END = "message event"

    def __init__(self) -> None:
        self.error: Optional[str] = None
        self.ended = False
        self.calls: list[str] = []
        self.outcomes: list[tuple[str, str]] = []

    def read(self, data: Union[str, bytes]) -> Optional[str]:
        """The text of the delta in ``data``, or None when it is not a (non-empty) delta."""
        event = json.loads(data)
        kind = event.get("type")
        if kind == "delta":
            return event.get("value") or None  # Burr's example relays the empty role chunk
        if kind == "error":
            self.error = f"error event: {event.get('value')}"
        elif kind == "message":
            self.ended = True
        elif kind == "tool_call":
            self.calls.append(event["value"]["name"])
        elif kind in TOOL_OUTCOMES:
            self.outcomes.append((kind, event["value"]["name"]))
        return None

    def tool_error(self, expected: str) -> Optional[str]:
        """What is wrong with the turn's tool calls, when it should have made one call to
        ``expected`` that ran; None when it did."""
        if self.calls == [expected] and self.outcomes == [("tool_result", expected)]:
            return None
        return (
            f"expected one {expected} call that ran: calls {self.calls}, outcomes {self.outcomes}"
        )


class AgUiReader(TurnReader):
    """An AG-UI run: ``RUN_STARTED`` first, ``TEXT_MESSAGE_CONTENT`` deltas, ``RUN_FINISHED``
    last (``RUN_ERROR``: an error); anything after the end is an error."""

    END = "RUN_FINISHED event"

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    def read(self, data: Union[str, bytes]) -> Optional[str]:
        event = json.loads(data)
        kind = event.get("type")
        if self.ended:
            self.error = self.error or f"{kind} after RUN_FINISHED"
        elif not self.started and kind != "RUN_STARTED":
            self.error = self.error or f"first event {kind}, not RUN_STARTED"
        self.started = True
        if kind == "TEXT_MESSAGE_CONTENT":
            return event.get("delta") or None
        if kind == "RUN_ERROR":
            self.error = f"RUN_ERROR: {event.get('code')}: {event.get('message')}"
        elif kind == "RUN_FINISHED":
            self.ended = True
        return None


class AiSdkReader(TurnReader):
    """A UI message stream: ``start`` first, ``text-delta`` chunks of part ``text``, ``finish``
    then ``[DONE]`` last (``error``, ``abort`` or ``data-burr-error``: an error); anything
    after ``[DONE]`` is an error."""

    END = "finish chunk and [DONE]"

    def __init__(self) -> None:
        super().__init__()
        self.started = self.finished = False

    def read(self, data: Union[str, bytes]) -> Optional[str]:
        if self.ended:
            self.error = self.error or f"{data[:40]!r} after [DONE]"
            return None
        if data in ("[DONE]", b"[DONE]"):  # (EventDecoder's data is bytes)
            self.ended = self.finished
            if not self.finished:
                self.error = self.error or "[DONE] before finish"
            return None
        event = json.loads(data)
        kind = event.get("type")
        if not self.started and kind != "start":
            self.error = self.error or f"first chunk {kind}, not start"
        self.started = True
        if kind == "text-delta":
            if event.get("id") != "text":
                self.error = self.error or f"text-delta of part {event.get('id')!r}"
            return event.get("delta") or None
        if kind in ("error", "abort", "data-burr-error"):
            self.error = f"{kind} chunk: {event.get('errorText') or event.get('reason') or event.get('data')}"
        elif kind == "finish":
            self.finished = True
        return None


READERS = {"native": TurnReader, "ag-ui": AgUiReader, "ai-sdk": AiSdkReader}


def request_of(opts: Options, app_id: str, count: int) -> tuple[str, dict]:
    """The path (under the API) and JSON body that send the prompt of a conversation's turn
    ``count`` (0 for its first) in ``opts.protocol``."""
    if opts.protocol == "ag-ui":
        body = {
            "threadId": app_id,
            "runId": f"{app_id}-run{count}",
            "messages": [{"id": f"u{count}", "role": "user", "content": opts.prompt}],
        }
        return f"/ag-ui/{opts.project}", body
    if opts.protocol == "ai-sdk":
        body = {
            "id": app_id,
            "messages": [
                {
                    "id": f"u{count}",
                    "role": "user",
                    "parts": [{"type": "text", "text": opts.prompt}],
                }
            ],
            "trigger": "submit-message",
        }
        return f"/ai-sdk/{opts.project}", body
    query = f"?history_after={opts.history_after}" if opts.history_after else ""
    return f"/response/{opts.project}/{app_id}{query}", {"prompt": opts.prompt}


@dataclass
class Options:
    url: str
    project: str
    prompt: str
    create: bool
    tokens: int
    delay_s: float
    expect_message: bool
    tag: str
    turns_per_conversation: int
    history_after: int = 0
    """Sent as ``?history_after=`` (what the page sends: the messages it has, but the last two;
    native protocol only)."""
    protocol: str = "native"
    expect_tool: str = ""
    """A turn must make one call to this tool, which runs (native protocol; empty: no check)."""


async def one_turn(
    session: aiohttp.ClientSession, opts: Options, app_id: str, create: bool, count: int = 0
) -> TurnRecord:
    rec = TurnRecord()
    base = opts.url + API
    try:
        if create:
            async with session.post(f"{base}/create/{opts.project}/{app_id}") as created:
                await created.read()
                if created.status != 200:
                    rec.error = f"create: HTTP {created.status}"
                    return rec
        path, body = request_of(opts, app_id, count)
        reader = READERS[opts.protocol]()
        began = time.perf_counter()
        async with session.post(base + path, json=body) as response:
            if response.status != 200:
                text = await response.text()
                rec.error = f"response: HTTP {response.status} {text[:200]}"
                return rec
            decoder = EventDecoder()
            arrivals: list[tuple[float, str]] = []
            async for chunk in response.content.iter_any():
                now = time.perf_counter()
                for sse in decoder.feed(chunk):
                    text = reader.read(sse.data)
                    if text:
                        arrivals.append((now, text))
        rec.error = reader.error
        rec.deltas = len(arrivals)
        if arrivals:
            rec.ttfd = arrivals[0][0] - began
            rec.gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
            if opts.tokens:
                rec.holdback = holdback_lower_bounds(arrivals, opts.delay_s)
        text = "".join(value for _, value in arrivals)
        if rec.error is None and opts.tokens and text != expected_text(opts.tokens):
            rec.error = f"answer text differs: {len(text)} characters in {rec.deltas} deltas"
        expect_end = opts.expect_message or opts.protocol != "native"
        if rec.error is None and expect_end and not reader.ended:
            rec.error = f"no {reader.END}"
        if rec.error is None and opts.expect_tool:
            rec.error = reader.tool_error(opts.expect_tool)
    except Exception as exc:
        rec.error = f"{type(exc).__name__}: {exc}"
    return rec


def client_session(
    concurrency: int, timeout_s: float = 120.0, local_address: Optional[str] = None
) -> aiohttp.ClientSession:
    """The load's HTTP client: aiohttp, whose reads cost a fraction of httpx's, so that the
    load generator, on the same cores as the server, takes as little from it as it can.
    ``local_address``: the address its connections come from (see :func:`loopback_address`)."""
    return aiohttp.ClientSession(
        # As the page asks: event ids and keepalives (the other servers ignore the header).
        headers={"Accept": "text/event-stream"},
        connector=aiohttp.TCPConnector(
            limit=concurrency + 4,
            local_addr=(local_address, 0) if local_address else None,
        ),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_s, sock_connect=10.0),
    )


def loopback_address(index: int) -> str:
    """The source address of simulated client ``index``: 127.0.0.2, 127.0.0.3, ... (the server
    holds each address to its per-client limits, so each simulated client needs its own)."""
    number = index + 2
    return f"127.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (only then can a client pick its address)."""
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.")


async def run_phase(
    client: aiohttp.ClientSession, opts: Options, name: str, turns: int, concurrency: int
) -> list[TurnRecord]:
    """``turns`` turns, ``concurrency`` at a time; ``turns_per_conversation`` consecutive
    turns share a conversation (and run one after another)."""
    per = max(1, opts.turns_per_conversation)
    conversations = [
        (f"{opts.tag}-{name}-{i}", min(per, turns - i * per))
        for i in range((turns + per - 1) // per)
    ]
    queue: asyncio.Queue = asyncio.Queue()
    for item in conversations:
        queue.put_nowait(item)
    records: list[TurnRecord] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                app_id, count = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for k in range(count):
                records.append(
                    await one_turn(session, opts, app_id, create=opts.create and k == 0, count=k)
                )

    # Each worker is a client of its own, from its own loopback address (one session, so one
    # address, for them all when there is one worker or the server is elsewhere).
    workers = max(1, concurrency)
    own = workers > 1 and is_loopback(opts.url)
    sessions = [
        client_session(2, local_address=loopback_address(i)) if own else client
        for i in range(workers)
    ]

    # The records of a long load (tens of thousands of lists of floats) would make this
    # process's own full collections tens of milliseconds long, and deltas read after such a
    # pause look held back by the server. No automatic collection during a phase, one after.
    gc.disable()
    try:
        await asyncio.gather(*(worker(session) for session in sessions))
    finally:
        gc.enable()
        gc.collect()
        if own:
            for session in sessions:
                await session.close()
    return records


def summary(records: list[TurnRecord], with_gaps: bool) -> dict:
    errors = [r.error for r in records if r.error]
    out = {
        "turns": len(records),
        "errors": len(errors),
        "error_samples": errors[:3],
        "deltas": sum(r.deltas for r in records),
        "ttfd": [r.ttfd for r in records if r.ttfd is not None and r.error is None],
    }
    if with_gaps:
        out["gaps"] = [g for r in records if r.error is None for g in r.gaps]
        out["holdback"] = [h for r in records if r.error is None for h in r.holdback]
    return out


async def main_async(args: argparse.Namespace) -> dict:
    opts = Options(
        url=args.url.rstrip("/"),
        project=args.project,
        prompt=args.prompt,
        create=args.create,
        tokens=args.tokens,
        delay_s=args.delay_ms / 1000,
        expect_message=args.expect_message,
        tag=args.tag or f"bench-{uuid.uuid4().hex[:8]}",
        turns_per_conversation=args.turns_per_conversation,
        protocol=args.protocol,
        expect_tool=args.expect_tool,
    )
    result: dict = {}
    async with client_session(args.concurrency, args.timeout) as client:
        await run_phase(client, opts, "warmup", args.warmup, 1)
        result["single"] = summary(await run_phase(client, opts, "single", args.single, 1), False)
        db_before = tree_cpu_seconds(args.db_pid) if args.db_pid else None
        cpu_before = cpu_seconds(args.pid) if args.pid else None
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        records = await run_phase(client, opts, "load", args.turns, args.concurrency)
        wall = time.perf_counter() - began
        cpu_after = cpu_seconds(args.pid) if args.pid else None
        db_after = tree_cpu_seconds(args.db_pid) if args.db_pid else None
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        load = summary(records, True)
        load["wall_s"] = wall
        load["server_cpu_s"] = None if cpu_before is None else cpu_after - cpu_before
        load["db_cpu_s"] = None if db_before is None else db_after - db_before
        load["loadgen_cpu_s"] = (own_after.ru_utime + own_after.ru_stime) - (
            own_before.ru_utime + own_before.ru_stime
        )
        result["load"] = load
    return result


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, default=0, help="server pid whose CPU time to read")
    parser.add_argument(
        "--db-pid",
        type=int,
        default=0,
        help="database server (postmaster) pid: its tree's CPU time",
    )
    parser.add_argument("--project", default="bench_project")
    parser.add_argument("--prompt", default="What is Burr?")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--tokens", type=int, default=0, help="the fake's --tokens: checks the answer (0: any)"
    )
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the fake's --delay-ms")
    parser.add_argument("--turns-per-conversation", type=int, default=1)
    parser.add_argument("--no-create", dest="create", action="store_false")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="native",
        help="the wire protocol of the turns (ag-ui and ai-sdk: this project's server only)",
    )  # fmt: skip
    parser.add_argument(
        "--expect-message", action="store_true", help="native: a turn must end with message"
    )
    parser.add_argument(
        "--expect-tool", default="", metavar="NAME",
        help="native: a turn must make one call to this tool, which runs (see the module's doc)",
    )  # fmt: skip
    parser.add_argument("--tag", default="", help="prefix of the conversation ids")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.expect_tool and args.protocol != "native":
        parser.error("--expect-tool reads the native protocol's tool events only")
    return args


def main() -> None:
    args = parse_args()
    result = (uvloop.run if uvloop is not None else asyncio.run)(main_async(args))
    result["loadgen_pid"] = os.getpid()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
