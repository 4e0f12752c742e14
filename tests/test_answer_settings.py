"""A conversation's answer model, system prompt and temperature (``GET /models``,
``GET``/``PATCH /settings``, ``POST /create`` with a body): kept in its Burr state, sent to the
model server by its answers, validated. ``ChatService`` in process with the real openai SDK
against the fake model server; the HTTP cases against a real server process."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT, ChatServer, free_port, start_server
from fake_openai import FakeUpstream

from burr_streaming_chatbot.llm import MODE_INSTRUCTIONS
from burr_streaming_chatbot.service import Busy, ChatService, Invalid, NotFound
from burr_streaming_chatbot.settings import Settings
from burr_streaming_chatbot.wire import AnswerSettingsInput

DEFAULTS = {"model": None, "system_prompt": None, "temperature": None}


def settings_for(upstream: FakeUpstream, storage: Path, **extra: Any) -> Settings:
    return Settings(
        openai_base_url=upstream.base_url,
        openai_api_key="sk-test",
        router_model="router-model",
        answer_model="answer-model",
        max_retries=0,
        request_timeout_s=5,
        storage_dir=storage,
        **extra,
    )


async def opened(settings: Settings) -> ChatService:
    service = ChatService(settings)
    await service.open()
    return service


@pytest.fixture
async def service(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[ChatService]:
    chat = await opened(settings_for(upstream, tmp_path))
    yield chat
    await chat.close()


async def answer(service: ChatService, app_id: str, prompt: str = "What is Burr?") -> dict:
    turn = await service.start_turn(PROJECT, app_id, prompt)
    events = [event async for _, batch in turn.follow(0) for event in batch]
    assert events[-1].type == "message", events[-1]
    return events[-1].parsed()["value"]["item"]


def last_answer_request(upstream: FakeUpstream) -> dict:
    return [b for b in upstream.stats()["request_bodies"] if b.get("stream")][-1]


def change(**fields: Any) -> AnswerSettingsInput:
    return AnswerSettingsInput(**fields)


# -- GET /models --------------------------------------------------------------------------------


async def test_the_models_are_the_servers_own_list_asked_once_a_while(
    service: ChatService, upstream: FakeUpstream
) -> None:
    upstream.control(models=["model-a", "model-b"])
    listed = await service.models()
    assert (listed.models, listed.default, listed.source) == (
        ["model-a", "model-b"],
        "answer-model",
        "server",
    )
    assert await service.models() == listed
    assert upstream.stats()["models_requests"] == 1  # (kept: asked once)


async def test_a_model_server_that_fails_lists_the_configured_model_alone(
    tmp_path: Path,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    service = await opened(
        Settings(
            openai_base_url=nobody, answer_model="answer-model", max_retries=0, storage_dir=tmp_path
        )
    )
    try:
        listed = await service.models()
        assert (listed.models, listed.source) == (["answer-model"], "configured")
        # Any model is accepted then: nothing says it does not exist.
        chosen = await service.change_answer_settings(PROJECT, "c", change(model="any-model"))
        assert chosen.model == "any-model"
    finally:
        await service.close()


async def test_a_model_server_that_never_answers_is_not_waited_for_long(tmp_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # (and never a reply)
        await asyncio.sleep(30)

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    service = await opened(
        Settings(
            openai_base_url=f"http://127.0.0.1:{port}/v1",
            answer_model="answer-model",
            max_retries=0,
            request_timeout_s=0.5,
            storage_dir=tmp_path,
        )
    )
    try:
        started = time.monotonic()
        listed = await asyncio.wait_for(service.models(), 10)
        assert listed.source == "configured" and time.monotonic() - started < 5
    finally:
        await service.close()
        listener.close()


async def test_offline_the_offline_model_is_the_list(tmp_path: Path) -> None:
    service = await opened(Settings(offline=True, offline_delay_ms=0, storage_dir=tmp_path))
    try:
        listed = await service.models()
        assert (listed.models, listed.source) == (["offline-demo"], "offline")
        with pytest.raises(Invalid):
            await service.change_answer_settings(PROJECT, "c", change(model="gpt-4o"))
        # The offline model ignores the choices, and still answers.
        await service.change_answer_settings(PROJECT, "c", change(temperature=1.5))
        item = await answer(service, "c")
        assert item["model"] == "offline-demo"
    finally:
        await service.close()


# -- the settings reach the model server ----------------------------------------------------


async def test_without_settings_the_request_is_as_before(
    service: ChatService, upstream: FakeUpstream
) -> None:
    item = await answer(service, "plain")
    body = last_answer_request(upstream)
    assert body["model"] == "answer-model" and "temperature" not in body
    assert body["messages"][0] == {
        "role": "system",
        "content": MODE_INSTRUCTIONS["answer_question"],
    }
    assert item["model"] == "answer-model"
    assert (await service.answer_settings(PROJECT, "plain")).model_dump() == DEFAULTS


async def test_the_model_system_prompt_and_temperature_reach_the_model_server(
    service: ChatService, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.control(models=["model-a", "model-b"])
    await answer(service, "pirate")  # (a conversation with a turn already)
    chosen = await service.change_answer_settings(
        PROJECT,
        "pirate",
        change(model="model-b", system_prompt="Talk like a pirate.", temperature=0.25),
    )
    assert chosen.model_dump() == {
        "model": "model-b",
        "system_prompt": "Talk like a pirate.",
        "temperature": 0.25,
    }
    item = await answer(service, "pirate", "What is Hamilton?")
    body = last_answer_request(upstream)
    assert body["model"] == "model-b" and body["temperature"] == 0.25
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith("Talk like a pirate.\n\n")
    assert body["messages"][0]["content"].endswith(MODE_INSTRUCTIONS["answer_question"])
    assert item["model"] == "model-b"
    history = await service.history(PROJECT, "pirate")
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]

    # In Burr's state: Burr's tracker records it with the step that answered.
    log = tmp_path / PROJECT / "pirate" / "log.jsonl"
    ends = [json.loads(line) for line in log.read_text().splitlines() if '"end_entry"' in line]
    assert ends[-1]["state"]["answer_settings"] == chosen.model_dump()

    # A field left out stays; null goes back to the default.
    again = await service.change_answer_settings(PROJECT, "pirate", change(temperature=None))
    assert again.model_dump() == {**chosen.model_dump(), "temperature": None}
    await answer(service, "pirate", "And Burr?")
    assert "temperature" not in last_answer_request(upstream)


async def test_settings_are_stored_and_a_new_process_reads_them(
    upstream: FakeUpstream, tmp_path: Path, engine: dict[str, str]
) -> None:
    extra = {"database_url": engine["BURR_CHATBOT_DATABASE_URL"]} if engine else {}
    first = await opened(settings_for(upstream, tmp_path, **extra))
    try:
        # On a conversation not written yet: it starts with them.
        await first.change_answer_settings(PROJECT, "new", change(system_prompt="Be brief."))
        await answer(first, "new")
    finally:
        await first.close()
    second = await opened(settings_for(upstream, tmp_path, **extra))
    try:
        assert (await second.answer_settings(PROJECT, "new")).system_prompt == "Be brief."
        await answer(second, "new", "And again?")
        assert last_answer_request(upstream)["messages"][0]["content"].startswith("Be brief.")
        history = await second.history(PROJECT, "new")
        assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    finally:
        await second.close()


# -- bad input: 422, nothing written ----------------------------------------------------------


async def test_bad_settings_are_refused_and_write_nothing(
    service: ChatService, upstream: FakeUpstream
) -> None:
    upstream.control(models=["model-a"])
    limit = service.settings.max_system_prompt_chars
    for bad in (
        change(model="not-listed"),
        change(model=" model-a"),
        change(system_prompt="x" * (limit + 1)),
        change(system_prompt="nul \x00 here"),
    ):
        with pytest.raises(Invalid) as refused:
            await service.change_answer_settings(PROJECT, "bad", bad)
        assert refused.value.status_code == 422
    assert await service.conversation_list(PROJECT) == []
    assert await service.store.load_state(PROJECT, "bad") is None
    # The configured answer model is always accepted.
    assert (await service.change_answer_settings(PROJECT, "ok", change(model="answer-model"))).model


async def test_no_change_while_an_answer_streams(
    service: ChatService, upstream: FakeUpstream
) -> None:
    upstream.control(delay_ms=20)
    turn = await service.start_turn(PROJECT, "busy", "What is Burr?")
    with pytest.raises(Busy):
        await service.change_answer_settings(PROJECT, "busy", change(temperature=1))
    [_ async for _ in turn.follow(0)]
    await service.change_answer_settings(PROJECT, "busy", change(temperature=1))
    await answer(service, "busy", "Again?")
    assert last_answer_request(upstream)["temperature"] == 1


async def test_a_branch_starts_with_its_originals_settings(
    service: ChatService, upstream: FakeUpstream
) -> None:
    await answer(service, "original")
    await service.change_answer_settings(PROJECT, "original", change(system_prompt="Rhyme."))
    branch = await service.fork(PROJECT, "original", 1)
    assert (await service.answer_settings(PROJECT, branch)).system_prompt == "Rhyme."
    await answer(service, branch)
    assert last_answer_request(upstream)["messages"][0]["content"].startswith("Rhyme.")


async def test_another_users_conversation_is_not_found(service: ChatService) -> None:
    await service.change_answer_settings(PROJECT, "alices", change(temperature=0.5), user="alice")
    with pytest.raises(NotFound):
        await service.change_answer_settings(PROJECT, "alices", change(temperature=2), user="bob")
    with pytest.raises(NotFound):
        await service.answer_settings(PROJECT, "alices", user="bob")
    assert (await service.answer_settings(PROJECT, "alices", user="alice")).temperature == 0.5


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def fresh_server(upstream: FakeUpstream, tmp_path: Path) -> Iterator[ChatServer]:
    """A server of its own that keeps no list of models (the shared one keeps the fake's)."""
    server = start_server(
        "cli", tmp_path, upstream, "answer-settings", BURR_CHATBOT_MODELS_CACHE_S="0"
    )
    yield server
    server.close()


@pytest.mark.e2e
def test_the_endpoints_over_http(
    fresh_server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    server = fresh_server
    upstream.control(models=["model-a", "model-b"])
    api = server.client
    listed = api.get(f"{server.api}/models").json()
    assert listed == {
        "models": ["model-a", "model-b"],
        "default": "answer-model",
        "source": "server",
    }
    settings = f"{server.api}/settings/{PROJECT}/{app_id}"
    assert api.get(settings).json() == DEFAULTS

    # Chosen at creation.
    created = api.post(
        f"{server.api}/create/{PROJECT}/{app_id}",
        json={"model": "model-a", "system_prompt": "Be kind.", "temperature": 0.7},
    )
    assert created.status_code == 200, created.text
    assert api.get(settings).json() == {
        "model": "model-a",
        "system_prompt": "Be kind.",
        "temperature": 0.7,
    }
    server.turn(app_id, "What is Burr?")
    body = last_answer_request(upstream)
    assert (body["model"], body["temperature"]) == ("model-a", 0.7)

    # Changed later.
    patched = api.patch(settings, json={"model": "model-b"})
    assert patched.json() == {"model": "model-b", "system_prompt": "Be kind.", "temperature": 0.7}

    # Bad input: 422 with a detail, nothing changed.
    for bad in (
        {"model": "model-z"},
        {"temperature": 2.5},
        {"temperature": -1},
        {"system_prompt": 7},
        {"colour": "blue"},
        {"system_prompt": "x" * 8001},
    ):
        refused = api.patch(settings, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert "detail" in refused.json()
    assert api.get(settings).json()["model"] == "model-b"
    fresh = f"fresh-{app_id}"[:64]
    refused = api.post(f"{server.api}/create/{PROJECT}/{fresh}", json={"model": "model-z"})
    assert refused.status_code == 422
    assert fresh not in {
        c["app_id"] for c in api.get(f"{server.api}/conversations/{PROJECT}").json()
    }
    # A create without a body is as before.
    assert api.post(f"{server.api}/create/{PROJECT}/{fresh}").status_code == 200
