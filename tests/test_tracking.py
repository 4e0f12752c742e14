"""Burr's tracking log as this project writes it: the lines Burr's own tracker writes, kept
in memory during a turn and appended in one write when the turn flushes or ends."""

import asyncio
import json
import shutil
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Optional

from burr.core import ApplicationBuilder, State, default
from burr.core.action import action, streaming_action
from burr.tracking import LocalTrackingClient

from burr_streaming_chatbot.storage.burr_hooks import ChatTrackingClient, forget_folder


@action(reads=[], writes=["prompt"])
async def ask(state: State, prompt: str) -> tuple[dict, State]:
    return {"prompt": prompt}, state.update(prompt=prompt)


@streaming_action(reads=["prompt"], writes=["answer"])
async def reply(state: State) -> AsyncGenerator[tuple[dict, Optional[State]], None]:
    for word in ("one", "two", "three"):
        yield {"delta": word}, None
    yield {"answer": "one two three"}, state.update(answer="one two three")


async def turn(tracker: LocalTrackingClient, sequence_id: Optional[int] = None) -> Any:
    """One turn of two steps (one streaming) in an application built for it."""
    app = await (
        ApplicationBuilder()
        .with_actions(ask=ask, reply=reply)
        .with_transitions(("ask", "reply", default), ("reply", "ask", default))
        .with_state(State({}))
        .with_entrypoint("ask")
        .with_tracker(tracker)  # type: ignore[arg-type]
        .with_identifiers(app_id="talk", sequence_id=sequence_id)
        .abuild()
    )
    await app.astep(inputs={"prompt": "count"})
    _, container = await app.astream_result(halt_after=["reply"])
    async for _ in container:
        pass
    await container.get()
    return app


def lines(path: Path) -> list[tuple[Any, ...]]:
    """A log's lines without their times: (type, action, sequence id)."""
    out = []
    for line in path.read_text().splitlines():
        item = json.loads(line)
        sequence_id = item.get("sequence_id", item.get("action_sequence_id"))
        out.append((item["type"], item.get("action"), sequence_id))
    return out


def test_the_log_has_burrs_lines_written_when_the_turn_flushes(tmp_path: Path) -> None:
    burrs = LocalTrackingClient(project="burr", storage_dir=str(tmp_path))
    asyncio.run(turn(burrs))
    burrs.f.close()
    ours = ChatTrackingClient(project="ours", storage_dir=str(tmp_path))
    asyncio.run(turn(ours))
    folder = tmp_path / "ours" / "talk"
    log = folder / "log.jsonl"
    assert (folder / "graph.json").exists() and (folder / "metadata.json").exists()
    assert log.read_text() == ""  # there from the start (Burr's UI lists it), kept until a flush
    ours.flush()
    expected = lines(tmp_path / "burr" / "talk" / "log.jsonl")
    assert lines(log) == expected
    assert [kind for kind, _, _ in expected] == [
        "begin_entry",
        "end_entry",
        "begin_entry",
        "begin_stream",
        "first_item_stream",
        "end_entry",
        "end_stream",
    ]
    ours.close()  # nothing more to write
    assert lines(log) == expected

    # The next turn, another application and tracker, appends its lines at close.
    again = ChatTrackingClient(project="ours", storage_dir=str(tmp_path))
    asyncio.run(turn(again, sequence_id=1))
    again.close()
    assert [(kind, name) for kind, name, _ in lines(log)] == [(k, n) for k, n, _ in expected] * 2
    assert [number for _, _, number in lines(log)][-1] == 3


def test_a_removed_folder_is_made_again_once_forgotten(tmp_path: Path) -> None:
    """A deleted conversation's folder (the service forgets it before removing it) gets its
    graph.json back when an application is built for that id again."""
    first = ChatTrackingClient(project="p", storage_dir=str(tmp_path))
    asyncio.run(turn(first))
    first.close()
    folder = tmp_path / "p" / "talk"
    forget_folder(folder)
    shutil.rmtree(folder)
    second = ChatTrackingClient(project="p", storage_dir=str(tmp_path))
    asyncio.run(turn(second))
    second.close()
    assert (folder / "graph.json").exists() and (folder / "metadata.json").exists()
    assert len(lines(folder / "log.jsonl")) == 7


def test_a_created_conversation_is_recorded_as_a_turns_application_records_it(
    tmp_path: Path,
) -> None:
    """``POST /create`` builds no application, but Burr's tracker records the conversation
    the same way: its folder, the same graph.json and metadata, and a log (empty until a
    turn), which Burr's UI lists conversations by."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from burr_streaming_chatbot.router import API_PREFIX, create_router
    from burr_streaming_chatbot.settings import Settings

    app = FastAPI()
    app.include_router(
        create_router(Settings(storage_dir=tmp_path, offline=True)), prefix=API_PREFIX
    )
    with TestClient(app) as client:
        assert client.post(f"{API_PREFIX}/create/p/made").status_code == 200
        made = tmp_path / "p" / "made"
        assert (made / "log.jsonl").read_text() == ""
        turn = client.post(f"{API_PREFIX}/response/p/answered", json={"prompt": "Hi?"})
        assert '"type":"message"' in turn.text
        answered = tmp_path / "p" / "answered"
        for name in ("graph.json", "metadata.json"):
            assert json.loads((made / name).read_text()) == json.loads(
                (answered / name).read_text()
            )
        # The created conversation's first turn starts from the state cached by the create.
        again = client.post(f"{API_PREFIX}/response/p/made", json={"prompt": "Hi?"})
        assert '"type":"message"' in again.text
        assert [kind for kind, _, _ in lines(made / "log.jsonl")][:2] == [
            "begin_entry",
            "end_entry",
        ]
        assert client.get(f"{API_PREFIX}/status").json()["cached_conversations"] == 2
