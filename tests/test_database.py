"""The database as a user meets it: a bad URL stops the server at startup with one clear line;
a database that goes away mid-answer ends the answer with an error event and loses nothing
already stored; the schema is created once when several processes start at the same time."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import API, PROJECT, free_port, server_env, start_server
from fake_openai import FakeUpstream
from postgres import PostgresCluster, postgres_or_skip
from test_reliability import SLOW, wait_for

from burr_streaming_chatbot.storage.postgres import PostgresStore

pytestmark = pytest.mark.e2e  # chatbot servers and PostgreSQL in subprocesses


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://nobody:s3cret@127.0.0.1:{port}/chatbot", "Connection refused"),
        ("postgresql://nobody@127.0.0.1:{port}/chatbot?password=s3cret", "Connection refused"),
        ("mysql://nobody:s3cret@127.0.0.1:{port}/chatbot", "invalid DSN"),
    ],
)
def test_a_bad_database_url_stops_the_server_at_startup_with_one_clear_line(
    tmp_path: Path, url: str, reason: str
) -> None:
    url = url.format(port=free_port())  # nobody listens there
    env = server_env(tmp_path, None, BURR_CHATBOT_DATABASE_URL=url)
    command = [
        sys.executable,
        "-m",
        "burr_streaming_chatbot",
        "--no-open",
        "--port",
        str(free_port()),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    lines = [line for line in output.splitlines() if "cannot start:" in line]
    assert len(lines) == 1, output
    # Shown as scheme, host, port and path: never the user, the password or the query.
    where = url.split("://")[0] + "://" + url.split("@")[1].split("?")[0]
    assert f"cannot use the PostgreSQL database at {where}:" in lines[0] and reason in lines[0]
    assert "s3cret" not in output and "nobody" not in output


def test_the_database_going_away_mid_answer_ends_it_with_an_error_and_loses_nothing(
    upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    cluster = postgres_or_skip(durable=True)  # (a commit survives the server's crash)
    server = None
    try:
        url = cluster.create_database()
        server = start_server(
            "cli", tmp_path, upstream, "database-away", BURR_CHATBOT_DATABASE_URL=url
        )
        upstream.control(text="Saved.", delay_ms=0)
        server.turn(app_id, "What is kept?")
        upstream.control(text=SLOW, delay_ms=40)
        listener, events = server.turn_in_background(app_id, "What is lost?")
        wait_for(lambda: sum(e["type"] == "delta" for e in events) >= 3)
        cluster.pause()
        listener.join(15)
        assert not listener.is_alive()
        # The answer streamed to its end, then could not be saved: one error event, no 500.
        assert "".join(e["value"] for e in events if e["type"] == "delta") == SLOW
        assert events[-1]["type"] == "error"
        assert events[-1]["value"]["code"] == "storage_unavailable", events[-1]
        # Meanwhile, requests get a clear 503 and the server stays up.
        response = server.client.post(
            f"{API}/response/{PROJECT}/{app_id}", json={"prompt": "Hello?"}
        )
        assert response.status_code == 503 and "store is unavailable" in response.json()["detail"]
        for method, path in [
            ("POST", f"create/{PROJECT}/new-{app_id}"),
            ("GET", f"history/{PROJECT}/{app_id}"),
            ("GET", f"conversations/{PROJECT}"),
            ("POST", f"stop/{PROJECT}/{app_id}"),
        ]:
            response = server.client.request(method, f"{API}/{path}")
            assert response.status_code == 503, (path, response.text)
            assert (
                response.headers["retry-after"] == "1"
                and "store is unavailable" in response.json()["detail"]
            )
        assert "Traceback" not in server.log()

        cluster.resume()
        # What was stored before is all there: the first exchange and the prompt of the second
        # (saved before the database went away); the next prompt works again.
        history = server.history(app_id)
        assert [m["content"] for m in history] == ["What is kept?", "Saved.", "What is lost?"]
        upstream.control(text="Back.", delay_ms=0)
        deadline = time.monotonic() + 10
        while True:  # until the pool has replaced its dropped connections
            response = server.client.post(
                f"{API}/response/{PROJECT}/{app_id}", json={"prompt": "Back?"}
            )
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert server.history(app_id)[-1]["content"] == "Back."
    finally:
        if server is not None:
            server.close()
        cluster.stop()


async def test_processes_starting_at_once_create_the_schema_once(postgres: PostgresCluster) -> None:
    url = postgres.create_database()
    stores = [PostgresStore(url, owner=f"test:{n}:x") for n in range(6)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        lease = await stores[0].acquire(PROJECT, "schema", "t1", 30)
        assert lease is not None and lease.sequence_id is None
        assert await stores[1].acquire(PROJECT, "schema", "t2", 30) is None  # leased elsewhere
    finally:
        await asyncio.gather(*(store.aclose() for store in stores))
