"""Soak: many conversations × many turns against one server, with random client disconnects
and upstream faults; then checks that no user message was lost, no history interleaved, and
resident memory stayed flat after warm-up.

    python benchmarks/soak.py [--conversations 200] [--turns 20] [--concurrency 20]

Starts the fake OpenAI-compatible server (tests/fake_openai.py) and the chatbot
(``python -m burr_streaming_chatbot``) as separate processes on 127.0.0.1, with storage in a
temporary folder. Prints what it did and the checks; exits 1 if a check fails.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v0/streaming_chatbot"
PROJECT = "soak"
FAULTS = ["auth", "rate_limit", "server_error", "drop", "malformed", "timeout"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_fake(tokens: int, delay_ms: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_openai.py"), "--port", "0",
         "--tokens", str(tokens), "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    for line in process.stdout:  # type: ignore[union-attr]
        if line.startswith("PORT="):
            return process, f"http://127.0.0.1:{int(line.split('=')[1])}"
    raise RuntimeError("the fake did not start")


def start_server(fake_url: str, storage: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": fake_url + "/v1",
        "OPENAI_API_KEY": "sk-soak",
        "BURR_CHATBOT_STORAGE_DIR": storage,
        "burr_path": storage,
        "BURR_CHATBOT_REQUEST_TIMEOUT_S": "1",
        "BURR_CHATBOT_MAX_RETRIES": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "burr_streaming_chatbot", "--no-open", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(Path(storage) / "server.log", "wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + API + "/model", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


class Soak:
    def __init__(self, url: str, fake_url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.fake_url = fake_url
        self.args = args
        self.random = random.Random(args.seed)
        self.sent: dict[str, list[str]] = {}  # prompts the server accepted, per conversation
        self.counts = {"turns": 0, "messages": 0, "errors": 0, "disconnects": 0, "refused": 0}
        self.refused: dict[int, int] = {}  # HTTP status of refused prompts
        self.done = 0

    async def conversation(self, client: httpx.AsyncClient, index: int) -> None:
        app_id = f"c{index:04d}"
        self.sent[app_id] = []
        for turn in range(self.args.turns):
            prompt = f"What is {app_id} turn {turn}?"
            disconnect = self.random.random() < self.args.disconnect_rate
            if self.random.random() < self.args.fault_rate:
                fault = self.random.choice(FAULTS)
                await client.post(self.fake_url + "/_control", json={
                    "fault": fault, "fault_count": 1, "hang_s": 3, "drop_after": 2})
            await self.turn(client, app_id, prompt, disconnect)
            self.done += 1

    async def turn(self, client: httpx.AsyncClient, app_id: str, prompt: str, disconnect: bool) -> None:
        url = f"{API}/response/{PROJECT}/{app_id}"
        for _ in range(50):  # 409 while the previous (disconnected) answer winds down
            async with client.stream("POST", url, json={"prompt": prompt}) as response:
                if response.status_code == 409:
                    await asyncio.sleep(0.1)
                    continue
                if response.status_code != 200:
                    self.counts["refused"] += 1
                    code = response.status_code
                    self.refused[code] = self.refused.get(code, 0) + 1
                    return
                self.sent[app_id].append(prompt)
                self.counts["turns"] += 1
                events = 0
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    events += 1
                    kind = json.loads(line[6:])["type"]
                    if kind == "message":
                        self.counts["messages"] += 1
                    elif kind == "error":
                        self.counts["errors"] += 1
                    if disconnect and events >= 3:
                        self.counts["disconnects"] += 1
                        break
                return
        raise RuntimeError(f"{app_id} stayed busy")

    async def run(self, server_pid: int) -> dict:
        limits = httpx.Limits(max_connections=self.args.concurrency * 2)
        async with httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits) as client:
            queue = list(range(self.args.conversations))
            total = self.args.conversations * self.args.turns
            rss = {"start": rss_kib(server_pid)}

            async def worker() -> None:
                while queue:
                    await self.conversation(client, queue.pop())

            async def sample() -> None:
                while self.done < total:
                    if "warm" not in rss and self.done >= total * self.args.warmup:
                        rss["warm"] = rss_kib(server_pid)
                    rss["peak"] = max(rss.get("peak", 0), rss_kib(server_pid))
                    await asyncio.sleep(0.5)

            began = time.monotonic()
            sampler = asyncio.create_task(sample())
            await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))
            await sampler
            await asyncio.sleep(1.0)  # let disconnected answers wind down
            rss["end"] = rss_kib(server_pid)
            elapsed = time.monotonic() - began

            lost, interleaved, duplicated = 0, 0, 0
            for app_id, prompts in self.sent.items():
                history = (await client.get(f"{API}/history/{PROJECT}/{app_id}")).json()
                users = [m["content"] for m in history if m["role"] == "user"]
                missing = [p for p in prompts if p not in users]
                lost += len(missing)
                if missing and self.args.verbose:
                    print("lost", missing, "history", [(m["role"], m["content"][:30]) for m in history])
                duplicated += len(users) - len(set(users))
                interleaved += len([u for u in users if f"What is {app_id} " not in u])
                interleaved += int(users != [p for p in prompts if p in users])
                for before, after in zip(history, history[1:]):
                    if before["role"] == after["role"] == "assistant":
                        interleaved += 1
            status = (await client.get(f"{API}/status")).json()
        return {"elapsed_s": elapsed, "rss_kib": rss, "lost": lost, "interleaved": interleaved,
                "duplicated": duplicated, "status": status}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--disconnect-rate", type=float, default=0.1)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--warmup", type=float, default=0.2, help="share of turns before RSS baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="print each lost message")
    parser.add_argument("--storage", help="keep the server's storage and log in this folder")
    args = parser.parse_args()

    fake, fake_url = start_fake(args.tokens, args.delay_ms)
    with tempfile.TemporaryDirectory() as scratch:
        storage = args.storage or scratch
        server, url = start_server(fake_url, storage)
        try:
            soak = Soak(url, fake_url, args)
            result = asyncio.run(soak.run(server.pid))
        finally:
            server.terminate()
            server.wait(15)
            fake.terminate()
    rss = result["rss_kib"]
    growth = (rss["end"] - rss["warm"]) / rss["warm"] if rss.get("warm") else float("nan")
    print(f"soak: {args.conversations} conversations x {args.turns} turns, "
          f"{args.concurrency} at a time, {result['elapsed_s']:.1f} s")
    print(f"  turns accepted {soak.counts['turns']}, answered {soak.counts['messages']}, "
          f"ended in error {soak.counts['errors']}, client disconnects {soak.counts['disconnects']}, "
          f"refused {soak.counts['refused']} {soak.refused or ''}")
    print(f"  lost user messages: {result['lost']}")
    print(f"  duplicated user messages: {result['duplicated']}")
    print(f"  interleaved or out-of-order histories: {result['interleaved']}")
    print(f"  server RSS: start {rss['start'] / 1024:.1f} MiB, after warm-up "
          f"{rss.get('warm', 0) / 1024:.1f} MiB, peak {rss.get('peak', 0) / 1024:.1f} MiB, "
          f"end {rss['end'] / 1024:.1f} MiB, growth after warm-up {growth * 100:+.1f}%")
    print(f"  server at the end: {result['status']}")
    ok = result["lost"] == 0 and result["interleaved"] == 0 and result["duplicated"] == 0
    ok = ok and growth < 0.10 and result["status"]["streaming"] == 0
    ok = ok and not any(code >= 500 and code != 503 for code in soak.refused)
    print("  PASS" if ok else "  FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
