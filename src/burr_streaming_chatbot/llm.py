"""LLM access: one shared ``AsyncOpenAI`` client per process, or the offline demo model.

Both speak the same small interface, :class:`ChatModel`, so the graph never knows which one
answers. Upstream failures become :class:`UpstreamError`, whatever SDK raised them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Union

import httpx
import openai
import orjson

from .settings import Settings, public_url
from .sse import EventDecoder
from .wire import MODES, ErrorCode

try:  # openai 3 sends its requests through httpx2, earlier versions through httpx
    import httpx2
except ImportError:  # pragma: no cover - depends on the SDK's version
    httpx2 = None  # type: ignore[assignment]

try:  # the SDK's aiohttp transport, whose error mapping direct reads of its bodies reuse
    from openai._vendor.httpx_aiohttp.transport import (
        map_aiohttp_exceptions as _map_aiohttp_errors,
    )
except ImportError:  # pragma: no cover - depends on the SDK's version
    _map_aiohttp_errors = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]
"""A message of the history: ``role`` and ``content`` are what a model gets (stored messages
carry more, such as ``mode`` and ``interrupted``)."""

ROUTER_INSTRUCTIONS = (
    "You route the user's message to one mode of a chatbot. The modes are: "
    "answer_question (a question to answer, or a task to do with tools such as arithmetic, "
    "the time or saving a note), generate_poem (a request for a poem), "
    "generate_code (a request for code), unknown (anything else). "
    "Reply with only the name of one mode and nothing else."
)

MODE_INSTRUCTIONS: dict[str, str] = {
    "answer_question": "Answer the user's question clearly and concisely. Use markdown.",
    "generate_poem": "Write a short poem about what the user asks for.",
    "generate_code": (
        "Answer with code only, in one fenced markdown code block with its language, "
        "and no other text."
    ),
}

OFFLINE_HELP = (
    "No LLM is configured, so the offline demo model answers. To use a real model, set "
    "OPENAI_API_KEY (OpenAI), or OPENAI_BASE_URL for any OpenAI-compatible server such as "
    "Ollama (http://localhost:11434/v1), vLLM or llama.cpp, and optionally "
    "BURR_CHATBOT_ANSWER_MODEL and BURR_CHATBOT_ROUTER_MODEL; then restart the server."
)


LIST_MODELS_TIMEOUT_S = 10.0
"""The longest :meth:`OpenAIChatModel.list_models` waits for the model server (a page asks for
the list when it opens; an answer model that is configured answers meanwhile)."""


class Thought(str):
    """A piece of a reasoning model's thinking, streamed before its answer (a ``str``, so it
    travels wherever the answer's text does; its type tells it apart)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens one answer cost, as the model server counted them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reasoning_tokens: Optional[int] = None
    """The part of ``completion_tokens`` spent thinking (None when the server does not say)."""

    def as_dict(self) -> dict[str, Optional[int]]:
        """The counts as a dict (for Burr's state and the wire)."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class ToolCallPiece:
    """A piece of a tool call the model is making: its first piece has ``id`` and ``name``,
    every piece may carry more of its ``arguments`` (JSON text). ``index`` tells the calls of
    one answer apart (a model may make several at once)."""

    index: int
    id: Optional[str]
    name: Optional[str]
    arguments: str


Piece = Union[str, Usage, ToolCallPiece]
"""What an answer streams: its text (a :class:`Thought` while the model thinks), the tool calls
it makes (:class:`ToolCallPiece`), then, when the server reports it, one :class:`Usage` last."""

REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where servers put a model's thinking in a streamed delta: vLLM and DeepSeek send
``reasoning_content``, Ollama's and llama.cpp's OpenAI endpoints ``reasoning``."""


class UpstreamError(Exception):
    """The model could not answer. ``code`` and ``retryable`` go to the client as they are."""

    def __init__(self, code: ErrorCode, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.retryable = retryable


class ChatModel(Protocol):
    """What the graph and the server need from a model."""

    router_name: str
    answer_name: str
    offline: bool
    base_url: Optional[str]
    """The OpenAI-compatible endpoint (None for the offline model)."""

    async def choose_mode(self, prompt: str) -> str:
        """Return one of :data:`~burr_streaming_chatbot.wire.MODES` for the prompt."""
        ...

    def stream_answer(
        self,
        mode: str,
        history: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] = (),
        *,
        model: Optional[str] = None,
        system_prompt: Optional[str] = None,
        temperature: Optional[float] = None,
    ) -> AsyncIterator[Piece]:
        """Yield the answer in pieces, for the mode and the conversation so far: text (a
        :class:`Thought` while the model thinks), the calls it makes to ``tools`` (OpenAI
        ``tools`` definitions) as :class:`ToolCallPiece` s, and last its :class:`Usage` if
        known. ``model``, ``system_prompt`` and ``temperature`` are the conversation's choices
        (None: :attr:`answer_name`, the mode's instructions alone, the server's default)."""
        ...

    async def list_models(self) -> list[str]:
        """The names of the models the model server serves (:class:`UpstreamError` when it
        cannot say)."""
        ...

    async def aclose(self) -> None:
        """Release what the model holds (its HTTP connections)."""
        ...


def parse_mode(text: str) -> str:
    """Read a mode out of a router model's reply; ``unknown`` when there is none."""
    words = re.findall(r"[a-z_]+", text.lower())
    for word in words:
        if word in MODES:
            return word
    return "unknown"


def answer_messages(
    mode: str, history: Sequence[Message], system_prompt: Optional[str] = None
) -> list[dict[str, Any]]:
    """The messages sent for an answer: the mode's instructions (after the conversation's own
    ``system_prompt``, when it has one, in the same system message), then the conversation,
    with an answer's tool calls and the tools' results as OpenAI's chat API has them. A tool
    result whose call is not among the messages (the history was cut before it) is left out:
    the API refuses it."""
    instructions = MODE_INSTRUCTIONS.get(mode, "")
    if system_prompt:
        instructions = f"{system_prompt}\n\n{instructions}" if instructions else system_prompt
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}]
    called: set[str] = set()
    for m in history:
        if m["role"] == "tool":
            if m.get("tool_call_id") in called:
                messages.append(
                    {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
                )
            continue
        message: dict[str, Any] = {"role": m["role"], "content": m["content"]}
        calls = m.get("tool_calls")
        if calls:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for call in calls
            ]
            called.update(call["id"] for call in calls)
        messages.append(message)
    answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    for message in messages:
        calls = message.get("tool_calls")
        if calls and any(call["id"] not in answered for call in calls):
            # (a call whose result was never stored, e.g. its process died: the API refuses it)
            kept = [call for call in calls if call["id"] in answered]
            if kept:
                message["tool_calls"] = kept
            else:
                del message["tool_calls"]
    return messages


def _caused_by_connection_error(exc: BaseException) -> bool:
    """True when a connection error (refused, reset) is among the causes of ``exc``: the aiohttp
    transport reports a refused connection as a connect *timeout*."""
    seen: set[int] = set()
    cause: Optional[BaseException] = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


_FAILURES = (
    openai.OpenAIError,  # the SDK's requests map their transport's errors; the answer's reads too
    ValueError,
    LookupError,
    TypeError,
    AttributeError,  # the last four: a response that is not the JSON it should be
)
"""What a model call can raise; :func:`_upstream_error` turns each into an ``UpstreamError``."""

_READ_TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException,) + (
    (httpx2.TimeoutException,) if httpx2 is not None else ()
)
_READ_FAILURES: tuple[type[BaseException], ...] = (httpx.RequestError, ssl.SSLError) + (
    (httpx2.RequestError,) if httpx2 is not None else ()
)
"""What reading a streamed response's body can raise, on either transport, whichever of
httpx and httpx2 the SDK uses; :meth:`OpenAIChatModel.stream_answer` maps them to the SDK's errors, as the
SDK's own reader does."""


def _upstream_error(exc: BaseException) -> UpstreamError:
    """Turn an SDK or transport exception into an :class:`UpstreamError` (no secrets in it)."""
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return UpstreamError(
            "upstream_auth", "The model server refused the API key (check OPENAI_API_KEY).", False
        )
    if isinstance(exc, openai.RateLimitError):
        return UpstreamError(
            "upstream_rate_limit", "The model server is rate limiting; try again shortly.", True
        )
    if isinstance(exc, openai.APITimeoutError) and not _caused_by_connection_error(exc):
        return UpstreamError("upstream_timeout", "The model server did not answer in time.", True)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError(
            "upstream_unavailable", "The connection to the model server failed.", True
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return UpstreamError(
                "upstream_unavailable",
                f"The model server failed (HTTP {exc.status_code}).",
                True,
            )
        return UpstreamError(
            "upstream_bad_request",
            f"The model server rejected the request (HTTP {exc.status_code}).",
            False,
        )
    return UpstreamError(
        "upstream_bad_response", "The model server sent a response that could not be read.", True
    )


def _aiohttp_client() -> Any:
    """The SDK's aiohttp transport (``openai[aiohttp]``), or None where it is missing (an SDK
    older than the transport, or aiohttp not installed): then the SDK's default one is used.

    Streaming is where it shows: the SDK's share of the server's CPU per streamed turn is about
    a third lower (``benchmarks/profile_server.py``; figures in ``benchmarks/RESULTS.md``,
    "Streaming performance, second round")."""
    factory = getattr(openai, "DefaultAioHttpClient", None)
    if factory is None:
        return None
    try:
        return factory()
    except RuntimeError:  # the SDK says aiohttp is not installed
        logger.warning("aiohttp is not installed; the OpenAI SDK's default transport is used")
        return None


class _AnswerReader:
    """Reads the answer in a streamed chat completion, a network read at a time: what one read
    brought of the model's thinking comes out as one :class:`Thought`, what it brought of the
    answer as one ``str`` (in the order they came), and the usage chunk as a :class:`Usage`.

    :meth:`OpenAIChatModel.stream_answer` hands it each read (one generator between the
    network and the answer step, not two: there is a read per token)."""

    __slots__ = ("decoder", "done", "response")

    def __init__(self, response: Any) -> None:
        self.response = response
        self.decoder = EventDecoder()
        self.done = False
        """``[DONE]`` came: the rest of the body is read (so the connection can be reused)
        and ignored."""

    def read(self, chunk: bytes) -> tuple[list[Piece], Optional[Exception]]:
        """The pieces in one read, and the failure after them (the text before a failure in
        the same read still counts)."""
        pieces: list[Piece] = []
        if self.done:
            return pieces, None
        for event in self.decoder.feed(chunk):
            if event.data.startswith(b"[DONE]"):
                self.done = True
                break
            if event.name not in ("", "error"):
                continue  # not a completion chunk
            try:
                _add_chunk(pieces, parse_chunk(event.data), self.response)
            except _FAILURES as exc:
                return pieces, exc
        return pieces, None


Arrived = Callable[[], tuple[bytes, Optional[BaseException]]]
"""What has come since the last read, taken without waiting, and the failure that followed it
(None: none so far)."""


def _body_reads(
    response: Any,
) -> tuple[AsyncIterator[bytes], contextlib.AbstractContextManager[Any], Optional[Arrived]]:
    """The body's network reads, a context to read them in (it turns the transport's errors
    into httpx's, and keeps the read timeout), and an :data:`Arrived` for what has come since
    the last read (None where the transport cannot say).

    On the SDK's aiohttp transport, a body sent without a content coding is read from aiohttp
    itself: through httpx's response it passes three more generators per read (and there is
    a read per token), which do nothing to such a body; and its read timeout is kept by a
    :class:`_ReadWatch` (see there). The errors are mapped as the transport maps them.
    Elsewhere (httpx's own transport, a compressed body, a transport whose insides are not as
    expected): httpx's ``aiter_bytes``."""
    stream = getattr(getattr(response, "stream", None), "_stream", None)
    aiohttp_response = getattr(stream, "_aiohttp_response", None)
    content = getattr(aiohttp_response, "content", None)
    if (
        _map_aiohttp_errors is None
        or content is None
        or not hasattr(content, "iter_any")
        or response.headers.get("content-encoding", "identity") != "identity"
    ):
        return response.aiter_bytes(), contextlib.nullcontext(), None
    return content.iter_any(), _aiohttp_reads(aiohttp_response), _arrived(content)


def _arrived(content: Any) -> Arrived:
    """:data:`Arrived` for an aiohttp body. Once the connection has failed, aiohttp's own
    reads raise at once and leave what came before the failure in its buffer; that text is
    the model's too, so it is taken from the buffer here (a private part of aiohttp: where it
    is not there, the text is lost as it would be with aiohttp's reads)."""

    def arrived() -> tuple[bytes, Optional[BaseException]]:
        failure = content.exception()
        if failure is None:
            return content.read_nowait(), None
        try:
            return bytes(content._read_nowait(-1)), failure
        except Exception:
            return b"", failure

    return arrived


@contextlib.contextmanager
def _aiohttp_reads(aiohttp_response: Any) -> Iterator[None]:
    watch = _ReadWatch.start(aiohttp_response)
    try:
        with _map_aiohttp_errors():
            yield
    finally:
        if watch is not None:
            watch.cancel()


class _ReadWatch:
    """A streamed body's read timeout (nothing read for that long: the read fails with
    aiohttp's own ``SocketTimeoutError``), checked :attr:`CHECKS` times per period.

    aiohttp keeps it by cancelling a timer and starting another on every read that brings
    data, a few microseconds each, and there is a read per token: 3 to 4% of this server's CPU
    on long answers (``benchmarks/RESULTS.md``, issue 25). Here the count of bytes read is
    compared now and then instead; a stalled stream fails within one period and an eighth of
    it, instead of one period."""

    CHECKS = 8

    __slots__ = ("content", "handle", "loop", "quiet", "seen", "step", "timeout")

    @classmethod
    def start(cls, aiohttp_response: Any) -> Optional[_ReadWatch]:
        """Take over the read timeout of the connection ``aiohttp_response`` is read from
        (None: it has none, or the body has no connection left to wait on)."""
        connection = getattr(aiohttp_response, "connection", None)
        protocol: Any = getattr(connection, "protocol", None)
        timeout = getattr(protocol, "read_timeout", None)
        if not timeout:
            return None
        protocol.read_timeout = None  # (the timer it has running is cancelled at its next read)
        return cls(aiohttp_response.content, timeout)

    def __init__(self, content: Any, timeout: float) -> None:
        self.content = content
        self.timeout = timeout
        self.step = timeout / self.CHECKS
        self.seen = content.total_bytes
        self.quiet = 0
        self.loop = asyncio.get_running_loop()
        self.handle: Optional[asyncio.TimerHandle] = self.loop.call_later(self.step, self._check)

    def _check(self) -> None:
        total = self.content.total_bytes
        if total != self.seen:
            self.seen, self.quiet = total, 0
        else:
            self.quiet += 1
            if self.quiet >= self.CHECKS:
                from aiohttp import SocketTimeoutError  # (there when this transport is)

                self.handle = None
                self.content.set_exception(
                    SocketTimeoutError("Timeout on reading data from socket")
                )
                return
        self.handle = self.loop.call_later(self.step, self._check)

    def cancel(self) -> None:
        """The body is read (or given up): stop watching."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def parse_chunk(data: bytes) -> Any:
    """One event's JSON, as ``json.loads`` reads it: parsed by orjson (about a fifth of the
    CPU, and there is one parse per token), or by ``json`` where orjson refuses what ``json``
    accepts (``NaN``, lone surrogates, other encodings than UTF-8). Raises ``ValueError`` for
    what is not JSON. (One difference is left: orjson reads an integer past 64 bits as a
    float; no field read here is one.)"""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _add_chunk(pieces: list[Piece], chunk: Any, response: Any) -> None:
    """Add what one chunk of a streamed chat completion says to ``pieces``, joined to the last
    piece when it is text of the same kind. An ``error`` chunk raises, as the SDK does."""
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, Mapping) else None
        raise openai.APIError(
            message=message
            if isinstance(message, str) and message
            else "An error occurred during streaming",
            request=response.request,
            body=error,
        )
    choices = chunk.get("choices")
    if choices:
        delta = choices[0].get("delta") or {}
        for field in REASONING_FIELDS:
            thought = delta.get(field)
            if thought:
                _join(pieces, Thought(without_nul(thought)))
                break
        text = delta.get("content")
        if text:
            _join(pieces, without_nul(text))
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            pieces.append(
                ToolCallPiece(
                    index=int(call.get("index") or 0),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=without_nul(function.get("arguments") or ""),
                )
            )
    usage = chunk.get("usage")
    if usage:
        details = usage.get("completion_tokens_details") or {}
        pieces.append(
            Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                total_tokens=int(usage.get("total_tokens") or 0),
                reasoning_tokens=details.get("reasoning_tokens"),
            )
        )


def without_nul(text: str) -> str:
    """``text`` with each NUL character replaced by U+FFFD: PostgreSQL's JSON refuses NUL, and
    what is streamed must be what is stored (prompts with NUL are refused, :mod:`.service`)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _join(pieces: list[Piece], text: str) -> None:
    last = pieces[-1] if pieces else None
    if isinstance(last, str) and type(last) is type(text):
        pieces[-1] = type(text)(last + text)
    else:
        pieces.append(text)


class OpenAIChatModel:
    """Any OpenAI-compatible endpoint through one shared ``AsyncOpenAI`` client."""

    offline = False

    def __init__(self, settings: Settings) -> None:
        self.router_name = settings.router_model
        self.answer_name = settings.answer_model
        self.base_url = settings.openai_base_url
        self.history_messages = settings.history_messages
        self.stream_usage = settings.stream_usage
        self.request_timeout_s = settings.request_timeout_s
        self.frame_s = settings.stream_frame_ms / 1000
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        # A local server (Ollama, vLLM, llama.cpp) needs no key, but the SDK insists on one.
        self.transport = "httpx"
        http_client = None
        if settings.http_transport == "aiohttp":
            http_client = _aiohttp_client()
            self.transport = "aiohttp" if http_client is not None else "httpx"
        self._client = openai.AsyncOpenAI(
            api_key=key or "not-needed",
            base_url=settings.openai_base_url,
            timeout=openai.Timeout(settings.request_timeout_s, connect=10.0),
            max_retries=settings.max_retries,
            **({"http_client": http_client} if http_client is not None else {}),
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(answer={self.answer_name!r}, "
            f"base_url={public_url(self.base_url) if self.base_url else None!r}, "
            f"transport={self.transport!r})"
        )

    async def choose_mode(self, prompt: str) -> str:
        """Ask the router model for a mode (one non-streaming call)."""
        body = {
            "model": self.router_name,
            "messages": [
                {"role": "system", "content": ROUTER_INSTRUCTIONS},
                {"role": "user", "content": prompt},
            ],
        }
        try:
            completion = await self._client.post("/chat/completions", body=body, cast_to=object)
            text = completion["choices"][0]["message"]["content"] or ""  # type: ignore[index]
        except _FAILURES as exc:
            raise _upstream_error(exc) from None
        return parse_mode(str(text))

    async def list_models(self) -> list[str]:
        """The ids ``GET /models`` lists, through the shared client (waiting at most
        :data:`LIST_MODELS_TIMEOUT_S`); :class:`UpstreamError` when the server fails or sends
        something else."""
        try:
            timeout = min(LIST_MODELS_TIMEOUT_S, self.request_timeout_s)
            listed = await self._client.get("/models", cast_to=object, options={"timeout": timeout})
            return [str(entry["id"]) for entry in listed["data"]]  # type: ignore[index]
        except _FAILURES as exc:
            raise _upstream_error(exc) from None

    async def stream_answer(
        self,
        mode: str,
        history: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] = (),
        *,
        model: Optional[str] = None,
        system_prompt: Optional[str] = None,
        temperature: Optional[float] = None,
    ) -> AsyncIterator[Piece]:
        """Stream the answer model's reply (thinking, text, tool calls, usage); closing this generator closes the upstream request.
        ``model``, ``system_prompt`` and ``temperature``: the conversation's choices (None:
        the configured answer model, the mode's instructions alone, no ``temperature`` sent).

        The SDK sends the request (errors, retries, timeouts, auth), but the body goes as built,
        and the response's events are read here, a network read at a time: every token that
        one read brings comes out as one piece. A server that keeps up sees one token per
        read; one that falls behind handles the tokens that piled up together, which keeps
        its deltas on time. (The SDK's typed request transform and chunk models cost more
        CPU than the rest of a turn together, and its reader hands out one event per
        ``await``.)

        Pieces go on at most once a frame (:attr:`.Settings.stream_frame_ms`): a read that
        comes sooner after the last piece waits for the frame's end, and goes on with all that
        came meanwhile. A model that sends a token every 2 ms then costs the answer step, the
        turn's bookkeeping and the socket write once per frame, not once per token; a token
        waits at most a frame (the page draws once a frame anyway), and the first goes at once.
        """
        body: dict[str, Any] = {
            "model": model or self.answer_name,
            "messages": answer_messages(mode, history[-self.history_messages :], system_prompt),
            "stream": True,
        }
        if temperature is not None:
            body["temperature"] = temperature
        if tools:
            body["tools"] = list(tools)
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        try:
            # The HTTP response itself, its body unread: the SDK's stream object around it
            # would only add a reader and a decoder that go unused.
            response: Any = await self._client.post(
                "/chat/completions", body=body, cast_to=httpx.Response, stream=True
            )
            try:
                reader = _AnswerReader(response)
                reads, errors, arrived = _body_reads(response)
                frame = self.frame_s if arrived is not None else 0.0
                loop = asyncio.get_running_loop()
                handed_on = -frame  # (when the last piece went on)
                try:
                    with errors:
                        while True:
                            failure: Optional[BaseException] = None
                            try:
                                chunk = await reads.__anext__()
                            except StopAsyncIteration:
                                break
                            except Exception as exc:  # what came before the failure counts
                                chunk = arrived()[0] if arrived is not None else b""
                                if not chunk:
                                    raise
                                failure = exc
                            else:
                                early = handed_on + frame - loop.time() if frame else 0.0
                                if early > 0:
                                    await asyncio.sleep(early)
                                    more, failure = arrived()  # type: ignore[misc]
                                    chunk += more
                            pieces, bad_chunk = reader.read(chunk)
                            for piece in pieces:
                                yield piece
                            if pieces:
                                handed_on = loop.time()
                            failure = bad_chunk or failure
                            if failure is not None:
                                raise failure
                except _READ_TIMEOUTS as exc:
                    raise openai.APITimeoutError(request=response.request) from exc
                except _READ_FAILURES as exc:
                    raise openai.APIConnectionError(request=response.request) from exc
            finally:
                await response.aclose()
        except _FAILURES as exc:
            raise _upstream_error(exc) from None

    async def aclose(self) -> None:
        """Close the shared HTTP connection pool."""
        await self._client.close()


_OFFLINE_KEYWORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("generate_poem", frozenset({"poem", "poems", "poetry", "haiku", "verse", "rhyme"})),
    (
        "generate_code",
        frozenset({"code", "function", "script", "program", "python", "javascript", "sql"}),
    ),
    (
        "answer_question",
        frozenset({"?", "what", "why", "how", "who", "when", "where", "explain"}),
    ),
)
"""The offline router's keywords per mode, matched as whole words ("reverse" is no "verse")."""

_ARITHMETIC = re.compile(r"[-+(]*\d[\d.\s]*(?:[-+*/%^×÷]+[\s(]*[-+]?\d[\d.\s)]*)+")
_TIME = re.compile(r"\btime\b", re.IGNORECASE)
_PLACE = re.compile(r"\bin\s+([A-Za-z][A-Za-z_/ -]*?)\s*[?.!]*$", re.IGNORECASE)
_NOTE = re.compile(
    r"^\s*(?:please\s+)?(?:remember|note|save\s+a\s+note)\b[\s:,]*(?:that\s+|to\s+)?(.+)$",
    re.IGNORECASE | re.DOTALL,
)
_PLACES = {
    "tokyo": "Asia/Tokyo",
    "japan": "Asia/Tokyo",
    "london": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "new york": "America/New_York",
    "san francisco": "America/Los_Angeles",
    "los angeles": "America/Los_Angeles",
    "sydney": "Australia/Sydney",
    "utc": "UTC",
}


def offline_tool_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the offline model makes for a prompt, as ``(tool, arguments)``:
    ``save_note`` for "remember ..." or "note ...", ``calculator`` for arithmetic,
    ``current_time`` when it asks the time (in a place it names)."""
    note = _NOTE.match(prompt)
    if note:
        return [("save_note", {"text": note.group(1).strip()})]
    calls: list[tuple[str, dict[str, Any]]] = []
    for match in _ARITHMETIC.finditer(prompt):
        expression = " ".join(match.group(0).split()).replace("×", "*").replace("÷", "/")
        calls.append(("calculator", {"expression": expression.replace("^", "**")}))
    if _TIME.search(prompt):
        place = _PLACE.search(prompt)
        if place is None:
            calls.append(("current_time", {}))
        else:
            name = place.group(1).strip()
            zone = _PLACES.get(name.lower(), name if "/" in name else name.title())
            calls.append(("current_time", {"timezone": zone}))
    return calls


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9_]+|\?", text.lower()))


def offline_result_text(results: Sequence[Message]) -> str:
    """What the offline model answers once its tools answered: one sentence per result."""
    sentences = []
    for message in results:
        name = message.get("name", "the tool")
        status = message.get("status", "ok")
        if status == "denied":
            reason = message.get("reason")
            sentences.append(
                f"You denied `{name}`, so I did not run it"
                + (f" (your reason: {reason})." if reason else ".")
            )
            continue
        if status != "ok":
            sentences.append(f"The `{name}` tool failed: {message['content']}")
            continue
        try:
            value = json.loads(message["content"])
        except ValueError:
            value = message["content"]
        sentences.append(_result_sentence(name, value))
    return " ".join(sentences) + "\n\n*(The offline demo model called these tools.)*"


def _result_sentence(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        if name == "calculator" and "result" in value:
            return f"{value.get('expression', '')} = **{value['result']}**."
        if name == "current_time" and "iso" in value:
            weekday = f", {value['weekday']}" if value.get("weekday") else ""
            return f"In {value.get('timezone', 'UTC')} it is {value['iso']}{weekday}."
        if name == "save_note" and "text" in value:
            return f"I saved the note: “{value['text']}”."
    return f"`{name}` returned {json.dumps(value, ensure_ascii=False)}."


_OFFLINE_ANSWERS: dict[str, str] = {
    "answer_question": (
        "**This is the offline demo model**, not a real LLM, so it cannot really answer "
        "your question. It routed your message to `answer_question` by keywords, and this "
        "text streamed through every layer a real answer takes: a Burr streaming action, "
        "FastAPI server-sent events, and the React page.\n\n"
    ),
    "generate_poem": (
        "*This is the offline demo model, so the poem is canned:*\n\n"
        "No key was set, no network near,\n"
        "yet tokens stream and land right here;\n"
        "a Burr graph hums from node to node:\n"
        "configure a model to lift this load.\n\n"
    ),
    "generate_code": (
        "This is the offline demo model: it routed you to `generate_code` and answers with "
        "a fixed example.\n\n"
        "```python\n"
        "from openai import AsyncOpenAI\n\n"
        "client = AsyncOpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL\n"
        "```\n\n"
    ),
}


class OfflineChatModel:
    """A model that needs no key and no network: it routes by keywords and says what it is."""

    offline = True
    router_name = "offline-demo-router"
    answer_name = "offline-demo"
    base_url: Optional[str] = None

    def __init__(self, delay_s: float = 0.025) -> None:
        self.delay_s = delay_s

    def __repr__(self) -> str:
        return "OfflineChatModel()"

    async def choose_mode(self, prompt: str) -> str:
        """Pick a mode from whole-word keywords in the prompt (a prompt for a tool: a question)."""
        if offline_tool_calls(prompt):
            return "answer_question"
        words = _words(prompt)
        for mode, keywords in _OFFLINE_KEYWORDS:
            if words & keywords:
                return mode
        return "unknown"

    async def list_models(self) -> list[str]:
        """The offline model alone."""
        return [self.answer_name]

    async def stream_answer(
        self,
        mode: str,
        history: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] = (),
        *,
        model: Optional[str] = None,
        system_prompt: Optional[str] = None,
        temperature: Optional[float] = None,
    ) -> AsyncIterator[Piece]:
        """Stream an answer word by word, with a short pause between words: the tool calls
        the prompt asks for (when ``tools`` has them), then, once they answered, what they
        said; else a fixed text for the mode. (``model``, ``system_prompt`` and
        ``temperature`` change nothing: the offline model has no choices.)"""
        offered = {tool["function"]["name"] for tool in tools}
        results = _trailing_results(history)
        if results:
            async for piece in self._words(offline_result_text(results)):
                yield piece
            return
        last = history[-1] if history else None
        calls = [
            (name, arguments)
            for name, arguments in (
                offline_tool_calls(str(last["content"]))
                if last is not None and last["role"] == "user"
                else []
            )
            if name in offered
        ]
        if calls:
            names = ", ".join(f"`{name}`" for name, _ in calls)
            async for piece in self._words(f"Let me use {names} for that. "):
                yield piece
            for index, (name, arguments) in enumerate(calls):
                call_id = f"call_offline_{secrets.token_hex(6)}"
                yield ToolCallPiece(index=index, id=call_id, name=name, arguments="")
                text = json.dumps(arguments, ensure_ascii=False)
                half = len(text) // 2  # (in two pieces, as a model streams them)
                for part in (text[:half], text[half:]):
                    if self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    yield ToolCallPiece(index=index, id=None, name=None, arguments=part)
            return
        text = _OFFLINE_ANSWERS.get(mode, _OFFLINE_ANSWERS["answer_question"]) + OFFLINE_HELP
        async for piece in self._words(text):
            yield piece

    async def _words(self, text: str) -> AsyncIterator[str]:
        for piece in re.findall(r"\S+\s*|\s+", text):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield piece

    async def aclose(self) -> None:
        """Nothing to close."""


def _trailing_results(history: Sequence[Message]) -> list[Message]:
    """The tool messages at the end of the history (the results of the last calls)."""
    results: list[Message] = []
    for message in reversed(history):
        if message["role"] != "tool":
            break
        results.append(message)
    return results[::-1]


def create_chat_model(settings: Settings) -> ChatModel:
    """The model the settings ask for: offline when nothing is configured."""
    if settings.uses_offline_model:
        return OfflineChatModel(delay_s=settings.offline_delay_ms / 1000)
    return OpenAIChatModel(settings)
