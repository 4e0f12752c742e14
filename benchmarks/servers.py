"""The servers the benchmarks compare, each a small FastAPI app under uvicorn.

    python benchmarks/servers.py {relay,relay_aiohttp,burr_example,chatbot,chatbot_pg} [--port 0] [--host 127.0.0.1]

prints ``PORT=<n>`` once the socket is bound, then serves until SIGTERM. Every app mounts its
API at ``/api/v0/streaming_chatbot`` and answers ``GET /_bench/ready`` with its pid. All run
with the same uvicorn settings (one process, access log off, warnings only), read
``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` from the environment, and keep their files where
``HOME``, ``burr_path`` and ``BURR_CHATBOT_STORAGE_DIR`` say.

* ``chatbot``: this project, ``create_router()`` with its defaults (Burr tracking on, the
  store on SQLite files under ``BURR_CHATBOT_STORAGE_DIR``).
* ``chatbot_pg``: the same app with the store on PostgreSQL: ``BURR_CHATBOT_DATABASE_URL``
  must be set (``compare.py`` points it at a fresh database of a throwaway cluster).
* ``burr_example``: Burr's built-in streaming example (``burr.examples.streaming-fastapi``),
  as shipped: tracking to ``~/.burr``, a new ``AsyncOpenAI`` client per model call, and the
  OpenTelemetry OpenAI instrumentation when that package is installed (``apache-burr[start]``
  installs it).
* ``relay``: the bare relay of ``relay.py``, on the SDK's default transport; ``relay_aiohttp``:
  the same on the SDK's aiohttp transport.

This project's servers also answer ``POST /_bench/model_calls`` (see :func:`model_calls`): the
CPU of model calls alone, as the answer step makes them, measured inside the server.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API, IMPLEMENTATIONS


def log_gc_pauses(min_ms: float = 5.0) -> None:
    """Print every garbage collection of ``min_ms`` or more to stderr (the server's log), as
    ``gc pause: generation 2, 28.2 ms (CPU 21.0 ms), at 13.7 s, 9120 objects freed``: a pause
    holds every stream's next delta. The CPU time is the collector's own; the rest of the
    pause is time the process waited for a core."""
    import gc
    import time

    began = time.perf_counter()
    started: list[float] = [0.0, 0.0]

    def timing(phase: str, info: dict) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            started[:] = [now, cpu]
        elif (now - started[0]) * 1000 >= min_ms:
            print(
                f"gc pause: generation {info['generation']}, {(now - started[0]) * 1000:.1f} ms "
                f"(CPU {(cpu - started[1]) * 1000:.1f} ms), at {now - began:.1f} s, "
                f"{info['collected']} objects freed",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(timing)


_BENCH_MODEL: dict = {}
"""The model :func:`model_calls` calls through (made on its first request)."""


async def model_calls(body: dict) -> dict:
    """``POST /_bench/model_calls`` ``{"calls": N, "concurrency": C, "prompt": text}``: make N
    streaming model calls, C at a time, exactly as this project's answer step makes the first
    call of a turn (``llm.stream_answer`` of a model built from the server's settings, with the
    tools the server offers, the history one user message), each read to its end, nothing else;
    answers with the process's CPU seconds over them (``time.process_time``: every thread) and
    what the calls streamed. One model for the process's life, so its connections stay open
    from call to call, as the server's own model's do (warm it up with a first request).

    ``compare.py`` subtracts this from a tool turn's CPU: what the turn costs beyond its model
    calls. Imported when called, and a build from before the tools (``--baseline-src``) makes
    its calls without them.
    """
    import asyncio
    import time

    from burr_streaming_chatbot import llm
    from burr_streaming_chatbot.settings import Settings

    tool_call_piece = getattr(llm, "ToolCallPiece", ())
    settings = Settings()
    tools: list = []
    if getattr(settings, "tools", False):
        from burr_streaming_chatbot.tools import load_toolbox

        tools = load_toolbox().openai_tools()
    if "model" not in _BENCH_MODEL:
        _BENCH_MODEL["model"] = llm.create_chat_model(settings)
    model = _BENCH_MODEL["model"]
    history = [{"role": "user", "content": str(body.get("prompt") or "What is Burr?")}]
    calls, concurrency = int(body["calls"]), max(1, int(body.get("concurrency") or 1))
    counts = {"text": 0, "tool_call_pieces": 0, "usage": 0, "errors": 0}
    queue = list(range(calls))

    async def worker() -> None:
        while queue:
            queue.pop()
            try:
                answer = (
                    model.stream_answer("answer_question", history, tools)
                    if tools
                    else model.stream_answer("answer_question", history)
                )
                async for piece in answer:
                    if isinstance(piece, tool_call_piece):
                        counts["tool_call_pieces"] += 1
                    elif isinstance(piece, llm.Usage):
                        counts["usage"] += 1
                    else:
                        counts["text"] += 1
            except Exception:
                counts["errors"] += 1

    began = time.process_time()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, calls))))
    cpu = time.process_time() - began
    return {"calls": calls, "cpu_s": cpu, "tools_offered": len(tools), **counts}


def build_app(impl: str):
    from fastapi import FastAPI

    app = FastAPI()
    if impl in ("chatbot", "chatbot_pg"):
        if impl == "chatbot_pg" and not os.environ.get("BURR_CHATBOT_DATABASE_URL", "").startswith(
            "postgres"
        ):
            raise SystemExit("chatbot_pg needs BURR_CHATBOT_DATABASE_URL=postgresql://...")
        from burr_streaming_chatbot.router import API_PREFIX, create_router

        app.include_router(create_router(), prefix=API_PREFIX)
        app.add_api_route("/_bench/model_calls", model_calls, methods=["POST"])
    elif impl == "burr_example":
        server = importlib.import_module("burr.examples.streaming-fastapi.server")
        app.include_router(server.router, prefix=API)
        app.state.otel = bool(getattr(server, "opentelemetry_available", False))
    elif impl in ("relay", "relay_aiohttp"):
        import relay

        transport = "aiohttp" if impl == "relay_aiohttp" else "httpx"
        app.include_router(relay.create_router(transport=transport), prefix=API)
    else:
        raise SystemExit(f"unknown implementation {impl!r}")

    @app.get("/_bench/ready")
    async def ready() -> dict:
        return {"pid": os.getpid(), "impl": impl, "otel": getattr(app.state, "otel", False)}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", choices=IMPLEMENTATIONS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    import uvicorn

    log_gc_pauses()
    app = build_app(args.impl)
    if args.impl not in ("chatbot", "chatbot_pg"):
        # Every server on the same footing: what it loaded at startup is frozen, as this
        # project's router does at startup where it owns the process (BURR_CHATBOT_GC_FREEZE,
        # which harness.server_env sets, as the project's own commands do).
        import gc

        gc.freeze()
    # Protocol TCP, so asyncio switches Nagle's algorithm off on every connection, as it does
    # when uvicorn binds the port itself (see fake_upstream.py for what happens otherwise).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    print(f"PORT={sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    main()
