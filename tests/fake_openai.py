"""A fake OpenAI-compatible chat completions server for the tests and benchmarks.

It speaks the real wire format over real HTTP on 127.0.0.1, so the official ``openai`` SDK is
exercised end to end: JSON for non-streaming calls, server-sent events for streaming ones, the
OpenAI error bodies and status codes, and faults that break the connection for real.

What it answers:

* Non-streaming ``POST /v1/chat/completions`` calls are router calls. The reply's content is
  the mode picked from keywords in the *last user message*: ``generate_poem`` when it contains
  "poem"; ``generate_code`` when it contains "code" or "function"; ``answer_question`` when it
  ends with "?" or contains "what", "why" or "how"; ``unknown`` otherwise (case-insensitive
  substring matching). The ``route`` setting forces a fixed reply instead.
* Streaming calls (``"stream": true``) stream :func:`answer_tokens`: ``text`` split into
  word-sized tokens when set, else ``tokens`` tokens of markdown when ``markdown`` is set,
  else ``"Token0", " token1", " token2", ...``. ``stream_options.include_usage`` is honoured.
  With ``reasoning`` set, that text streams first, split the same way, in the delta field
  ``reasoning_field`` (``reasoning_content`` as vLLM and DeepSeek send it, or ``reasoning`` as
  Ollama's OpenAI endpoint does), before any ``content``; the usage chunk then counts those
  tokens in ``completion_tokens_details.reasoning_tokens``.

How to use it:

* In a test: ``with running_fake(tokens=5) as fake:`` then point ``AsyncOpenAI`` at
  ``fake.base_url``; change the behaviour with ``fake.control(fault="auth")``; read counters
  with ``fake.stats()``; ``fake.reset()`` puts back the start configuration.
* As a process (benchmarks): ``python fake_openai.py --port 0 --tokens 50 --delay-ms 5``
  prints ``PORT=<n>`` on stdout and serves until killed; drive it with ``POST /_control``,
  ``GET /_stats`` and ``POST /_reset``, or with :class:`FakeRemote` / :func:`spawned_fake`.

Settings (keyword arguments, ``/_control`` JSON keys) are the fields of :class:`FakeConfig`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Optional

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "FAULTS",
    "FAULT_TARGETS",
    "MODES",
    "FakeConfig",
    "FakeRemote",
    "FakeState",
    "FakeUpstream",
    "answer_tokens",
    "classify_prompt",
    "create_app",
    "default_tokens",
    "main",
    "markdown_tokens",
    "running_fake",
    "spawned_fake",
    "split_tokens",
]

MODES = ("answer_question", "generate_poem", "generate_code", "unknown")
"""The router replies the fake gives."""

FAULTS = (
    "auth",
    "rate_limit",
    "server_error",
    "timeout",
    "drop",
    "malformed",
    "bad_request",
    "error_event",
    "stall",
)
"""Values of the ``fault`` setting."""

FAULT_TARGETS = ("any", "stream", "route")
"""Values of ``fault_on``: every call, only streaming calls, only non-streaming (router) calls."""

BODIES_KEPT = 100
"""How many request bodies :meth:`FakeState.stats` keeps (the most recent ones)."""

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_RETRY_FAST = {"retry-after": "0", "retry-after-ms": "1"}


# --------------------------------------------------------------------------- configuration


REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where servers put a reasoning model's thinking in a streamed delta."""


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    """How the fake behaves. Every field is a setting of the same name.

    Faults apply to the next ``fault_count`` matching calls (``None``: every call until the
    fault is cleared with ``fault=None`` or :meth:`FakeState.reset`); ``fault_on`` restricts
    them to streaming (``"stream"``) or non-streaming (``"route"``) calls.
    """

    tokens: int = 12
    """Number of tokens a streaming answer has (ignored when ``text`` is set)."""
    delay_ms: float = 0.0
    """Pause between two tokens of a stream."""
    first_token_delay_ms: float = 0.0
    """Pause between the stream's first (role) chunk and its first token."""
    text: Optional[str] = None
    """Exact text of streaming answers, split by :func:`split_tokens`."""
    markdown: bool = False
    """Stream ``tokens`` tokens of markdown with a fenced code block (:func:`markdown_tokens`)."""
    reasoning: Optional[str] = None
    """Text a reasoning model "thinks" before its answer, streamed first (see the module doc)."""
    reasoning_field: str = "reasoning_content"
    """The delta field of the thinking: one of :data:`REASONING_FIELDS`."""
    route: Optional[str] = None
    """Fixed content for non-streaming replies, instead of the keyword router."""
    route_delay_ms: float = 0.0
    """Pause before a non-streaming reply."""
    models: tuple[str, ...] = ("gpt-4o-mini",)
    """What ``GET /v1/models`` lists."""
    fault: Optional[str] = None
    """One of :data:`FAULTS`, or ``None``."""
    fault_count: Optional[int] = None
    """How many calls the fault hits; ``None`` means all of them until cleared."""
    fault_on: str = "any"
    """One of :data:`FAULT_TARGETS`."""
    hang_s: float = 30.0
    """How long the ``timeout`` fault waits before the first byte, and ``stall`` mid-answer."""
    drop_after: int = 3
    """How many tokens the ``drop``, ``error_event`` and ``stall`` faults stream before they cut
    the connection, send an ``error`` event or stop sending."""
    should_retry: Optional[bool] = None
    """When set, error responses carry ``x-should-retry: true|false`` (the SDK obeys it)."""
    tool_calls: tuple[dict, ...] = ()
    """Tool calls a streamed answer makes when the request offers ``tools`` and its last message
    is the user's: each ``{"name", "arguments"}`` (a dict or JSON text), all in one message (two
    or more are parallel calls), their arguments split over several chunks. An answer to a
    request whose last message is a tool result is ``text`` / ``tokens`` as usual."""
    tool_text: str = ""
    """Text streamed before the tool calls, in the same answer."""
    tool_calls_always: bool = False
    """Make ``tool_calls`` after tool results too (a model that never stops calling tools)."""

    def replace(self, **changes: Any) -> FakeConfig:
        """A copy with ``changes`` applied; :class:`ValueError` for unknown keys or bad values."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}; known: {sorted(known)}")
        values = dataclasses.asdict(self)
        values.update(changes)
        return FakeConfig._validated(values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        values = dataclasses.asdict(self)
        values["models"] = list(self.models)
        values["tool_calls"] = list(self.tool_calls)
        return values

    @staticmethod
    def _validated(values: dict[str, Any]) -> FakeConfig:
        def number(name: str, integer: bool = False) -> Any:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if integer and value != int(value):
                raise ValueError(f"{name} must be a whole number, not {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {value!r}")
            return int(value) if integer else float(value)

        out = dict(values)
        for name in ("tokens", "drop_after"):
            out[name] = number(name, integer=True)
        for name in ("delay_ms", "first_token_delay_ms", "route_delay_ms", "hang_s"):
            out[name] = number(name)
        if values["fault_count"] is not None:
            out["fault_count"] = number("fault_count", integer=True)
        if values["reasoning_field"] not in REASONING_FIELDS:
            raise ValueError(
                f"reasoning_field must be one of {REASONING_FIELDS}, not {values['reasoning_field']!r}"
            )
        calls = values["tool_calls"]
        if not isinstance(calls, (list, tuple)) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls
        ):
            raise ValueError(f"tool_calls must be a list of {{name, arguments}}, not {calls!r}")
        out["tool_calls"] = tuple(calls)
        if not isinstance(values["tool_text"], str):
            raise ValueError(f"tool_text must be a string, not {values['tool_text']!r}")
        for name in ("text", "route", "reasoning"):
            if values[name] is not None and not isinstance(values[name], str):
                raise ValueError(f"{name} must be a string or null, not {values[name]!r}")
        for name in ("markdown", "tool_calls_always"):
            if not isinstance(values[name], bool):
                raise ValueError(f"{name} must be true or false, not {values[name]!r}")
        if values["should_retry"] is not None and not isinstance(values["should_retry"], bool):
            raise ValueError(
                f"should_retry must be true, false or null, not {values['should_retry']!r}"
            )
        models = values["models"]
        if isinstance(models, str):
            models = (models,)
        if not all(isinstance(m, str) for m in models):
            raise ValueError(f"models must be a list of strings, not {values['models']!r}")
        out["models"] = tuple(models)
        if values["fault"] is not None and values["fault"] not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS} or null, not {values['fault']!r}")
        if values["fault_on"] not in FAULT_TARGETS:
            raise ValueError(f"fault_on must be one of {FAULT_TARGETS}, not {values['fault_on']!r}")
        return FakeConfig(**out)


# --------------------------------------------------------------------------- content


def classify_prompt(text: str) -> str:
    """The router reply for a user message: one of :data:`MODES`, by keywords."""
    lowered = text.lower()
    if "poem" in lowered:
        return "generate_poem"
    if "code" in lowered or "function" in lowered:
        return "generate_code"
    if lowered.rstrip().endswith("?") or any(w in lowered for w in ("what", "why", "how")):
        return "answer_question"
    return "unknown"


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized tokens, each word with the whitespace after it (as the
    package's offline model does): ``"one two "`` gives ``["one ", "two "]``. They join back
    to ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def default_tokens(count: int) -> list[str]:
    """``["Token0", " token1", " token2", ...]``, ``count`` of them."""
    return [f"Token{i}" if i == 0 else f" token{i}" for i in range(count)]


_PROSE = (
    "Streaming",
    "answers",
    "arrive",
    "in",
    "small",
    "pieces,",
    "and",
    "the",
    "page",
    "renders",
    "**bold**",
    "words,",
    "`inline_code`",
    "and",
    "*emphasis*",
    "too",
    "as",
    "each",
    "one",
    "lands.",
)


def markdown_tokens(count: int) -> list[str]:
    """``count`` tokens of markdown: a heading, prose, one fenced code block, a list.

    From 3 tokens on, the text has a complete (opened and closed) ``python`` code block.
    """
    if count <= 0:
        return []
    if count < 3:
        return [f" {_PROSE[i]}" if i else _PROSE[0] for i in range(count)]
    if count < 6:
        body = [f"print({i})\n" for i in range(count - 2)]
        return ["```python\n", *body, "```\n"]
    code_len = max(3, count // 3)
    rest = count - 1 - code_len
    intro_len = rest // 2
    outro_len = rest - intro_len
    tokens = ["## A streamed answer\n\n"]
    intro = [(" " if i else "") + _PROSE[i % len(_PROSE)] for i in range(intro_len)]
    if intro:
        intro[-1] += "\n\n"
    tokens += intro
    body_lines = code_len - 2
    code = []
    for i in range(body_lines):
        if i % 2 == 0:
            code.append(f"def step_{i // 2}(x):\n")
        else:
            code.append(f"    return x + {i // 2}\n")
    if body_lines % 2 == 1:  # never leave a function without a body
        code[-1] = f"step_{body_lines // 2} = {body_lines // 2}\n"
    tokens += ["```python\n", *code, "```\n"]
    outro = []
    for i in range(outro_len):
        word = _PROSE[(i + 3) % len(_PROSE)]
        outro.append(("\n- " if i % 3 == 0 else " ") + word)
    if outro:
        outro[-1] += "\n"
    tokens += outro
    return tokens


def answer_tokens(config: FakeConfig) -> list[str]:
    """The tokens a streaming answer has under ``config`` (when no fault hits it)."""
    if config.text is not None:
        return split_tokens(config.text)
    if config.markdown:
        return markdown_tokens(config.tokens)
    return default_tokens(config.tokens)


def _message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message)
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(len(_message_text(m).split()) + 3 for m in messages)


def _asks_for_tools(body: dict[str, Any], always: bool = False) -> bool:
    """True when the request offers tools and its last message is the user's (or, ``always``,
    a tool's result)."""
    messages = body.get("messages")
    roles = ("user", "tool") if always else ("user",)
    return (
        bool(body.get("tools"))
        and isinstance(messages, list)
        and bool(messages)
        and isinstance(messages[-1], dict)
        and messages[-1].get("role") in roles
    )


def _tool_call_chunks(calls: Sequence[dict], completion_id: str) -> list[dict]:
    """The ``tool_calls`` deltas of ``calls``, as OpenAI streams them: per call a first delta
    with its id, type and name, then its arguments in pieces of a few characters."""
    deltas: list[dict] = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call_id = f"call_{completion_id[-8:]}_{index}"
        deltas.append(
            {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
        )
        for start in range(0, len(text), 7):
            deltas.append({"index": index, "function": {"arguments": text[start : start + 7]}})
    return deltas


# --------------------------------------------------------------------------- state


class FakeState:
    """Settings and counters of one fake, shared by its server thread and the test (thread-safe).

    :meth:`reset` puts back the configuration the state was created with and zeroes the
    counters; the live gauges (``open_streams``, ``open_requests``) are left as they are.
    """

    def __init__(self, config: Optional[FakeConfig] = None, **settings: Any) -> None:
        self.initial_config = (config or FakeConfig()).replace(**settings)
        self._lock = threading.Lock()
        self._config = self.initial_config
        self._fault_remaining: Optional[int] = self._config.fault_count
        self._ids = 0
        self.closing = False
        self.open_streams = 0
        self.open_requests = 0
        self._zero()

    def _zero(self) -> None:
        self.total_requests = 0
        self.streaming_requests = 0
        self.non_streaming_requests = 0
        self.models_requests = 0
        self.completed_streams = 0
        self.cancelled_streams = 0
        self.aborted_streams = 0
        self.cancelled_requests = 0
        self.faults_injected = 0
        self.max_open_streams = self.open_streams
        self.request_bodies: deque[Any] = deque(maxlen=BODIES_KEPT)
        self.last_authorization: Optional[str] = None

    @property
    def config(self) -> FakeConfig:
        """The current settings."""
        return self._config

    def configure(self, **changes: Any) -> FakeConfig:
        """Change some settings (the others stay). Setting ``fault`` without ``fault_count``
        makes the fault hit every matching call until cleared."""
        with self._lock:
            if "fault" in changes and "fault_count" not in changes:
                changes["fault_count"] = None
            self._config = self._config.replace(**changes)
            if "fault" in changes or "fault_count" in changes:
                self._fault_remaining = self._config.fault_count
                if self._fault_remaining == 0:
                    self._config = self._config.replace(fault=None)
            return self._config

    def reset(self) -> None:
        """Back to the start configuration, counters zeroed, no fault pending."""
        with self._lock:
            self._config = self.initial_config
            self._fault_remaining = self._config.fault_count
            self._zero()

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (JSON-ready); ``config`` is the current settings."""
        with self._lock:
            return {
                "total_requests": self.total_requests,
                "streaming_requests": self.streaming_requests,
                "non_streaming_requests": self.non_streaming_requests,
                "models_requests": self.models_requests,
                "open_requests": self.open_requests,
                "open_streams": self.open_streams,
                "max_open_streams": self.max_open_streams,
                "completed_streams": self.completed_streams,
                "cancelled_streams": self.cancelled_streams,
                "aborted_streams": self.aborted_streams,
                "cancelled_requests": self.cancelled_requests,
                "faults_injected": self.faults_injected,
                "fault_remaining": self._fault_remaining if self._config.fault else 0,
                "request_bodies": list(self.request_bodies),
                "last_authorization": self.last_authorization,
                "config": self._config.to_dict(),
            }

    # -- used by the app -----------------------------------------------------------------

    def _begin(
        self, body: Any, authorization: Optional[str], streaming: bool
    ) -> tuple[FakeConfig, Optional[str]]:
        """Count a chat request; return the settings for it and the fault that hits it."""
        with self._lock:
            self.total_requests += 1
            if streaming:
                self.streaming_requests += 1
            else:
                self.non_streaming_requests += 1
            self.open_requests += 1
            self.request_bodies.append(body)
            self.last_authorization = authorization
            config = self._config
            fault = config.fault
            if fault is None or not isinstance(body, dict):
                return config, None
            target = "stream" if streaming else "route"
            if config.fault_on not in ("any", target):
                return config, None
            if self._fault_remaining is not None:
                self._fault_remaining -= 1
                if self._fault_remaining <= 0:
                    self._config = self._config.replace(fault=None)
            self.faults_injected += 1
            return config, fault

    def _end(self, disconnected: bool) -> None:
        with self._lock:
            self.open_requests -= 1
            if disconnected:
                self.cancelled_requests += 1

    def _stream_opened(self) -> None:
        with self._lock:
            self.open_streams += 1
            self.max_open_streams = max(self.max_open_streams, self.open_streams)

    def _stream_closed(self, outcome: str) -> None:
        with self._lock:
            self.open_streams -= 1
            if outcome == "completed":
                self.completed_streams += 1
            elif outcome == "cancelled":
                self.cancelled_streams += 1
            else:
                self.aborted_streams += 1

    def _next_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"chatcmpl-fake{self._ids:06d}"


class _Ledger:
    """The accounting of one request, closed at most once.

    Success paths close it *before* their last bytes go out, so a client that has just read
    the end of a response always finds the counters already updated.
    """

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.request_open = True
        self.stream_open = False

    def open_stream(self) -> None:
        self.stream_open = True
        self.state._stream_opened()

    def close(self, outcome: str = "aborted", disconnected: bool = False) -> None:
        if self.stream_open:
            self.stream_open = False
            self.state._stream_closed(outcome)
        if self.request_open:
            self.request_open = False
            self.state._end(disconnected)


# --------------------------------------------------------------------------- the app


class _DropConnection(Exception):
    """Raised after a response has started: the server closes the connection at once."""


def _is_drop(exc: Optional[BaseException]) -> bool:
    if isinstance(exc, _DropConnection):
        return True
    inner = getattr(exc, "exceptions", None)
    return bool(inner) and all(_is_drop(e) for e in inner)


class _QuietDrops(logging.Filter):
    """Keeps the server's log free of the tracebacks of deliberate connection drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_drop(record.exc_info[1]))


def _quiet_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def _error_response(fault: str, config: FakeConfig) -> JSONResponse:
    status, kind, code, message = {
        "auth": (
            401,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided (fake upstream).",
        ),
        "rate_limit": (
            429,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached (fake upstream).",
        ),
        "server_error": (
            500,
            "server_error",
            None,
            "The server had an error while processing your request (fake upstream).",
        ),
        "bad_request": (400, "invalid_request_error", None, "Invalid request (fake upstream)."),
    }[fault]
    headers = dict(_RETRY_FAST) if status in (429, 500) else {}
    if config.should_retry is not None:
        headers["x-should-retry"] = "true" if config.should_retry else "false"
    return _openai_error(status, message, kind, code, headers)


def _openai_error(
    status: int,
    message: str,
    kind: str,
    code: Optional[str] = None,
    headers: Optional[dict[str, str]] = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _pause(state: FakeState, seconds: float) -> bool:
    """Sleep; return False early if the server is shutting down."""
    if seconds <= 0:
        return not state.closing
    deadline = time.monotonic() + seconds
    while not state.closing:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(remaining, 0.1))
    return False


async def _until_disconnect(
    receive: Callable[[], Awaitable[dict]], work: Callable[[], Awaitable[str]]
) -> tuple[bool, str]:
    """Run ``work`` while watching for the client going away; cancel it if it does.

    Returns ``(disconnected, work's result or "")``.
    """
    disconnected = False
    result = ""

    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal disconnected
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected = True
                    group.cancel_scope.cancel()
                    return
                await anyio.sleep(0.01)  # an unexpected message: do not spin

        async def run() -> None:
            nonlocal result
            result = await work()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        group.start_soon(run)
    return disconnected and not result, result


def _sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class _ChatCompletions:
    """``POST /v1/chat/completions`` as a raw ASGI app, to control every byte and the socket."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        request = Request(scope, receive)
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        config, fault = self.state._begin(body, request.headers.get("authorization"), streaming)
        ledger = _Ledger(self.state)
        try:
            if not isinstance(body, dict):
                ledger.close()
                response = _openai_error(
                    400, "The request body is not a JSON object.", "invalid_request_error"
                )
                await response(scope, receive, send)
            elif fault in ("auth", "rate_limit", "server_error", "bad_request"):
                ledger.close()
                await _error_response(fault, config)(scope, receive, send)
            elif streaming:
                await self._stream(scope, body, config, fault, receive, send, ledger)
            else:
                await self._complete(scope, body, config, fault, receive, send, ledger)
        finally:
            ledger.close()

    # -- non-streaming (router) calls ----------------------------------------------------

    async def _complete(
        self,
        scope: dict,
        body: dict,
        config: FakeConfig,
        fault: Optional[str],
        receive: Callable,
        send: Callable,
        ledger: _Ledger,
    ) -> None:
        state = self.state
        wait_s = config.route_delay_ms / 1000 + (config.hang_s if fault == "timeout" else 0.0)

        async def wait() -> str:
            return "ok" if await _pause(state, wait_s) else "closing"

        disconnected, result = await _until_disconnect(receive, wait)
        if disconnected:
            ledger.close(disconnected=True)
            return
        if result == "closing":
            ledger.close()
            await _openai_error(503, "The fake upstream is shutting down.", "server_error")(
                scope, receive, send
            )
            return
        if fault == "malformed":
            ledger.close()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b"{not json"})
            return
        content = (
            config.route if config.route is not None else classify_prompt(_last_user_text(body))
        )
        completion_tokens = len(split_tokens(content))
        prompt_tokens = _prompt_tokens(body)
        payload = {
            "id": state._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "fake-model",
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        data = json.dumps(payload).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"x-request-id", payload["id"].encode()),
        ]
        if fault == "drop":  # promise the whole body, send half of it, cut the connection
            headers.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(
                {"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True}
            )
            raise _DropConnection()
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        ledger.close()
        await send({"type": "http.response.body", "body": data})

    # -- streaming (answer) calls --------------------------------------------------------

    async def _stream(
        self,
        scope: dict,
        body: dict,
        config: FakeConfig,
        fault: Optional[str],
        receive: Callable,
        send: Callable,
        ledger: _Ledger,
    ) -> None:
        state = self.state
        completion_id = state._next_id()
        created = int(time.time())
        model = body.get("model") or "fake-model"
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        calls = config.tool_calls if _asks_for_tools(body, config.tool_calls_always) else ()
        tokens = split_tokens(config.tool_text) if calls else answer_tokens(config)
        started = False

        def chunk(delta: dict, finish_reason: Optional[str] = None) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return _sse(payload)

        async def emit(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def work() -> str:
            nonlocal started
            if fault == "timeout" and not await _pause(state, config.hang_s):
                return "closing"
            headers = [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"x-request-id", completion_id.encode()),
            ]
            headers += [(k.encode(), v.encode()) for k, v in _SSE_HEADERS.items()]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            started = True
            await emit(chunk({"role": "assistant", "content": ""}))
            if not await _pause(state, config.first_token_delay_ms / 1000):
                return "closing"
            thoughts = split_tokens(config.reasoning) if config.reasoning else []
            for index, thought in enumerate(thoughts):
                if index and config.delay_ms and not await _pause(state, config.delay_ms / 1000):
                    return "closing"
                await emit(chunk({config.reasoning_field: thought}))
            if thoughts and config.delay_ms and not await _pause(state, config.delay_ms / 1000):
                return "closing"
            limit = len(tokens)
            if fault in ("drop", "error_event", "stall") and not calls:
                limit = min(limit, config.drop_after)
            elif fault == "malformed":
                limit = min(limit, 2)
            for index in range(limit):
                if index:
                    if config.delay_ms:
                        if not await _pause(state, config.delay_ms / 1000):
                            return "closing"
                    elif index % 32 == 0:
                        await asyncio.sleep(0)  # let other streams and the watcher run
                await emit(chunk({"content": tokens[index]}))
            if calls:
                pieces = _tool_call_chunks(calls, completion_id)
                if fault == "drop":  # cut in the middle of the streamed arguments
                    pieces = pieces[: config.drop_after]
                for index, delta in enumerate(pieces):
                    if index and config.delay_ms:
                        if not await _pause(state, config.delay_ms / 1000):
                            return "closing"
                    await emit(chunk({"tool_calls": [delta]}))
            if fault == "drop":
                return "drop"
            if fault == "stall" and not await _pause(state, config.hang_s):
                return "closing"  # a stream that stops mid-answer, connection open
            if fault == "error_event":  # as OpenAI and vLLM report a failure mid-answer
                ledger.close("aborted")
                error = {"message": "The model failed (fake upstream).", "type": "server_error"}
                await emit(_sse({"error": error}))
                await send({"type": "http.response.body", "body": b""})
                return "error_event"
            if fault == "malformed":
                ledger.close("aborted")
                await emit(b"data: {not json\n\n")
                await send({"type": "http.response.body", "body": b""})
                return "malformed"
            await emit(chunk({}, "tool_calls" if calls else "stop"))
            if include_usage:
                prompt_tokens = _prompt_tokens(body)
                completion_tokens = len(tokens) + len(thoughts)
                usage: dict[str, Any] = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                }
                if thoughts:
                    usage["completion_tokens_details"] = {"reasoning_tokens": len(thoughts)}
                await emit(
                    _sse(
                        {
                            "id": completion_id,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "system_fingerprint": "fp_fake",
                            "choices": [],
                            "usage": usage,
                        }
                    )
                )
            ledger.close("completed")  # before the client can see the end
            await emit(_sse("[DONE]"))
            await send({"type": "http.response.body", "body": b""})
            return "done"

        ledger.open_stream()  # a stream is open from here, through a `timeout` hang too
        disconnected, result = await _until_disconnect(receive, work)
        if disconnected:
            ledger.close("cancelled", disconnected=True)
        elif result in ("drop", "closing"):
            ledger.close("aborted")
            if not started:
                await _openai_error(503, "The fake upstream is shutting down.", "server_error")(
                    scope, receive, send
                )
                return
            raise _DropConnection()


def create_app(state: Optional[FakeState] = None) -> Starlette:
    """The fake as an ASGI app; its :class:`FakeState` is ``app.state.fake``."""
    state = state or FakeState()

    async def models(request: Request) -> Response:
        with state._lock:
            state.models_requests += 1
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "fake"}
            for m in state.config.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def get_control(request: Request) -> Response:
        return JSONResponse(state.config.to_dict())

    async def post_control(request: Request) -> Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object of settings")
            config = state.configure(**changes)
        except ValueError as exc:
            return _openai_error(400, str(exc), "invalid_request_error")
        return JSONResponse(config.to_dict())

    async def get_stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def post_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.config.to_dict())

    chat = _ChatCompletions(state)
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_control", get_control, methods=["GET"]),
            Route("/_control", post_control, methods=["POST"]),
            Route("/_stats", get_stats, methods=["GET"]),
            Route("/_reset", post_reset, methods=["POST"]),
        ]
    )
    app.state.fake = state
    return app


# --------------------------------------------------------------------------- running it


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off only for sockets it knows are
    # TCP, and without that small responses wait for a delayed ACK (tens of milliseconds).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)  # connections queue from now on, even before the server accepts
    return sock


class _Server(uvicorn.Server):
    """uvicorn, which cuts the fake's pauses and hangs short when it shuts down."""

    def __init__(self, config: uvicorn.Config, state: FakeState) -> None:
        super().__init__(config)
        self.fake_state = state

    async def shutdown(self, sockets: Optional[list[socket.socket]] = None) -> None:
        self.fake_state.closing = True
        await super().shutdown(sockets=sockets)


def _server(
    app: Starlette, http: str = "h11", log_level: str = "warning", log_config: Any = None
) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        http=http,
        loop="asyncio",
        log_level=log_level,
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    _quiet_drops()
    return _Server(config, app.state.fake)


class FakeUpstream:
    """A fake served by uvicorn in a background thread (see :func:`running_fake`)."""

    def __init__(
        self,
        state: Optional[FakeState] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> None:
        self.state = state or FakeState(**settings)
        if state is not None and settings:
            self.state.configure(**settings)
        self.app = create_app(self.state)
        self.host = host
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        """The server's root URL (the control endpoints live here)."""
        self.base_url = f"{self.url}/v1"
        """What to give ``AsyncOpenAI(base_url=...)``."""
        self._server: Optional[uvicorn.Server] = None
        self._thread: Optional[threading.Thread] = None

    def __repr__(self) -> str:
        return f"FakeUpstream({self.base_url!r})"

    def start(self, timeout: float = 10.0) -> FakeUpstream:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            return self
        self.state.closing = False
        self._server = _server(self.app)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving: in-flight streams are cut, then the thread ends."""
        if self._thread is None or self._server is None:
            self._socket.close()
            return
        self.state.closing = True
        self._server.should_exit = True
        self._thread.join(timeout)
        self._thread = None
        self._socket.close()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- driving it ----------------------------------------------------------------------

    @property
    def config(self) -> FakeConfig:
        """The current settings."""
        return self.state.config

    def control(self, **settings: Any) -> dict[str, Any]:
        """Change some settings now (see :class:`FakeConfig`); returns all of them."""
        return self.state.configure(**settings).to_dict()

    def stats(self) -> dict[str, Any]:
        """The counters (see :meth:`FakeState.stats`)."""
        return self.state.stats()

    def reset(self) -> None:
        """Start settings back, counters zeroed."""
        self.state.reset()

    def expected_tokens(self) -> list[str]:
        """The tokens the next stream will carry if no fault hits it."""
        return answer_tokens(self.state.config)

    def expected_text(self) -> str:
        """The text the next stream will carry if no fault hits it."""
        return "".join(self.expected_tokens())

    def wait_idle(self, timeout: float = 1.0) -> bool:
        """Block until no request is in flight (True), or ``timeout`` passed (False).

        Blocks the calling thread: from async code use :meth:`wait_idle_async`.
        """
        deadline = time.monotonic() + timeout
        while self.state.open_requests or self.state.open_streams:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    async def wait_idle_async(self, timeout: float = 1.0) -> bool:  # noqa: ASYNC109 (a poll of the fake's counters, not an await to time out)
        """Like :meth:`wait_idle`, without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while self.state.open_requests or self.state.open_streams:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def async_client(self, **kwargs: Any) -> Any:
        """An ``openai.AsyncOpenAI`` for this fake (``api_key="test"`` unless given)."""
        import openai

        kwargs.setdefault("api_key", "test")
        return openai.AsyncOpenAI(base_url=self.base_url, **kwargs)


@contextlib.contextmanager
def running_fake(host: str = "127.0.0.1", port: int = 0, **settings: Any) -> Iterator[FakeUpstream]:
    """Serve a fake on a free port for a ``with`` block: ``with running_fake(tokens=5) as fake:``.

    ``host`` and ``port`` (0: a free one) say where; the other keywords are settings.
    """
    with FakeUpstream(host=host, port=port, **settings) as fake:
        yield fake


class FakeRemote:
    """Drive a fake in another process through its HTTP control endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[: -len("/v1")]
        self.base_url = f"{self.url}/v1"

    def __repr__(self) -> str:
        return f"FakeRemote({self.base_url!r})"

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        import httpx

        response = httpx.request(method, self.url + path, json=payload, timeout=10.0)
        if response.status_code >= 400:
            raise ValueError(response.json().get("error", {}).get("message", response.text))
        return response.json()

    def control(self, **settings: Any) -> dict[str, Any]:
        """``POST /_control``: change some settings, returns all of them."""
        return self._call("POST", "/_control", settings)

    def config(self) -> dict[str, Any]:
        """``GET /_control``: the current settings."""
        return self._call("GET", "/_control")

    def stats(self) -> dict[str, Any]:
        """``GET /_stats``."""
        return self._call("GET", "/_stats")

    def reset(self) -> None:
        """``POST /_reset``."""
        self._call("POST", "/_reset")


@contextlib.contextmanager
def spawned_fake(*args: str, timeout: float = 15.0) -> Iterator[FakeRemote]:
    """Run this file as a separate process with CLI ``args`` (``"--tokens", "50"``), for benchmarks.

    Yields a :class:`FakeRemote` (``.base_url``, ``.control()``, ``.stats()``, ``.reset()``,
    ``.process``); the process is terminated at the end of the block.
    """
    process = subprocess.Popen(
        [sys.executable, __file__, "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while port is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("PORT="):
                port = int(line.strip().split("=", 1)[1])
        if port is None:
            raise RuntimeError("the fake OpenAI process did not print PORT=")
        remote = FakeRemote(f"http://127.0.0.1:{port}")
        remote.process = process  # type: ignore[attr-defined]
        yield remote
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A fake OpenAI-compatible chat completions server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed as PORT=<n>)"
    )
    parser.add_argument("--tokens", type=int, default=FakeConfig.tokens)
    parser.add_argument("--delay-ms", type=float, default=FakeConfig.delay_ms)
    parser.add_argument(
        "--first-token-delay-ms", type=float, default=FakeConfig.first_token_delay_ms
    )
    parser.add_argument("--route-delay-ms", type=float, default=FakeConfig.route_delay_ms)
    parser.add_argument("--text", default=None, help="exact text of streaming answers")
    parser.add_argument("--markdown", action="store_true", help="stream markdown with a code block")
    parser.add_argument("--route", default=None, help="fixed reply of router (non-streaming) calls")
    parser.add_argument(
        "--model", action="append", dest="models", help="a model /v1/models lists (repeatable)"
    )
    parser.add_argument("--fault", choices=FAULTS, default=None)
    parser.add_argument("--fault-count", type=int, default=None)
    parser.add_argument("--fault-on", choices=FAULT_TARGETS, default="any")
    parser.add_argument("--hang-s", type=float, default=FakeConfig.hang_s)
    parser.add_argument("--drop-after", type=int, default=FakeConfig.drop_after)
    parser.add_argument("--http", default="h11", help="uvicorn HTTP implementation")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The CLI: serve until killed, after printing ``PORT=<n>``."""
    args = _parse_args(argv)
    settings: dict[str, Any] = {
        "tokens": args.tokens,
        "delay_ms": args.delay_ms,
        "first_token_delay_ms": args.first_token_delay_ms,
        "route_delay_ms": args.route_delay_ms,
        "text": args.text,
        "markdown": args.markdown,
        "route": args.route,
        "fault": args.fault,
        "fault_count": args.fault_count,
        "fault_on": args.fault_on,
        "hang_s": args.hang_s,
        "drop_after": args.drop_after,
    }
    if args.models:
        settings["models"] = tuple(args.models)
    state = FakeState(**settings)
    sock = _bind(args.host, args.port)
    print(f"PORT={sock.getsockname()[1]}", flush=True)
    server = _server(
        create_app(state),
        http=args.http,
        log_level=args.log_level,
        log_config=uvicorn.config.LOGGING_CONFIG,
    )
    try:
        server.run(sockets=[sock])
    finally:
        state.closing = True
        sock.close()


if __name__ == "__main__":
    main()
