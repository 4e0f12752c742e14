"""What a stranger can make the server hold, NUL characters, and secrets in what it shows.

- a read never creates storage: no SQLite file, no thread, no Burr tracking folder;
- the SQLite files open at once are bounded (``BURR_CHATBOT_MAX_OPEN_PROJECTS``);
- a prompt with a NUL character is refused; a model's NUL is stored safely on both engines;
- ``GET /model`` and the logs show URLs as scheme, host, port and path only.
"""

import asyncio
import os
import threading
from pathlib import Path

import httpx
import pytest
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream

from burr_streaming_chatbot.storage.sqlite import SQLiteStore


def everything_under(folder: Path) -> set[str]:
    """Every file and folder below ``folder``, relative to it."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def open_files_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_every_endpoint(server: ChatServer, project: str, app_id: str) -> None:
    """Each read of the API (and a stop, which finds nothing to stop) for a conversation of a
    project nobody wrote to, with the answer each must give."""
    client = server.client
    assert client.get(f"{API}/conversations/{project}").json() == []
    assert client.get(f"{API}/history/{project}/{app_id}").json() == []
    assert client.get(f"{API}/branches/{project}/{app_id}").status_code == 404
    assert client.get(f"{API}/stream/{project}/{app_id}").status_code == 404
    assert client.get(f"{API}/ai-sdk/{project}/{app_id}/stream").status_code == 204
    assert client.post(f"{API}/stop/{project}/{app_id}").json() == {"stopped": False}
    with client.stream("GET", f"{API}/events/{project}/{app_id}") as response:
        assert response.status_code == 200
        # (the stream has looked at the store once before its headers are sent)


@pytest.mark.e2e
def test_reads_of_unknown_projects_create_no_file_no_thread_and_no_folder(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = start_server("cli", home, upstream, "reads-create-nothing")
    try:
        assert server.process is not None
        read_every_endpoint(server, "warmup", "a")  # (the first request loads lazy modules)
        files, threads = everything_under(home), threads_of(server.process.pid)
        handles = open_files_of(server.process.pid)
        for n in range(30):
            read_every_endpoint(server, f"junkproj{n}", f"conversation-{n}")
        assert everything_under(home) == files
        assert threads_of(server.process.pid) <= threads + 2  # (the server's own pools may vary)
        assert open_files_of(server.process.pid) <= handles + 4
        # A write still creates the project, and reads then find it.
        assert server.client.post(f"{API}/create/junkproj0/conversation-0").status_code == 200
        assert any("junkproj0" in name for name in everything_under(home) - files)
    finally:
        server.close()


@pytest.mark.e2e
def test_open_projects_are_bounded_and_a_closed_one_opens_again(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_server(
        "cli", tmp_path, upstream, "open-projects", BURR_CHATBOT_MAX_OPEN_PROJECTS="2"
    )
    try:
        assert server.process is not None
        upstream.control(text="Kept.", delay_ms=0)
        projects = [f"bounded{n}" for n in range(6)]
        threads = []
        for project in projects:
            events = server.turn("c1", f"What is {project}?", project=project)
            assert events[-1]["type"] == "message"
            status = server.client.get(f"{API}/status").json()
            assert status["open_projects"] <= 2, status
            threads.append(threads_of(server.process.pid))
        # Each open project is a thread of the SQLite driver: the count stops growing.
        assert max(threads[2:]) <= threads[1] + 1, threads
        for project in projects:  # every one of them opens again and has its answer
            history = server.history("c1", project=project)
            assert [m["content"] for m in history] == [f"What is {project}?", "Kept."]
        assert server.client.get(f"{API}/status").json()["open_projects"] <= 2
    finally:
        server.close()


async def test_the_least_recently_used_idle_project_is_closed_never_one_in_use(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path, "machine-a:1:x", max_open=2)
    await store.open()
    try:
        first = await store.persister("p0")
        assert first is not None
        async with first.lock:  # in use while three more projects open
            for n in range(1, 4):
                lease = await store.acquire(f"p{n}", "c", f"t{n}", 30)
                assert lease is not None
            assert not first.closed  # in use: kept, even past the bound
        assert store.open_projects <= 3
        await store.acquire("p4", "c", "t4", 30)
        assert store.open_projects == 2
        assert first.closed  # now idle and the least recently used
        # A closed project opens again on its next use, with what it stored.
        assert (await store.current("p1", "c")) is not None
        assert store.open_projects == 2
        # Reads of a project with no file create nothing.
        assert await store.current("nowhere", "c") is None
        assert await store.list_conversations("nowhere", 10) == []
        assert not any("nowhere" in name for name in everything_under(tmp_path))
    finally:
        await store.aclose()


async def test_closing_waits_for_a_use_that_started_before(tmp_path: Path) -> None:
    """Many projects used at once through a bound of one: no statement ever runs on a closed
    connection (each use holds its project's lock, and closing takes it)."""
    store = SQLiteStore(tmp_path, "machine-a:1:x", max_open=1)
    await store.open()
    try:
        for n in range(4):
            await store.acquire(f"p{n}", "c", f"t{n}", 30)

        async def use(n: int) -> None:
            for _ in range(10):
                record = await store.current(f"p{n % 4}", "c")
                assert record is not None and record.token == f"t{n % 4}"

        await asyncio.gather(*(use(n) for n in range(12)))
    finally:
        await store.aclose()


@pytest.mark.e2e
def test_a_prompt_with_nul_is_refused_and_a_model_s_nul_is_stored_safely(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    """PostgreSQL's JSON refuses U+0000: a prompt with one is a 422 that writes nothing, and a
    model that sends one streams and stores U+FFFD instead, on both engines."""
    server = start_server("cli", tmp_path, upstream, f"nul-{bool(engine)}", **engine)
    try:
        response = server.client.post(
            f"{API}/response/{PROJECT}/{app_id}",
            content=b'{"prompt": "before\\u0000after"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422 and "NUL" in response.json()["detail"]
        assert server.history(app_id) == []
        upstream.control(text="zero \u0000 byte", delay_ms=0)
        events = server.turn(app_id, "What is a NUL?")
        assert events[-1]["type"] == "message", events[-1]
        streamed = "".join(e["value"] for e in events if e["type"] == "delta")
        assert streamed == "zero \ufffd byte"
        assert [m["content"] for m in server.history(app_id)] == [
            "What is a NUL?",
            "zero \ufffd byte",
        ]
        listed = server.client.get(f"{API}/conversations/{PROJECT}").json()
        assert app_id in [c["app_id"] for c in listed]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@models.example:8080/v1", "http://models.example:8080/v1"),
        ("https://models.example/v1?api_key=hunter2#x", "https://models.example/v1"),
        ("postgresql://chat:hunter2@db:5432/chat", "postgresql://db:5432/chat"),
        ("postgresql://chat@db/chat?password=hunter2&sslmode=require", "postgresql://db/chat"),
        ("http://[::1]:11434/v1", "http://[::1]:11434/v1"),
        ("http://host:notaport/v1", "(an invalid URL)"),
    ],
)
def test_urls_are_shown_without_user_password_or_query(url: str, shown: str) -> None:
    from burr_streaming_chatbot.settings import public_url

    assert public_url(url) == shown


@pytest.mark.e2e
def test_the_model_server_s_credentials_are_not_shown_or_logged(
    upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    base = upstream.base_url.replace("http://", "http://someone:hunter2@", 1)
    server = start_server("cli", tmp_path, upstream, "model-url", OPENAI_BASE_URL=base)
    try:
        info = server.client.get(f"{API}/model").json()
        assert info["base_url"] == upstream.base_url
        server.turn(app_id, "What is logged?")  # (whatever it logs, at every level)
        page = httpx.get(f"{server.url}/demos/streaming-chatbot/", follow_redirects=True)
        for text in (str(info), page.text, server.log()):
            assert "hunter2" not in text and "someone" not in text
    finally:
        server.close()


def test_a_thread_count_helper_sees_this_process() -> None:
    """(The thread counts above read /proc: check they count what they claim.)"""
    before = threads_of(os.getpid())
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert threads_of(os.getpid()) == before + 1
    finally:
        stop.set()
        thread.join()
