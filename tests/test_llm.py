"""The model client on each of the SDK's transports, against the fake server over HTTP."""

import asyncio

import pytest

from conftest import free_port
from fake_openai import FakeUpstream
from burr_streaming_chatbot.llm import OpenAIChatModel, UpstreamError
from burr_streaming_chatbot.settings import Settings


def model(upstream_url: str, transport: str, timeout_s: float = 5) -> OpenAIChatModel:
    settings = Settings(
        openai_base_url=upstream_url, openai_api_key="sk-test", http_transport=transport,
        max_retries=0, request_timeout_s=timeout_s,
    )
    return OpenAIChatModel(settings)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_each_transport_routes_streams_and_closes(upstream: FakeUpstream, transport: str) -> None:
    upstream.control(text="One two three.", delay_ms=20)
    llm = model(upstream.base_url, transport)
    try:
        assert llm.transport == transport and f"transport={transport!r}" in repr(llm)
        assert await llm.choose_mode("What is Burr?") == "answer_question"
        pieces = [text async for text in llm.stream_answer("answer_question", [
            {"role": "user", "content": "What is Burr?"},
        ])]
        assert pieces == ["One ", "two ", "three."]
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
        async for text in llm.stream_answer("answer_question", [{"role": "user", "content": "Hi?"}]):
            pieces.append(text)
            if len(pieces) == 1:
                await asyncio.sleep(0.08)  # a busy server: about 8 tokens pile up meanwhile
        assert "".join(pieces) == "".join(words)
        assert pieces[0] == "w0 " and len(pieces) < len(words)
        assert max(len(piece) for piece in pieces) >= len("w1 w2 w3 w4 ")
    finally:
        await llm.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize(("fault", "code"), [
    ("error_event", "upstream_bad_response"),  # an error chunk, as OpenAI and vLLM send one
    ("drop", "upstream_unavailable"),  # the connection cut
    ("stall", "upstream_timeout"),  # nothing more sent, connection open
])
async def test_an_answer_that_fails_mid_stream_keeps_its_text(
    upstream: FakeUpstream, transport: str, fault: str, code: str
) -> None:
    upstream.control(text="alpha beta gamma delta", fault=fault, drop_after=2, hang_s=10,
                     fault_count=1, fault_on="stream")
    llm = model(upstream.base_url, transport, timeout_s=0.5)
    try:
        pieces = []
        with pytest.raises(UpstreamError) as raised:
            async for text in llm.stream_answer("answer_question", [{"role": "user", "content": "Hi?"}]):
                pieces.append(text)
        assert "".join(pieces) == "alpha beta "
        assert raised.value.code == code and raised.value.retryable
    finally:
        await llm.aclose()
