"""Soak: many conversations × many turns against one server or several sharing one store, with
random client disconnects and upstream faults; then checks that no user message was lost,
duplicated or out of place in any history, and that resident memory stayed flat after warm-up.

    python benchmarks/soak.py [--conversations 200] [--turns 20] [--concurrency 20]
    python benchmarks/soak.py --processes 2                 # two processes, one SQLite store
    python benchmarks/soak.py --processes 2 --postgres      # two "machines", throwaway PostgreSQL
    python benchmarks/soak.py --processes 2 --database-url postgresql://user@host/db
    python benchmarks/soak.py --double-text-rate 0.3 --if-busy interrupt   # or enqueue, mixed

Starts the fake OpenAI-compatible server (tests/fake_openai.py) and ``--processes`` chatbot
servers (``python -m burr_streaming_chatbot``) as separate processes on 127.0.0.1, with storage
in a temporary folder. On SQLite (the default) the servers share one storage folder: the
processes of one machine. On PostgreSQL (``--postgres`` starts a throwaway server with
tests/postgres.py and creates a database; ``--database-url`` uses an existing database, under a
project of its own) each server has its own storage folder and HOME and the worker name
``machine-<i>``: separate machines sharing only the database.

Each turn of a conversation goes to one of the servers (``--routing alternate``, the default:
each turn to the next server, so consecutive turns always change process; or ``random``). A
client that disconnected mid-answer then, sometimes, reattaches on another server (``GET
/stream`` with ``Last-Event-ID``; the text it had and the rest must join up to the answer) or
asks another server to stop the answer (``POST /stop``).

409 refusals are counted by how the conversation's previous turn ended. After its final event
(read on its own stream or on a reattach), after a stop request returned, or on a first turn,
the prompt must be accepted at once wherever it goes: the server ends the lease before it sends
the final event, and a stop waits for the end. Those 409s are failures (the turn is still
retried, so the run goes on). After a disconnect without a final event the turn may still be
winding down (up to the resume grace period): those 409s are expected and retried every 0.1 s.

Double texts (``--double-text-rate R``: that share of turns; ``--if-busy interrupt|enqueue|mixed``,
default mixed: each drawn): once the turn's stream has given 1 to 6 events, the client sends one
or two more prompts with that ``if_busy`` (to the next servers with ``--routing alternate``), or
in 1 of 8 such turns when ``enqueue`` is possible four enqueued prompts to one server, and reads
every stream to its end. The accepted prompts are recorded in the order their POSTs returned 200
(their turns started). Then, per conversation: each accepted prompt once in the history, in that
order; each answer once, as its stream ended (a ``message``'s text; after an ``error``, the text
streamed, marked ``interrupted``, or nothing if none streamed); each turn's ``chat_history``
equal to the history before its prompt (it started after the previous turn had ended); an answer
that ended ``stopped`` while its client listened had an ``interrupt`` prompt sent meanwhile; no
5xx; a 409 only for a fourth enqueued prompt while three others to that server were waiting.
Each broken rule is a violation, printed (the first 30); the first three conversations with one
are printed again with their history and what their client did.

The histories are read from the first server and compared with the prompts the servers accepted;
the other servers must return the same histories. A request with no response within 60 s is
counted (its prompt may or may not be in the history) and fails the run, as does memory growing
by 10% after warm-up in any server process.

Prints what it did and the checks (memory per server process), and the first findings with the
time they happened (to find them in the servers' logs, kept with ``--storage``); exits 1 if a
check fails.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

import httpx

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v0/streaming_chatbot"
FAULTS = ["auth", "rate_limit", "server_error", "drop", "malformed", "timeout"]
SETTLED = ("first", "final", "reattach", "stop", "refused")
"""How a previous turn ended when the next prompt must be accepted at once (see above)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_address(index: int) -> str:
    """The source address of simulated client ``index``: 127.0.0.2, 127.0.0.3, ..."""
    number = index + 2
    return f"127.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start_fake(tokens: int, delay_ms: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fake_openai.py"),
            "--port",
            "0",
            "--tokens",
            str(tokens),
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:  # type: ignore[union-attr]
        if line.startswith("PORT="):
            return process, f"http://127.0.0.1:{int(line.split('=')[1])}"
    raise RuntimeError("the fake did not start")


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str
    log_path: Path
    log: IO[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


def launch_server(
    fake_url: str, storage: Path, log_name: str, extra: dict[str, str]
) -> tuple[subprocess.Popen, str, Path, IO[bytes]]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BURR_CHATBOT_DATABASE_URL", "BURR_CHATBOT_WORKER_NAME")
    }
    env.update(
        {
            "OPENAI_BASE_URL": fake_url + "/v1",
            "OPENAI_API_KEY": "sk-soak",
            "BURR_CHATBOT_STORAGE_DIR": str(storage),
            "burr_path": str(storage),
            "BURR_CHATBOT_REQUEST_TIMEOUT_S": "1",
            "BURR_CHATBOT_MAX_RETRIES": "0",
            **extra,
        }
    )
    log_path = storage / log_name
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "burr_streaming_chatbot", "--no-open", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    return process, f"http://127.0.0.1:{port}", log_path, log


def wait_ready(server: Server, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server {server.name} exited; see {server.log_path}")
        try:
            if httpx.get(server.url + API + "/model", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server {server.name} did not start; see {server.log_path}")


def start_servers(
    fake_url: str, storage: Path, processes: int, database_url: Optional[str]
) -> list[Server]:
    """``processes`` servers: on SQLite sharing ``storage``; on PostgreSQL each in a folder (and
    HOME) of its own under it, named ``machine-<i>`` in leases."""
    servers: list[Server] = []
    try:
        for i in range(processes):
            name = f"machine-{i}" if database_url else f"process-{i}"
            extra: dict[str, str] = {}
            home = storage
            if database_url:
                home = storage / name
                home.mkdir(parents=True, exist_ok=True)
                extra["BURR_CHATBOT_DATABASE_URL"] = database_url
                extra["BURR_CHATBOT_WORKER_NAME"] = name
            if processes > 1 or database_url:
                extra["HOME"] = str(home)
            log_name = "server.log" if processes == 1 else f"server-{i}.log"
            process, url, log_path, log = launch_server(fake_url, home, log_name, extra)
            servers.append(Server(name, process, url, log_path, log))
        for server in servers:
            wait_ready(server)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


@dataclass
class Prompt:
    """A prompt sent with ``--double-text-rate``: how, where, and what its stream said."""

    app_id: str
    text: str
    policy: str  # if_busy: reject (not sent: the default), interrupt or enqueue
    server: int
    group: Optional[int] = None  # the turn of its double text; None for an ordinary turn
    sent_at: float = 0.0
    status: Optional[int] = None  # of the POST; None until it answered
    answered_at: Optional[float] = None  # when its status came
    position: Optional[int] = None  # where its turn started among the conversation's turns
    streaming_at_send: bool = False  # an earlier prompt of its double text was streaming
    history: Optional[list[dict[str, Any]]] = None  # its chat_history event
    texts: list[str] = field(default_factory=list)
    final: Optional[dict[str, Any]] = None  # its message or error event
    final_at: Optional[float] = None
    listened: bool = False  # read on its own stream from start to final event

    @property
    def streaming(self) -> bool:
        return self.position is not None and self.final_at is None and self.listened

    @property
    def stopped(self) -> bool:
        return (
            self.final is not None
            and self.final["type"] == "error"
            and self.final["value"]["code"] == "stopped"
        )


class Soak:
    def __init__(
        self, servers: list[Server], fake_url: str, project: str, args: argparse.Namespace
    ) -> None:
        self.servers = servers
        self.fake_url = fake_url
        self.project = project
        self.args = args
        self.random = random.Random(args.seed)
        self.sent: dict[str, list[str]] = {}  # prompts the server accepted, per conversation
        self.counts = {
            "turns": 0,
            "messages": 0,
            "errors": 0,
            "disconnects": 0,
            "refused": 0,
            "switched": 0,
            "unexpected_stops": 0,
        }
        self.refused: Counter = Counter()  # HTTP status of refused prompts
        self.error_codes: Counter = Counter()  # codes of error events on the turns' own streams
        self.conflicts: Counter = Counter()  # 409 responses, by how the previous turn ended
        self.conflicted_turns: Counter = Counter()  # turns that got at least one 409, likewise
        self.reattaches: Counter = Counter()
        self.stop_results: Counter = Counter()
        self.transport_errors: Counter = Counter()  # requests with no (complete) response
        self.uncertain: dict[str, set[str]] = {}  # prompts whose POST got no response
        self.findings: list[str] = []  # what went wrong, with the time, for the server logs
        self.done = 0
        # --double-text-rate: the accepted prompts of each conversation in the order their
        # turns started (the order of the 200s), what each conversation's client did, counts.
        self.double = args.double_text_rate > 0
        self.records: dict[str, list[Prompt]] = {}
        self.groups: dict[str, dict[int, list[Prompt]]] = {}  # every prompt of each double text
        self.logs: dict[str, list[str]] = {}
        self.doubles: Counter = Counter()
        self.double_409s: Counter = Counter()  # 409s of the second prompts, by policy and reason
        self.violations: Counter = Counter()
        self.violated: dict[str, list[str]] = {}  # conversation: what was wrong with it
        self.started = time.monotonic()

    def pick(self, index: int, turn: int) -> int:
        if self.args.routing == "random":
            return self.random.randrange(len(self.servers))
        return (index + turn) % len(self.servers)

    def other(self, target: int) -> int:
        """Another server than ``target`` (the same one when there is only one)."""
        if len(self.servers) == 1:
            return target
        return self.random.choice([i for i in range(len(self.servers)) if i != target])

    async def conversation(self, clients: list[httpx.AsyncClient], index: int) -> None:
        app_id = f"c{index:04d}"
        self.sent[app_id] = []
        self.records[app_id] = []
        self.groups[app_id] = {}
        self.logs[app_id] = []
        previous: Optional[int] = None
        ended = "first"
        for turn in range(self.args.turns):
            prompt = f"What is {app_id} turn {turn}?"
            target = self.pick(index, turn)
            disconnect = self.random.random() < self.args.disconnect_rate
            if self.random.random() < self.args.fault_rate:
                fault = self.random.choice(FAULTS)
                await clients[0].post(
                    self.fake_url + "/_control",
                    json={"fault": fault, "fault_count": 1, "hang_s": 3, "drop_after": 2},
                )
            if previous is not None and target != previous:
                self.counts["switched"] += 1
            if self.double and self.random.random() < self.args.double_text_rate:
                ended = await self.double_text(clients, target, index, turn, ended)
            else:
                ended = await self.turn(clients, target, app_id, prompt, disconnect, ended)
            previous = target
            self.done += 1

    async def read(
        self,
        response: httpx.Response,
        limit: Optional[int] = None,
        record: Optional["Prompt"] = None,
        ready: Optional[tuple[int, asyncio.Event]] = None,
    ) -> tuple[Optional[str], list[str], Optional[dict[str, Any]]]:
        """Read events (at most ``limit``): the id of the last one, the deltas' texts, and the
        final event (``message`` or ``error``) if it came. An event block is ``data: <json>``
        then ``id: <turn>.<index>``: an event counts once its id came (so ``Last-Event-ID``
        names the last event whose text is kept). With ``record``, its ``history`` gets the
        ``chat_history`` event's messages; with ``ready`` (n, event), the event is set once n
        events came."""
        last_id: Optional[str] = None
        texts: list[str] = []
        pending: Optional[dict[str, Any]] = None
        events = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                pending = json.loads(line[6:])
            elif line.startswith("id: ") and pending is not None:
                event, pending = pending, None
                last_id = line[4:]
                events += 1
                if ready is not None and events >= ready[0]:
                    ready[1].set()
                if event["type"] == "delta":
                    texts.append(event["value"])
                elif event["type"] in ("message", "error"):
                    return last_id, texts, event
                elif event["type"] == "chat_history" and record is not None:
                    record.history = event["value"]
                if limit is not None and events >= limit:
                    break
        return last_id, texts, None

    async def turn(
        self,
        clients: list[httpx.AsyncClient],
        target: int,
        app_id: str,
        prompt: str,
        disconnect: bool,
        previous_end: str,
    ) -> str:
        """One prompt; returns how the turn ended: ``final``, ``refused``, ``no response``, or
        after a disconnect ``reattach`` (final event read on another server), ``stop`` or
        ``disconnect``."""
        url = f"{API}/response/{self.project}/{app_id}"
        name = self.servers[target].name
        for attempt in range(50):
            accepted = False
            sent_at = time.monotonic()
            try:
                async with clients[target].stream("POST", url, json={"prompt": prompt}) as response:
                    if response.status_code == 409:
                        self.conflicts[previous_end] += 1
                        if attempt == 0:
                            self.conflicted_turns[previous_end] += 1
                        if previous_end in SETTLED:
                            self.finding(
                                f"409 for {app_id} turn {len(self.sent[app_id])} on "
                                f"{name}, the previous turn ended: {previous_end}"
                            )
                        await asyncio.sleep(0.1)
                        continue
                    if response.status_code != 200:
                        self.counts["refused"] += 1
                        self.refused[response.status_code] += 1
                        return "refused"
                    accepted = True
                    record = self.accepted(Prompt(app_id, prompt, "reject", target))
                    last_id, texts, final = await self.read(
                        response, 3 if disconnect else None, record
                    )
            except httpx.TransportError as exc:
                self.no_response(
                    f"POST /response ({'after' if accepted else 'before'} the response headers)",
                    app_id,
                    name,
                    sent_at,
                    exc,
                )
                if not accepted:  # the prompt may or may not be in the history
                    self.uncertain.setdefault(app_id, set()).add(prompt)
                return "no response"
            if final is not None:
                if record is not None:
                    record.texts, record.final, record.listened = texts, final, True
                if final["type"] == "message":
                    self.counts["messages"] += 1
                else:
                    code = final["value"]["code"]
                    self.counts["errors"] += 1
                    self.error_codes[code] += 1
                    if code == "stopped":  # nobody stopped it: the client was listening
                        self.counts["unexpected_stops"] += 1
                return "final"
            if not disconnect:
                self.finding(f"{app_id} on {name}: the stream ended without a final event")
                return "disconnect"
            self.counts["disconnects"] += 1
            # The connection is closed: the server sees the client leave.
            draw = self.random.random()
            other = self.other(target)
            sent_at = time.monotonic()
            try:
                if draw < self.args.reattach_rate:
                    return await self.reattach(clients[other], app_id, last_id, texts, record)
                if draw < self.args.reattach_rate + self.args.stop_rate:
                    return await self.stop(clients[other], app_id)
            except httpx.TransportError as exc:
                what = "GET /stream" if draw < self.args.reattach_rate else "POST /stop"
                self.no_response(what, app_id, self.servers[other].name, sent_at, exc)
                return "no response"
            return "disconnect"
        raise RuntimeError(f"{app_id} stayed busy")

    def accepted(self, record: Prompt) -> Optional[Prompt]:
        """Note a prompt whose POST returned 200: its turn started now."""
        self.sent[record.app_id].append(record.text)
        self.counts["turns"] += 1
        if not self.double:
            return None
        record.position = len(self.records[record.app_id])
        self.records[record.app_id].append(record)
        self.log(record.app_id, f"200 {record.text!r}: its turn started (turn #{record.position})")
        return record

    def log(self, app_id: str, text: str) -> None:
        self.logs[app_id].append(f"{time.monotonic() - self.started:8.3f} s {text}")

    def violation(self, app_id: str, kind: str, text: str) -> None:
        self.violations[kind] += 1
        self.violated.setdefault(app_id, []).append(f"{kind}: {text}")

    def policy(self) -> str:
        if self.args.if_busy == "mixed":
            return self.random.choice(("interrupt", "enqueue"))
        return self.args.if_busy

    async def double_text(
        self,
        clients: list[httpx.AsyncClient],
        target: int,
        index: int,
        turn: int,
        previous_end: str,
    ) -> str:
        """A turn with a double text: the prompt, then once its stream has given 1 to 6 events
        one or two more prompts with ``if_busy`` (or, in 1 of 8 with ``enqueue`` possible,
        four enqueued prompts to one server: the fourth may find three waiting), each read to
        its end; returns how the last turn ended, as :meth:`turn`."""
        app_id = f"c{index:04d}"
        n = len(self.servers)
        burst = self.args.if_busy != "interrupt" and self.random.random() < 1 / 8
        if burst:
            where = self.random.randrange(n)
            extras = [("enqueue", where)] * 4
        else:
            extras = []
            for k in range(self.random.choice((1, 2))):
                where = (
                    self.random.randrange(n)
                    if self.args.routing == "random"
                    else (target + k + 1) % n
                )
                extras.append((self.policy(), where))
        after = self.random.randint(1, 6)
        self.doubles["double texts"] += 1
        self.doubles["bursts of 4 enqueued"] += burst
        first = Prompt(app_id, f"What is {app_id} turn {turn}?", "reject", target, group=turn)
        group = self.groups[app_id][turn] = [first]
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(self.send(clients, first, group, previous_end, (after, ready)))
        ]
        await ready.wait()  # (set after `after` events, or when the first prompt is over)
        if first.position is not None:
            for k, (policy, where) in enumerate(extras):
                if k and not burst:
                    await asyncio.sleep(self.random.uniform(0, 0.01))
                extra = Prompt(
                    app_id, f"What is {app_id} turn {turn}.{k + 1}?", policy, where, group=turn
                )
                group.append(extra)
                tasks.append(asyncio.create_task(self.send(clients, extra, group)))
        ends = await asyncio.gather(*tasks)
        for end in ("no response", "disconnect"):  # (the worst, for the next turn's 409s)
            if end in ends:
                return end
        return "final" if "final" in ends else ends[0]

    async def send(
        self,
        clients: list[httpx.AsyncClient],
        record: Prompt,
        group: list[Prompt],
        previous_end: str = "final",
        ready: Optional[tuple[int, asyncio.Event]] = None,
    ) -> str:
        """POST one prompt of a double text and read its stream to the end. The first prompt
        (no ``if_busy``) is retried on 409 as :meth:`turn` does; the others are not."""
        app_id, name = record.app_id, self.servers[record.server].name
        url = f"{API}/response/{self.project}/{app_id}"
        params = {} if record.policy == "reject" else {"if_busy": record.policy}
        extra = record.policy != "reject"
        try:
            for attempt in range(50):
                record.sent_at = time.monotonic()
                others = [r for r in group if r is not record]
                record.streaming_at_send = any(r.streaming for r in others)
                if extra:
                    self.doubles[f"{record.policy} sent"] += 1
                    self.doubles[f"{record.policy} sent while an answer streamed"] += (
                        record.streaming_at_send
                    )
                self.log(
                    app_id,
                    f"POST {record.text!r} if_busy={record.policy} to {name}"
                    + (" while an answer streamed" if record.streaming_at_send else ""),
                )
                accepted = False
                try:
                    async with clients[record.server].stream(
                        "POST", url, params=params, json={"prompt": record.text}
                    ) as response:
                        status = record.status = response.status_code
                        record.answered_at = time.monotonic()
                        if status != 200:
                            await response.aread()
                            detail = response.text[:200]
                            self.log(app_id, f"{status} {record.text!r}: {detail}")
                        if status == 409:
                            reason = "queue full" if "waiting" in detail else "busy"
                            if not extra:  # as an ordinary turn's
                                self.conflicts[previous_end] += 1
                                if attempt == 0:
                                    self.conflicted_turns[previous_end] += 1
                                if previous_end in SETTLED:
                                    self.finding(
                                        f"409 for {app_id} turn {record.group} on "
                                        f"{name}, the previous turn ended: {previous_end}"
                                    )
                                await asyncio.sleep(0.1)
                                continue
                            self.double_409s[f"{record.policy}: {reason}"] += 1
                            # Allowed: the fourth enqueued prompt in one process, so three
                            # others to it were waiting (sent, no answer yet) meanwhile.
                            waiting = [
                                r
                                for r in group
                                if r is not record
                                and r.policy == "enqueue"
                                and r.server == record.server
                                and r.sent_at
                                and r.sent_at < record.answered_at
                                and (r.answered_at or float("inf")) > record.sent_at
                            ]
                            if not (
                                record.policy == "enqueue"
                                and reason == "queue full"
                                and len(waiting) >= 3
                            ):
                                self.violation(
                                    app_id,
                                    "409 not allowed",
                                    f"{record.text!r} if_busy={record.policy} on {name}: {detail}",
                                )
                            return "refused"
                        if status != 200:
                            self.counts["refused"] += 1
                            self.refused[status] += 1
                            if extra and status >= 500:
                                self.violation(app_id, "5xx", f"{record.text!r}: {status}")
                            return "refused"
                        accepted = True
                        record.listened = True
                        self.accepted(record)
                        if extra:
                            self.doubles[f"{record.policy} accepted"] += 1
                        _, record.texts, record.final = await self.read(
                            response, record=record, ready=ready
                        )
                        record.final_at = time.monotonic()
                except httpx.TransportError as exc:
                    self.no_response(
                        f"POST /response ({'after' if accepted else 'before'} the "
                        "response headers)",
                        app_id,
                        name,
                        record.sent_at,
                        exc,
                    )
                    if not accepted:
                        self.uncertain.setdefault(app_id, set()).add(record.text)
                    return "no response"
                final = record.final
                if final is None:
                    self.finding(
                        f"{app_id} on {name}: the stream of {record.text!r} ended "
                        "without a final event"
                    )
                    return "disconnect"
                self.log(
                    app_id,
                    f"{record.text!r} ended: {final['type']} "
                    + (final["value"]["code"] if final["type"] == "error" else "")
                    + f" ({len(''.join(record.texts))} characters streamed)",
                )
                if final["type"] == "message":
                    self.counts["messages"] += 1
                else:
                    self.counts["errors"] += 1
                    self.error_codes[final["value"]["code"]] += 1
                return "final"
            raise RuntimeError(f"{app_id} stayed busy")
        finally:
            if ready is not None:
                ready[1].set()

    def finding(self, text: str) -> None:
        self.findings.append(f"{time.strftime('%H:%M:%S')} {text}")
        if self.args.verbose:
            print(self.findings[-1])

    def no_response(
        self, what: str, app_id: str, name: str, sent_at: float, exc: Exception
    ) -> None:
        self.transport_errors[f"{what}: {type(exc).__name__}"] += 1
        self.finding(
            f"{what} for {app_id} on {name}: {type(exc).__name__} after "
            f"{time.monotonic() - sent_at:.1f} s"
        )

    async def reattach(
        self,
        client: httpx.AsyncClient,
        app_id: str,
        last_id: Optional[str],
        texts: list[str],
        record: Optional["Prompt"] = None,
    ) -> str:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        url = f"{API}/stream/{self.project}/{app_id}"
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                self.reattaches[f"HTTP {response.status_code}"] += 1
                return "disconnect"
            _, rest, final = await self.read(response)
        if final is None:
            self.reattaches["no final event"] += 1
            return "disconnect"
        if record is not None:  # (its final event and all its text, read on another server)
            record.texts, record.final = texts + rest, final
        if final["type"] == "message":
            self.reattaches["message"] += 1
            if "".join(texts + rest) != final["value"]["item"]["content"]:
                self.reattaches["text did not join up"] += 1
                self.finding(
                    f"reattach {app_id}: {''.join(texts)!r} + {''.join(rest)!r} "
                    f"!= {final['value']['item']['content']!r}"
                )
        else:
            self.reattaches[f"error {final['value']['code']}"] += 1
        return "reattach"

    async def stop(self, client: httpx.AsyncClient, app_id: str) -> str:
        response = await client.post(f"{API}/stop/{self.project}/{app_id}")
        if response.status_code != 200:
            self.stop_results[f"HTTP {response.status_code}"] += 1
            return "disconnect"
        self.stop_results["stopped" if response.json()["stopped"] else "nothing to stop"] += 1
        return "stop"

    async def run(self) -> dict:
        # Each worker is a client of its own: its connections come from its own loopback
        # address (the server holds each address to its per-client limits).
        # (a double text holds up to 5 connections to one server: the prompt and 4 more)
        limits = httpx.Limits(max_connections=6 if self.double else 2)
        by_worker = [
            [
                httpx.AsyncClient(
                    base_url=server.url,
                    timeout=60,
                    limits=limits,
                    headers={"Accept": "text/event-stream"},  # ids, for Last-Event-ID
                    transport=httpx.AsyncHTTPTransport(
                        limits=limits, local_address=loopback_address(worker)
                    ),
                )
                for server in self.servers
            ]
            for worker in range(self.args.concurrency)
        ]
        try:
            return await self._run(by_worker)
        finally:
            for clients in by_worker:
                for client in clients:
                    await client.aclose()

    async def _run(self, by_worker: list[list[httpx.AsyncClient]]) -> dict:
        clients = by_worker[0]
        queue = list(range(self.args.conversations))
        total = self.args.conversations * self.args.turns
        pids = [server.process.pid for server in self.servers]
        rss: list[dict[str, int]] = [{"start": rss_kib(pid)} for pid in pids]

        async def worker(clients: list[httpx.AsyncClient]) -> None:
            while queue:
                await self.conversation(clients, queue.pop())

        async def sample() -> None:
            while self.done < total:
                for pid, numbers in zip(pids, rss, strict=False):
                    now = rss_kib(pid)
                    if "warm" not in numbers and self.done >= total * self.args.warmup:
                        numbers["warm"] = now
                    numbers["peak"] = max(numbers.get("peak", 0), now)
                await asyncio.sleep(0.5)

        began = time.monotonic()
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(worker(clients) for clients in by_worker))
        await sampler
        await asyncio.sleep(1.0)  # let disconnected answers wind down
        for pid, numbers in zip(pids, rss, strict=False):
            numbers["end"] = rss_kib(pid)
        elapsed = time.monotonic() - began

        # The check reads the histories from the first server; the others must return the same.
        lost, interleaved, duplicated, differ = 0, 0, 0, 0
        for app_id, prompts in self.sent.items():
            url = f"{API}/history/{self.project}/{app_id}"
            history = (await clients[0].get(url)).json()
            unknown = self.uncertain.get(app_id, set())
            users = [m["content"] for m in history if m["role"] == "user"]
            missing = [p for p in prompts if p not in users]
            lost += len(missing)
            if missing and self.args.verbose:
                print("lost", missing, "history", [(m["role"], m["content"][:30]) for m in history])
            duplicated += len(users) - len(set(users))
            interleaved += len([u for u in users if f"What is {app_id} " not in u])
            known = [u for u in users if u not in unknown]
            interleaved += int(known != [p for p in prompts if p in users])
            for before, after in itertools.pairwise(history):
                if before["role"] == after["role"] == "assistant":
                    interleaved += 1
            if self.double:
                self.check_turns(app_id, history)
            for client in clients[1:]:
                if (await client.get(url)).json() != history:
                    differ += 1
                    if self.args.verbose:
                        print("history differs between servers:", app_id)
        statuses = [(await client.get(f"{API}/status")).json() for client in clients]
        return {
            "elapsed_s": elapsed,
            "rss_kib": rss,
            "lost": lost,
            "interleaved": interleaved,
            "duplicated": duplicated,
            "differ": differ,
            "statuses": statuses,
        }

    def check_turns(self, app_id: str, history: list[dict[str, Any]]) -> None:
        """With double texts: each accepted prompt's answer is in the history once, as its
        stream ended (the text of its ``message``; after an ``error``, the text streamed,
        marked interrupted, or nothing when none streamed); each turn started after the one
        before it had ended (its ``chat_history`` holds the prompts accepted before it, in that
        order, and the previous turn's end); an answer stopped while its client listened was
        stopped by an ``interrupt`` prompt sent meanwhile."""
        records = self.records[app_id]
        unknown = self.uncertain.get(app_id, set())
        by_text = {record.text: record for record in records}
        violations_before = sum(self.violations.values())

        def users(items: list[dict[str, Any]]) -> list[str]:
            return [
                m["content"] for m in items if m["role"] == "user" and m["content"] not in unknown
            ]

        def expected_answer(record: Prompt) -> Optional[tuple[str, bool]]:
            """(text, interrupted) of the answer ``record``'s stream says was kept, or None."""
            assert record.final is not None
            if record.final["type"] == "message":
                return record.final["value"]["item"]["content"], False
            streamed = "".join(record.texts)
            return (streamed, True) if streamed else None

        def shown(item: Optional[dict[str, Any]]) -> str:
            if item is None:
                return "nothing"
            mark = " (interrupted)" if item.get("interrupted") else ""
            return f"{item['role']} {item['content'][:40]!r}{mark}"

        exchanges: list[tuple[str, list[dict[str, Any]]]] = []
        for item in history:
            if item["role"] == "user":
                exchanges.append((item["content"], []))
            elif exchanges:
                exchanges[-1][1].append(item)
            else:
                self.violation(app_id, "answer before any prompt", shown(item))
        for text, answers in exchanges:
            record = by_text.get(text)
            if record is None:
                if text not in unknown:
                    self.violation(app_id, "prompt in the history never accepted", repr(text))
                continue
            if len(answers) > 1:
                self.violation(app_id, "answer duplicated", f"{text!r}: {len(answers)} answers")
            if record.final is None:  # (a client that left: its answer may or may not be kept)
                continue
            expected = expected_answer(record)
            answer = answers[0] if answers else None
            if expected is None and answer is not None:
                self.violation(
                    app_id,
                    "answer kept for a turn that streamed none",
                    f"{text!r}: {shown(answer)}",
                )
            elif expected is not None and answer is None:
                kind = "answer lost after a stop" if record.stopped else "answer missing"
                self.violation(
                    app_id,
                    kind,
                    f"{text!r} streamed {len(expected[0])} characters "
                    f"and ended with {record.final['type']}"
                    + (" stopped" if record.stopped else "")
                    + ", nothing kept",
                )
            elif (
                expected is not None
                and answer is not None
                and (
                    answer["content"] != expected[0]
                    or bool(answer.get("interrupted")) != expected[1]
                )
            ):
                self.violation(
                    app_id,
                    "answer not as streamed",
                    f"{text!r}: kept "
                    f"{shown(answer)}, streamed {expected[0][:40]!r}"
                    + (" (interrupted)" if expected[1] else ""),
                )

        # The messages before each prompt in the history, as (role, content, interrupted).
        def key(item: dict[str, Any]) -> tuple[str, str, bool]:
            return item["role"], item["content"], bool(item.get("interrupted"))

        prefix = {
            item["content"]: [key(m) for m in history[:n]]
            for n, item in enumerate(history)
            if item["role"] == "user"
        }
        for i, record in enumerate(records):
            if record.history is not None:
                before = [r.text for r in records[:i] if r.text not in unknown]
                if users(record.history) != before:
                    self.violation(
                        app_id,
                        "turn started out of order",
                        f"{record.text!r}: its "
                        f"chat_history has {users(record.history)}, accepted before "
                        f"it: {before}",
                    )
                elif (
                    record.text in prefix
                    and [key(m) for m in record.history] != prefix[record.text]
                ):
                    # (an answer before it was written after this turn had started)
                    self.violation(
                        app_id,
                        "turn started before the previous one ended",
                        f"{record.text!r}: its chat_history ends with "
                        f"{shown(record.history[-1] if record.history else None)}, "
                        "the history has more before it",
                    )
            if record.group is None or record.position is None:
                continue
            previous = records[i - 1] if i else None
            if record.policy == "interrupt" and previous is not None:
                if previous.stopped:
                    self.doubles["interrupt: the answer before it stopped"] += 1
                elif previous.final is not None and previous.final["type"] == "message":
                    self.doubles["interrupt: the answer before it had ended"] += 1
            if record.policy == "enqueue" and record.streaming_at_send:
                self.doubles["enqueue: waited for an answer"] += 1
            if record.stopped and record.listened:
                # (an interrupt prompt that stopped it then failed to start counts too)
                interrupters = [
                    r
                    for r in self.groups[app_id].get(record.group, [])
                    if r is not record
                    and r.policy == "interrupt"
                    and r.sent_at < (record.final_at or 0)
                ]
                if interrupters:
                    self.doubles["answers interrupted (error stopped)"] += 1
                else:
                    self.violation(
                        app_id,
                        "stopped with no interrupt",
                        f"{record.text!r} ended with error stopped",
                    )
        if sum(self.violations.values()) > violations_before:
            self.violated[app_id].append("history: " + "; ".join(shown(m) for m in history))


def counter_text(counter: Counter) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--disconnect-rate", type=float, default=0.1)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument(
        "--reattach-rate",
        type=float,
        default=0.5,
        help="share of disconnected turns followed by a reattach on another server",
    )
    parser.add_argument(
        "--stop-rate",
        type=float,
        default=0.2,
        help="share of disconnected turns followed by a stop on another server",
    )
    parser.add_argument(
        "--double-text-rate",
        type=float,
        default=0.0,
        help="share of turns in which the client sends one or two more prompts "
        "(with if_busy) while the first answer streams",
    )
    parser.add_argument(
        "--if-busy",
        choices=["interrupt", "enqueue", "mixed"],
        default="mixed",
        help="if_busy of those prompts (mixed: each one drawn)",
    )
    parser.add_argument("--processes", type=int, default=1, help="chatbot server processes")
    parser.add_argument(
        "--routing",
        choices=["alternate", "random"],
        default="alternate",
        help="which server each turn goes to",
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--postgres",
        action="store_true",
        help="a throwaway PostgreSQL server (tests/postgres.py) as the store",
    )
    store.add_argument("--database-url", help="an existing PostgreSQL database as the store")
    parser.add_argument(
        "--project",
        help="project id (default: soak, or soak-<time> on a "
        "database or storage folder that may hold earlier runs)",
    )
    parser.add_argument(
        "--warmup", type=float, default=0.2, help="share of turns before RSS baseline"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print each lost message, each 409 that should not have happened",
    )
    parser.add_argument("--storage", help="keep the servers' storage and logs in this folder")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not 0 <= args.double_text_rate <= 1:
        parser.error("--double-text-rate must be between 0 and 1")
    if args.reattach_rate + args.stop_rate > 1:
        parser.error("--reattach-rate plus --stop-rate must be at most 1")
    project = args.project or (
        f"soak-{time.strftime('%Y%m%d-%H%M%S')}" if args.database_url or args.storage else "soak"
    )

    began = time.monotonic()
    cluster = None
    fake = None
    database_url = args.database_url
    try:
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from postgres import PostgresCluster

            cluster = PostgresCluster(max_connections=max(200, 30 * args.processes + 20)).start()
            database_url = cluster.create_database("soak")
        fake, fake_url = start_fake(args.tokens, args.delay_ms)
        with tempfile.TemporaryDirectory() as scratch:
            storage = Path(args.storage or scratch)
            storage.mkdir(parents=True, exist_ok=True)
            servers = start_servers(fake_url, storage, args.processes, database_url)
            try:
                soak = Soak(servers, fake_url, project, args)
                result = asyncio.run(soak.run())
            finally:
                for server in servers:
                    server.stop()
            tracebacks = [
                server.log_path.read_text(errors="replace").count("Traceback") for server in servers
            ]
    finally:
        if fake is not None:
            fake.terminate()
            fake.wait(15)
        if cluster is not None:
            cluster.stop()
    wall = time.monotonic() - began

    engine = "SQLite, one storage folder"
    if args.postgres:
        engine = "PostgreSQL (throwaway server), a storage folder and HOME each"
    elif database_url:
        engine = "PostgreSQL (--database-url), a storage folder and HOME each"
    unexpected = sum(n for end, n in soak.conflicts.items() if end in SETTLED)
    expected = sum(n for end, n in soak.conflicts.items() if end not in SETTLED)
    print(
        f"soak: {args.conversations} conversations x {args.turns} turns, "
        f"{args.concurrency} at a time, {result['elapsed_s']:.1f} s "
        f"({wall:.1f} s with start-up and shutdown)"
    )
    print(
        f"  {args.processes} server process(es) on {engine}; turns routed {args.routing}, "
        f"{soak.counts['switched']} turns on another process than the conversation's previous one"
    )
    print(
        f"  turns accepted {soak.counts['turns']}, answered {soak.counts['messages']}, "
        f"ended in error {soak.counts['errors']}, client disconnects {soak.counts['disconnects']}, "
        f"refused {soak.counts['refused']} {dict(soak.refused) or ''}"
    )
    print(
        f"  error codes: {counter_text(soak.error_codes)}; "
        f"stopped while the client listened: {soak.counts['unexpected_stops']}"
    )
    where = "another process" if args.processes > 1 else "the same process"
    print(
        f"  after a disconnect: reattach on {where} {sum(soak.reattaches.values())} "
        f"({counter_text(soak.reattaches)}), stop on {where} {sum(soak.stop_results.values())} "
        f"({counter_text(soak.stop_results)})"
    )
    print(
        f"  409 after the previous turn ended (final event, reattach, stop) or on a first turn: "
        f"{unexpected} responses, {sum(n for e, n in soak.conflicted_turns.items() if e in SETTLED)} "
        f"turns ({counter_text(Counter({e: n for e, n in soak.conflicts.items() if e in SETTLED}))})"
    )
    print(
        f"  409 after a disconnect (retried every 0.1 s): {expected} responses, "
        f"{sum(n for e, n in soak.conflicted_turns.items() if e not in SETTLED)} turns "
        f"({counter_text(Counter({e: n for e, n in soak.conflicts.items() if e not in SETTLED}))})"
    )
    print(
        f"  requests without a (complete) response in 60 s: {sum(soak.transport_errors.values())} "
        f"({counter_text(soak.transport_errors)}); prompts that may or may not have been "
        f"accepted: {sum(len(p) for p in soak.uncertain.values())}"
    )
    print(f"  lost user messages: {result['lost']}")
    print(f"  duplicated user messages: {result['duplicated']}")
    print(f"  interleaved or out-of-order histories: {result['interleaved']}")
    if args.processes > 1:
        print(f"  histories that differ between processes: {result['differ']}")
    growths = []
    for server, rss, status, traces in zip(
        servers, result["rss_kib"], result["statuses"], tracebacks, strict=False
    ):
        growth = (rss["end"] - rss["warm"]) / rss["warm"] if rss.get("warm") else float("nan")
        growths.append(growth)
        print(
            f"  {server.name} RSS: start {rss['start'] / 1024:.1f} MiB, after warm-up "
            f"{rss.get('warm', 0) / 1024:.1f} MiB, peak {rss.get('peak', 0) / 1024:.1f} MiB, "
            f"end {rss['end'] / 1024:.1f} MiB, growth after warm-up {growth * 100:+.1f}%"
        )
        print(f"  {server.name} at the end: {status}; tracebacks in its log: {traces}")
    if soak.double:
        d = soak.doubles
        print(
            f"  double texts (--double-text-rate {args.double_text_rate}, --if-busy "
            f"{args.if_busy}): {d['double texts']} turns, {d['bursts of 4 enqueued']} of them "
            f"4 enqueued prompts to one process; second prompts sent {d['interrupt sent'] + d['enqueue sent']}, "
            f"accepted {d['interrupt accepted'] + d['enqueue accepted']}"
        )
        print(
            f"    interrupt: sent {d['interrupt sent']} ({d['interrupt sent while an answer streamed']} "
            f"while an answer streamed), accepted {d['interrupt accepted']}; answers interrupted "
            f"(stream ended with error stopped) {d['answers interrupted (error stopped)']}, "
            f"the answer before had ended {d['interrupt: the answer before it had ended']}"
        )
        print(
            f"    enqueue: sent {d['enqueue sent']} ({d['enqueue sent while an answer streamed']} "
            f"while an answer streamed), accepted {d['enqueue accepted']}, waited for an "
            f"answer {d['enqueue: waited for an answer']}"
        )
        print(
            f"    409s of those prompts: {sum(soak.double_409s.values())} "
            f"({counter_text(soak.double_409s)})"
        )
        print(
            f"  double-text violations: {sum(soak.violations.values())} "
            f"({counter_text(soak.violations)})"
        )
        every = [
            (app_id, line)
            for app_id, what in soak.violated.items()
            for line in what
            if not line.startswith("history: ")
        ]
        for app_id, line in every[:30]:
            print(f"    {app_id} {line}")
        if len(every) > 30:
            print(f"    ... and {len(every) - 30} more")
        for app_id, what in list(soak.violated.items())[:3]:
            print(f"    {app_id}:")
            for line in what:
                print(f"      {line}")
            print("      what its client did:")
            for line in soak.logs[app_id]:
                print(f"        {line}")
    if soak.findings:
        print(f"  findings ({len(soak.findings)}, the first 10):")
    for finding in soak.findings[:10]:
        print(f"    {finding}")
    ok = result["lost"] == 0 and result["interleaved"] == 0 and result["duplicated"] == 0
    ok = ok and result["differ"] == 0 and unexpected == 0 and not soak.findings
    ok = ok and soak.counts["unexpected_stops"] == 0
    ok = ok and soak.reattaches["text did not join up"] == 0
    ok = ok and all(growth < 0.10 for growth in growths)
    ok = ok and all(status["streaming"] == 0 for status in result["statuses"])
    ok = ok and not any(code >= 500 and code != 503 for code in soak.refused)
    ok = ok and not soak.violations
    print("  PASS" if ok else "  FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
