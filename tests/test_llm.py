"""The model client on each of the SDK's transports, against the fake server over HTTP."""

import pytest

from conftest import free_port
from fake_openai import FakeUpstream
from burr_streaming_chatbot.llm import OpenAIChatModel, UpstreamError
from burr_streaming_chatbot.settings import Settings


def model(upstream_url: str, transport: str) -> OpenAIChatModel:
    settings = Settings(
        openai_base_url=upstream_url, openai_api_key="sk-test", http_transport=transport,
        max_retries=0, request_timeout_s=5,
    )
    return OpenAIChatModel(settings)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_each_transport_routes_streams_and_closes(upstream: FakeUpstream, transport: str) -> None:
    upstream.control(text="One two three.")
    llm = model(upstream.base_url, transport)
    try:
        assert llm.transport == transport and f"transport={transport!r}" in repr(llm)
        assert await llm.choose_mode("What is Burr?") == "answer_question"
        pieces = [text async for text in llm.stream_answer("answer_question", [
            {"role": "user", "content": "What is Burr?"},
        ])]
        assert len(pieces) > 1 and "".join(pieces) == "One two three."
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
