"""The model client on each of the SDK's transports, against the fake server over HTTP."""

import asyncio
import itertools
import json
from typing import Any

import httpx
import pytest
from conftest import free_port
from fake_openai import FakeUpstream

from burr_streaming_chatbot.llm import (
    OpenAIChatModel,
    Thought,
    UpstreamError,
    Usage,
    _body_reads,
    parse_chunk,
)
from burr_streaming_chatbot.settings import Settings


def model(
    upstream_url: str, transport: str, timeout_s: float = 5, frame_ms: float = 10.0
) -> OpenAIChatModel:
    settings = Settings(
        openai_base_url=upstream_url,
        openai_api_key="sk-test",
        http_transport=transport,
        max_retries=0,
        request_timeout_s=timeout_s,
        stream_frame_ms=frame_ms,
    )
    return OpenAIChatModel(settings)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_each_transport_routes_streams_and_closes(
    upstream: FakeUpstream, transport: str
) -> None:
    upstream.control(text="One two three.", delay_ms=20)
    llm = model(upstream.base_url, transport)
    try:
        assert llm.transport == transport and f"transport={transport!r}" in repr(llm)
        assert await llm.choose_mode("What is Burr?") == "answer_question"
        pieces = [
            text
            async for text in llm.stream_answer(
                "answer_question",
                [
                    {"role": "user", "content": "What is Burr?"},
                ],
            )
        ]
        assert pieces[:3] == ["One ", "two ", "three."]
        assert pieces[3:] == [
            Usage(
                prompt_tokens=pieces[3].prompt_tokens,
                completion_tokens=3,
                total_tokens=pieces[3].prompt_tokens + 3,
            )
        ]
        assert pieces[3].prompt_tokens > 0
        assert upstream.stats()["last_authorization"] == "Bearer sk-test"
    finally:
        await llm.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_refused_connection_is_unavailable_not_a_timeout(transport: str) -> None:
    llm = model(f"http://127.0.0.1:{free_port()}/v1", transport)  # nothing listens there
    try:
        with pytest.raises(UpstreamError) as raised:
            await llm.choose_mode("Anyone there?")
        assert raised.value.code == "upstream_unavailable"
    finally:
        await llm.aclose()


async def test_tokens_that_arrive_while_the_reader_is_busy_come_as_one_piece(
    upstream: FakeUpstream,
) -> None:
    """On the aiohttp transport a read returns all that arrived. (On httpx, its HTTP parser
    hands out each chunk of a chunked body on its own, so there is nothing to join.)"""
    words = [f"w{i} " for i in range(12)]
    upstream.control(text="".join(words), delay_ms=10)
    llm = model(upstream.base_url, "aiohttp")
    try:
        pieces = []
        async for text in llm.stream_answer(
            "answer_question", [{"role": "user", "content": "Hi?"}]
        ):
            pieces.append(text)
            if len(pieces) == 1:
                await asyncio.sleep(0.08)  # a busy server: about 8 tokens pile up meanwhile
        assert isinstance(pieces.pop(), Usage)
        assert "".join(pieces) == "".join(words)
        assert pieces[0] == "w0 " and len(pieces) < len(words)
        assert max(len(piece) for piece in pieces) >= len("w1 w2 w3 w4 ")
    finally:
        await llm.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("error_event", "upstream_bad_response"),  # an error chunk, as OpenAI and vLLM send one
        ("drop", "upstream_unavailable"),  # the connection cut
        ("stall", "upstream_timeout"),  # nothing more sent, connection open
    ],
)
async def test_an_answer_that_fails_mid_stream_keeps_its_text(
    upstream: FakeUpstream, transport: str, fault: str, code: str
) -> None:
    upstream.control(
        text="alpha beta gamma delta",
        fault=fault,
        drop_after=2,
        hang_s=10,
        fault_count=1,
        fault_on="stream",
    )
    llm = model(upstream.base_url, transport, timeout_s=0.5)
    try:
        pieces = []
        with pytest.raises(UpstreamError) as raised:
            async for text in llm.stream_answer(
                "answer_question", [{"role": "user", "content": "Hi?"}]
            ):
                pieces.append(text)
        assert "".join(pieces) == "alpha beta "
        assert raised.value.code == code and raised.value.retryable
    finally:
        await llm.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_a_reasoning_models_thinking_comes_first_as_thoughts_then_usage(
    upstream: FakeUpstream, transport: str, field: str
) -> None:
    upstream.control(
        text="Paris.",
        reasoning="The capital of France is Paris.",
        reasoning_field=field,
        delay_ms=5,
    )
    llm = model(upstream.base_url, transport)
    try:
        pieces = [
            p
            async for p in llm.stream_answer(
                "answer_question", [{"role": "user", "content": "Capital?"}]
            )
        ]
        usage = pieces.pop()
        thoughts = [p for p in pieces if isinstance(p, Thought)]
        texts = [p for p in pieces if not isinstance(p, Thought)]
        assert "".join(thoughts) == "The capital of France is Paris."
        assert "".join(texts) == "Paris."
        assert pieces[: len(thoughts)] == thoughts  # every thought before any text
        assert isinstance(usage, Usage) and usage.reasoning_tokens == 6
        assert usage.completion_tokens == 6 + 1
    finally:
        await llm.aclose()


async def test_without_stream_usage_nothing_is_asked_and_no_usage_comes(
    upstream: FakeUpstream,
) -> None:
    upstream.control(text="One two.")
    settings = Settings(
        openai_base_url=upstream.base_url,
        openai_api_key="sk-test",
        max_retries=0,
        stream_usage=False,
    )
    llm = OpenAIChatModel(settings)
    try:
        pieces = [
            p
            async for p in llm.stream_answer("answer_question", [{"role": "user", "content": "Hi"}])
        ]
        assert pieces and not any(isinstance(p, Usage) for p in pieces)
        assert "".join(pieces) == "One two."
    finally:
        await llm.aclose()


@pytest.mark.parametrize(
    "data",
    [
        b'{"choices":[{"index":0,"delta":{"content":"caf\\u00e9 \\"x\\"\\n"}}]}',
        '{"choices":[{"delta":{"content":"日本 \U0001f600"}}],"usage":null}'.encode(),
        b'{"a":NaN,"b":-Infinity}',  # orjson refuses these, json reads them
        b'{"s":"\\ud800"}',  # a lone surrogate: the same
        '{"content":"utf-16"}'.encode("utf-16"),  # json detects the encoding
        b'{"a":1,"a":2}',
    ],
)
def test_a_chunk_parses_as_json_loads_reads_it(data: bytes) -> None:
    parsed = parse_chunk(data)
    expected = json.loads(data)
    assert repr(parsed) == repr(expected)  # (repr: NaN is not equal to itself)


@pytest.mark.parametrize("data", [b"", b"{", b'{"a":1}x', b"\xff", b"data: {}"])
def test_a_chunk_that_is_not_json_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_chunk(data)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_the_aiohttp_transport_reads_an_answers_body_directly(
    upstream: FakeUpstream, transport: str
) -> None:
    """Each read of the body without httpx's generators in between (a read per token)."""
    upstream.control(text="One two.", delay_ms=0)
    llm = model(upstream.base_url, transport)
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "Hi?"}], "stream": True}
        response = await llm._client.post(
            "/chat/completions", body=body, cast_to=httpx.Response, stream=True
        )
        try:
            reads, _, _ = _body_reads(response)
            direct = type(reads).__module__.startswith("aiohttp")
            assert direct == (transport == "aiohttp")
            stream = b"".join([chunk async for chunk in reads])
            assert b'"content":"One "' in stream and stream.endswith(b"data: [DONE]\n\n")
        finally:
            await response.aclose()
    finally:
        await llm.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_slow_answer_that_keeps_coming_outlasts_the_read_timeout(
    upstream: FakeUpstream, transport: str
) -> None:
    """The read timeout is for a silence: 16 tokens 0.1 s apart take three times as long."""
    words = [f"w{i} " for i in range(16)]
    upstream.control(text="".join(words), delay_ms=100)
    llm = model(upstream.base_url, transport, timeout_s=0.5)
    try:
        pieces = [
            piece
            async for piece in llm.stream_answer(
                "answer_question", [{"role": "user", "content": "Hi?"}]
            )
            if isinstance(piece, str)
        ]
        assert "".join(pieces) == "".join(words)
    finally:
        await llm.aclose()


async def _timed_pieces(llm: OpenAIChatModel) -> list[tuple[float, str]]:
    loop = asyncio.get_running_loop()
    return [
        (loop.time(), piece)
        async for piece in llm.stream_answer(
            "answer_question", [{"role": "user", "content": "Hi?"}]
        )
        if isinstance(piece, str)
    ]


async def test_a_quick_answer_goes_on_at_most_once_a_frame(upstream: FakeUpstream) -> None:
    """80 tokens 2 ms apart, a 20 ms frame: the first piece at once, then no two pieces closer
    than the frame (what came meanwhile goes on with the next piece), and every token once,
    in order."""
    words = [f"w{i} " for i in range(80)]
    upstream.control(text="".join(words), delay_ms=2)
    llm = model(upstream.base_url, "aiohttp", frame_ms=20)
    try:
        pieces = await _timed_pieces(llm)
    finally:
        await llm.aclose()
    assert "".join(text for _, text in pieces) == "".join(words)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(pieces)]
    assert gaps and min(gaps) >= 0.019, gaps
    assert len(pieces) <= 40  # (160 ms of tokens in frames of 20 ms, and a first piece)


async def _pieces_before_a_drop(
    upstream: FakeUpstream, drop_after: int, frame_ms: float, busy_s: float = 0.0
) -> tuple[list[Any], UpstreamError]:
    """Stream "alpha beta gamma delta" (5 ms apart) on the aiohttp transport, the connection
    cut after ``drop_after`` tokens; the reader is away ``busy_s`` after the first piece.
    Returns the pieces and the error the answer ended with."""
    upstream.control(
        text="alpha beta gamma delta",
        delay_ms=5,
        fault="drop",
        drop_after=drop_after,
        fault_count=1,
        fault_on="stream",
    )
    llm = model(upstream.base_url, "aiohttp", frame_ms=frame_ms)
    pieces: list[Any] = []
    try:
        with pytest.raises(UpstreamError) as raised:
            async for text in llm.stream_answer(
                "answer_question", [{"role": "user", "content": "Hi?"}]
            ):
                pieces.append(text)
                if len(pieces) == 1 and busy_s:
                    await asyncio.sleep(busy_s)
    finally:
        await llm.aclose()
    return pieces, raised.value


async def test_a_drop_during_a_frame_keeps_what_came_before_it(upstream: FakeUpstream) -> None:
    """The connection cut while a read waits for its frame's end: the text read before the cut
    still goes on, then the error."""
    pieces, error = await _pieces_before_a_drop(upstream, drop_after=2, frame_ms=100)
    assert pieces == ["alpha ", "beta "]
    assert error.code == "upstream_unavailable"


async def test_text_that_came_during_a_frame_before_a_drop_still_goes_on(
    upstream: FakeUpstream,
) -> None:
    """The third token arrives while the second waits for its frame's end, and the connection
    is cut just after it: aiohttp's reads raise at once then and leave that token in their
    buffer; it is the model's text, so it goes on, then the error."""
    pieces, error = await _pieces_before_a_drop(upstream, drop_after=3, frame_ms=100)
    assert "".join(pieces) == "alpha beta gamma "
    assert error.code == "upstream_unavailable"


@pytest.mark.parametrize("frame_ms", [0, 10])
async def test_text_that_piled_up_before_a_drop_while_the_reader_was_busy_goes_on(
    upstream: FakeUpstream, frame_ms: float
) -> None:
    """A busy server (the reader away 0.3 s after the first piece) while the model sends two
    more tokens and the connection is cut: the next read fails at once, but the two tokens
    that came before the cut still go on, then the error."""
    pieces, error = await _pieces_before_a_drop(upstream, 3, frame_ms, busy_s=0.3)
    assert "".join(pieces) == "alpha beta gamma "
    assert error.code == "upstream_unavailable"
