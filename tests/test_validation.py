"""Bad ids and prompts: a clear 422 and nothing written."""

from pathlib import Path

import pytest
from conftest import API, PROJECT, ChatServer

pytestmark = pytest.mark.e2e  # the chatbot server runs in a subprocess


def snapshot(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file() and "-wal" not in path.name and "-shm" not in path.name
    }


BAD_IDS = ["..", ".", "a b", "x" * 65, "caf\u00e9", "a.b", "%2E%2E", "a%2Fb", "a%00b", "-" * 65]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("which", ["project", "app"])
def test_bad_ids_are_rejected_and_write_nothing(
    server: ChatServer, session_storage: Path, bad: str, which: str
) -> None:
    project, app = (bad, "ok") if which == "project" else (PROJECT, bad)
    before = snapshot(session_storage)
    for method, path, body in [
        ("POST", f"/response/{project}/{app}", {"prompt": "What is this?"}),
        ("POST", f"/create/{project}/{app}", None),
        ("GET", f"/history/{project}/{app}", None),
    ]:
        response = server.client.request(method, API + path, json=body)
        # `..` and `.` are resolved by the URL, so they reach no endpoint: 404, not a file.
        assert response.status_code in (404, 422), (path, response.status_code)
        if response.status_code == 422:
            assert "detail" in response.json()
    assert snapshot(session_storage) == before
    assert not (session_storage.parent / "ok").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": ""}, "at least 1 character"),
        ({"prompt": "   \n\t"}, "blank"),
        ({"prompt": "x" * 32_001}, "limit is 32000"),
        ({}, "Field required"),
        ({"prompt": 5}, "valid string"),
    ],
)
def test_bad_prompts_are_422_with_a_clear_message(
    server: ChatServer, session_storage: Path, app_id: str, body: dict, message: str
) -> None:
    before = snapshot(session_storage)
    response = server.client.post(f"{API}/response/{PROJECT}/{app_id}", json=body)
    assert response.status_code == 422
    assert message in response.text
    assert snapshot(session_storage) == before
    assert not (session_storage / PROJECT / app_id).exists()


LONGEST_ID = "A-z_9" + "x" * 59  # 64 characters, every kind the pattern allows


def test_the_longest_valid_id_works(server: ChatServer) -> None:
    # (One more character is refused: "x" * 65 in BAD_IDS above.)
    events = server.turn(LONGEST_ID, "hello")
    assert events[-1]["type"] == "message"
    history = server.history(LONGEST_ID)
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "hello"),
        ("assistant", events[-1]["value"]["item"]["content"]),
    ]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"prompt": "What is', {"content-type": "application/json"}, 422),  # malformed JSON
        (b'{"prompt": "What?"}', {"content-type": "text/plain"}, 415),  # a form's body type
        (b'{"prompt": "\xff\xfe What?"}', {"content-type": "application/json"}, 400),  # not UTF-8
        (b"[1, 2]", {"content-type": "application/json"}, 422),
        (b"", {"content-type": "application/json"}, 422),
    ],
)
def test_bad_bodies_are_4xx_json_and_write_nothing(
    server: ChatServer,
    session_storage: Path,
    app_id: str,
    content: bytes,
    headers: dict,
    status: int,
) -> None:
    before = snapshot(session_storage)
    response = server.client.post(
        f"{API}/response/{PROJECT}/{app_id}", content=content, headers=headers
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"]
    assert snapshot(session_storage) == before
