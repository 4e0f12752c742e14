"""The fake OpenAI server, driven over real HTTP by the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

try:
    import fake_openai
except ImportError:  # run without the tests folder on the import path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fake_openai

from fake_openai import FakeConfig, FakeState, running_fake, spawned_fake

USER = "user"


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Route it."}, {"role": USER, "content": text}]


@pytest.fixture(scope="module")
def module_fake():
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(module_fake):
    """The module's fake, reset to its defaults before and after the test."""
    module_fake.reset()
    yield module_fake
    module_fake.reset()


def client(fake, **kwargs) -> openai.AsyncOpenAI:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 5.0)
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", **kwargs)


async def collect(stream) -> list:
    chunks = []
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


def text_of(chunks) -> list[str]:
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


# ------------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    "prompt, mode",
    [
        ("Write a poem about the sea", "generate_poem"),
        ("a POEM with some code", "generate_poem"),
        ("Please write code for a parser", "generate_code"),
        ("a function that sorts", "generate_code"),
        ("Is it raining?", "answer_question"),
        ("what is burr", "answer_question"),
        ("Why not", "answer_question"),
        ("tell me how it works", "answer_question"),
        ("hello there", "unknown"),
        ("", "unknown"),
    ],
)
def test_classify_prompt(prompt, mode):
    assert fake_openai.classify_prompt(prompt) == mode


@pytest.mark.parametrize(
    "text", ["", "one", "  lead and trail  ", "a\n\nb\tc ", "```py\nx = 1\n```\n"]
)
def test_split_tokens_joins_back(text):
    assert "".join(fake_openai.split_tokens(text)) == text


def test_split_tokens_keeps_the_space_after_each_word():
    assert fake_openai.split_tokens("one two  three\n") == ["one ", "two  ", "three\n"]


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 6, 12, 50, 500])
def test_markdown_tokens_count_and_fence(count):
    tokens = fake_openai.markdown_tokens(count)
    assert len(tokens) == count
    text = "".join(tokens)
    if count >= 3:
        assert "```python\n" in text
        assert text.count("```") == 2  # opened and closed
    assert fake_openai.markdown_tokens(count) == tokens  # deterministic


def test_config_validation():
    with pytest.raises(ValueError, match="unknown setting"):
        FakeConfig().replace(nope=1)
    with pytest.raises(ValueError):
        FakeConfig().replace(fault="boom")
    with pytest.raises(ValueError):
        FakeConfig().replace(fault_on="sometimes")
    with pytest.raises(ValueError):
        FakeConfig().replace(tokens=-1)
    with pytest.raises(ValueError):
        FakeConfig().replace(tokens=1.5)
    assert FakeConfig().replace(models=["a", "b"]).models == ("a", "b")


def test_state_fault_count_and_reset():
    state = FakeState(tokens=3)
    state.configure(fault="auth", fault_count=2, tokens=7)
    body = {"messages": []}
    assert state._begin(body, None, False)[1] == "auth"
    assert state._begin(body, None, True)[1] == "auth"
    assert state._begin(body, None, True)[1] is None
    assert state.config.fault is None
    state.reset()
    assert state.config == FakeConfig(tokens=3)
    assert state.stats()["total_requests"] == 0


# ------------------------------------------------------------------------ router calls


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "prompt, mode",
    [
        ("Write me a poem about autumn", "generate_poem"),
        ("Give me code that reverses a list", "generate_code"),
        ("Write a function to add numbers", "generate_code"),
        ("Is Burr a state machine library?", "answer_question"),
        ("explain how streaming works", "answer_question"),
        ("Hello!", "unknown"),
    ],
)
async def test_non_streaming_routes_by_keywords(fake, prompt, mode):
    async with client(fake) as llm:
        completion = await llm.chat.completions.create(model="router-model", messages=ask(prompt))
    assert completion.object == "chat.completion"
    assert completion.model == "router-model"
    assert completion.id.startswith("chatcmpl-")
    [choice] = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == mode
    assert choice.finish_reason == "stop"
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    stats = fake.stats()
    assert stats["non_streaming_requests"] == 1 and stats["streaming_requests"] == 0
    assert stats["last_authorization"] == "Bearer test"
    assert stats["request_bodies"][-1]["messages"][-1]["content"] == prompt


@pytest.mark.asyncio
async def test_router_reads_only_the_last_user_message(fake):
    messages = [
        {"role": "system", "content": "poem code function what?"},
        {"role": "user", "content": "write a poem"},
        {"role": "assistant", "content": "how about code?"},
        {"role": "user", "content": "thanks"},
    ]
    async with client(fake) as llm:
        completion = await llm.chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].message.content == "unknown"


@pytest.mark.asyncio
async def test_route_setting_forces_the_reply(fake):
    fake.control(route="Mode: generate_code.")
    async with client(fake) as llm:
        completion = await llm.chat.completions.create(model="m", messages=ask("a poem"))
    assert completion.choices[0].message.content == "Mode: generate_code."


# ------------------------------------------------------------------------ streaming calls


@pytest.mark.asyncio
async def test_stream_yields_the_default_tokens_in_order(fake):
    async with client(fake) as llm:
        stream = await llm.chat.completions.create(
            model="answer-model", messages=ask("hi"), stream=True
        )
        chunks = await collect(stream)
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert text_of(chunks) == ["Token0"] + [f" token{i}" for i in range(1, 12)]
    assert text_of(chunks) == fake.expected_tokens()
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop" and last.delta.content is None
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and chunks[0].model == "answer-model"
    stats = fake.stats()
    assert stats["streaming_requests"] == 1
    assert stats["completed_streams"] == 1 and stats["open_streams"] == 0
    assert stats["request_bodies"][-1]["stream"] is True


@pytest.mark.asyncio
async def test_stream_raw_wire_format(fake):
    fake.control(tokens=2)
    body = {"model": "m", "messages": ask("hi"), "stream": True}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e[len("data: ") :]) for e in events[:-1]]
    assert [p["choices"][0]["delta"] for p in payloads] == [
        {"role": "assistant", "content": ""},
        {"content": "Token0"},
        {"content": " token1"},
        {},
    ]
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.asyncio
async def test_stream_text_setting_and_usage_chunk(fake):
    fake.control(text="Hello, streaming **world**!\n")
    async with client(fake) as llm:
        stream = await llm.chat.completions.create(
            model="m", messages=ask("hi"), stream=True, stream_options={"include_usage": True}
        )
        chunks = await collect(stream)
    assert "".join(text_of(chunks)) == "Hello, streaming **world**!\n"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == len(
        fake_openai.split_tokens("Hello, streaming **world**!\n")
    )
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.asyncio
@pytest.mark.parametrize("field", fake_openai.REASONING_FIELDS)
async def test_stream_reasoning_before_the_answer_as_vllm_and_ollama_send_it(fake, field):
    fake.control(text="The answer.", reasoning="Let me think. Yes.", reasoning_field=field)
    async with client(fake) as llm:
        stream = await llm.chat.completions.create(
            model="m", messages=ask("hi"), stream=True, stream_options={"include_usage": True}
        )
        chunks = await collect(stream)
    # The SDK keeps fields it does not model: read them as a client of vLLM or Ollama does.
    thoughts = [getattr(c.choices[0].delta, field, None) for c in chunks if c.choices]
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    first_text = next(i for i, t in enumerate(texts) if t)
    assert "".join(t for t in thoughts if t) == "Let me think. Yes."
    assert all(not t for t in thoughts[first_text:])  # all the thinking comes first
    assert "".join(t for t in texts if t) == "The answer."
    other = next(f for f in fake_openai.REASONING_FIELDS if f != field)
    assert all(getattr(c.choices[0].delta, other, None) is None for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens == 4
    assert usage.completion_tokens == 4 + 2
    with pytest.raises(ValueError):
        fake.control(reasoning_field="thinking")


@pytest.mark.asyncio
async def test_stream_markdown_and_delays(fake):
    fake.control(markdown=True, tokens=20, delay_ms=5, first_token_delay_ms=50)
    async with client(fake) as llm:
        started = time.monotonic()
        stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
        chunks = await collect(stream)
        elapsed = time.monotonic() - started
    assert text_of(chunks) == fake_openai.markdown_tokens(20)
    assert elapsed >= 0.05 + 19 * 0.005 * 0.9


@pytest.mark.asyncio
async def test_concurrent_streams_are_counted(fake):
    fake.control(tokens=5, delay_ms=10)
    async with client(fake) as llm:

        async def one():
            stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
            return text_of(await collect(stream))

        results = await asyncio.gather(*(one() for _ in range(4)))
    assert all(r == fake_openai.default_tokens(5) for r in results)
    stats = fake.stats()
    assert stats["completed_streams"] == 4 and stats["open_streams"] == 0
    assert stats["max_open_streams"] >= 2


# ------------------------------------------------------------------------ cancellation


@pytest.mark.asyncio
async def test_open_streams_drop_to_zero_when_the_client_closes_early(fake):
    fake.control(tokens=1000, delay_ms=20)
    async with client(fake) as llm:
        stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
        seen = []
        async for chunk in stream:
            if chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
            if len(seen) == 2:
                break
        assert fake.stats()["open_streams"] == 1
        await stream.close()
        closed_at = time.monotonic()
        assert await fake.wait_idle_async(timeout=1.0)
        assert time.monotonic() - closed_at < 1.0
    stats = fake.stats()
    assert stats["open_streams"] == 0
    assert stats["cancelled_streams"] == 1 and stats["completed_streams"] == 0


@pytest.mark.asyncio
async def test_disconnect_while_waiting_for_the_first_token_is_seen(fake):
    fake.control(first_token_delay_ms=10_000)
    async with client(fake) as llm:
        stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
        first = await stream.__anext__()
        assert first.choices[0].delta.role == "assistant"
        await stream.close()
        assert await fake.wait_idle_async(timeout=1.0)
    assert fake.stats()["cancelled_streams"] == 1


def test_close_cuts_hanging_requests_quickly():
    with running_fake(fault="timeout", hang_s=60) as fake:
        errors = []

        def call():
            async def go():
                async with client(fake, timeout=30.0) as llm:
                    await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)

            try:
                asyncio.run(go())
            except Exception as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 2
        while fake.stats()["open_streams"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        fake.close()
        assert time.monotonic() - started < 1.5
        caller.join(5)
    assert not caller.is_alive()
    assert errors and isinstance(errors[0], openai.APIError)


# ------------------------------------------------------------------------ faults


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True], ids=["route", "stream"])
@pytest.mark.parametrize(
    "fault, error, status",
    [
        ("auth", openai.AuthenticationError, 401),
        ("rate_limit", openai.RateLimitError, 429),
        ("server_error", openai.InternalServerError, 500),
        ("bad_request", openai.BadRequestError, 400),
    ],
)
async def test_status_faults_raise_the_sdk_errors(fake, fault, error, status, stream):
    fake.control(fault=fault)
    async with client(fake) as llm:
        with pytest.raises(error) as caught:
            result = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=stream)
            if stream:
                await collect(result)
    assert caught.value.status_code == status
    assert caught.value.body["type"]  # the OpenAI error object
    if fault == "auth":
        assert caught.value.code == "invalid_api_key"
        assert caught.value.type == "invalid_request_error"
    if fault == "rate_limit":
        assert caught.value.response.headers["retry-after"] == "0"
    if status in (429, 500):  # the SDK then waits 1 ms before a retry, not its 0.5 s backoff
        assert caught.value.response.headers["retry-after-ms"] == "1"
    assert fake.stats()["faults_injected"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True], ids=["route", "stream"])
async def test_timeout_fault_times_the_client_out(fake, stream):
    fake.control(fault="timeout", hang_s=10)
    async with client(fake, timeout=0.3) as llm:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await llm.chat.completions.create(model="m", messages=ask("hi"), stream=stream)
        assert time.monotonic() - started < 2
    assert await fake.wait_idle_async(timeout=1.0)
    assert fake.stats()["cancelled_requests"] == 1


@pytest.mark.asyncio
async def test_drop_fault_cuts_the_stream_mid_way(fake):
    fake.control(fault="drop", drop_after=3)
    seen = []
    async with client(fake) as llm:
        stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    seen.append(chunk.choices[0].delta.content)
    assert seen == fake_openai.default_tokens(3)
    assert await fake.wait_idle_async(timeout=1.0)
    stats = fake.stats()
    assert stats["aborted_streams"] == 1 and stats["completed_streams"] == 0


@pytest.mark.asyncio
async def test_drop_fault_on_a_router_call(fake):
    fake.control(fault="drop")
    async with client(fake) as llm:
        with pytest.raises(openai.APIConnectionError):
            await llm.chat.completions.create(model="m", messages=ask("hi"))


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True], ids=["route", "stream"])
async def test_malformed_fault_fails_to_parse(fake, stream):
    fake.control(fault="malformed")
    seen = []
    async with client(fake) as llm:
        with pytest.raises(ValueError):  # json.JSONDecodeError from the SDK
            result = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=stream)
            async for chunk in result:
                if chunk.choices[0].delta.content:
                    seen.append(chunk.choices[0].delta.content)
    if stream:
        assert seen == fake_openai.default_tokens(2)


@pytest.mark.asyncio
async def test_fault_count_and_fault_on(fake):
    fake.control(fault="server_error", fault_count=1, fault_on="stream")
    async with client(fake) as llm:
        routed = await llm.chat.completions.create(model="m", messages=ask("a poem"))
        assert routed.choices[0].message.content == "generate_poem"
        with pytest.raises(openai.InternalServerError):
            await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
        stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
        assert text_of(await collect(stream)) == fake.expected_tokens()
    assert fake.stats()["faults_injected"] == 1
    assert fake.config.fault is None


@pytest.mark.asyncio
async def test_sdk_retries_of_rate_limits_are_fast(fake):
    fake.control(fault="rate_limit", fault_count=1)
    async with client(fake, max_retries=1) as llm:
        completion = await llm.chat.completions.create(model="m", messages=ask("why?"))
    assert completion.choices[0].message.content == "answer_question"
    assert fake.stats()["total_requests"] == 2


# ------------------------------------------------------------------------ models and control


@pytest.mark.asyncio
async def test_models_lists_the_configured_names(fake):
    fake.control(models=["router-x", "answer-y"])
    async with client(fake) as llm:
        page = await llm.models.list()
    assert [m.id for m in page.data] == ["router-x", "answer-y"]


@pytest.mark.asyncio
async def test_http_control_endpoints(fake):
    async with httpx.AsyncClient(base_url=fake.url) as http:
        changed = await http.post(
            "/_control", json={"tokens": 4, "fault": "auth", "fault_count": 1}
        )
        assert changed.status_code == 200 and changed.json()["tokens"] == 4
        assert (await http.get("/_control")).json()["fault"] == "auth"
        bad = await http.post("/_control", json={"tokens": "many"})
        assert bad.status_code == 400 and "tokens" in bad.json()["error"]["message"]
        async with client(fake) as llm:
            with pytest.raises(openai.AuthenticationError):
                await llm.chat.completions.create(model="m", messages=ask("hi"))
            stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
            assert len(text_of(await collect(stream))) == 4
        stats = (await http.get("/_stats")).json()
        assert stats["total_requests"] == 2 and stats["completed_streams"] == 1
        assert stats["last_authorization"] == "Bearer test"
        assert len(stats["request_bodies"]) == 2
        assert (await http.post("/_reset")).status_code == 200
        stats = (await http.get("/_stats")).json()
        assert stats["total_requests"] == 0 and stats["config"]["tokens"] == 12


def test_reset_restores_the_start_settings():
    with running_fake(tokens=3, delay_ms=1) as fake:
        fake.control(tokens=9, fault="auth")
        fake.reset()
        assert fake.config.tokens == 3 and fake.config.delay_ms == 1 and fake.config.fault is None
        assert fake.expected_text() == "Token0 token1 token2"


# ------------------------------------------------------------------------ CLI


@pytest.mark.asyncio
@pytest.mark.e2e  # the fake's command in a subprocess
async def test_cli_prints_the_port_and_serves():
    with spawned_fake("--tokens", "3", "--delay-ms", "1", "--model", "cli-model") as remote:
        assert remote.base_url.startswith("http://127.0.0.1:") and remote.base_url.endswith("/v1")
        assert remote.config()["tokens"] == 3
        async with openai.AsyncOpenAI(
            base_url=remote.base_url, api_key="cli-key", max_retries=0
        ) as llm:
            stream = await llm.chat.completions.create(model="m", messages=ask("hi"), stream=True)
            assert text_of(await collect(stream)) == ["Token0", " token1", " token2"]
            assert [m.id for m in (await llm.models.list()).data] == ["cli-model"]
            remote.control(fault="auth", fault_count=1)
            with pytest.raises(openai.AuthenticationError):
                await llm.chat.completions.create(model="m", messages=ask("hi"))
        stats = remote.stats()
        assert stats["total_requests"] == 2 and stats["last_authorization"] == "Bearer cli-key"
        remote.reset()
        assert remote.stats()["total_requests"] == 0
        with pytest.raises(ValueError):
            remote.control(fault="nope")
    assert remote.process.poll() is not None
