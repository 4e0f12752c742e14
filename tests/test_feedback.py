"""Votes on answers: ``POST /feedback`` writes a Burr annotation on the step that wrote the
answer, checked through Burr's own annotations API on a real ``burr`` server, on both engines."""

from pathlib import Path
from typing import Any

import pytest
from conftest import API, PROJECT, ChatServer, start_server


def annotations(server: ChatServer, app_id: str) -> list[dict[str, Any]]:
    """What Burr's own API says about the conversation's annotations."""
    response = server.client.get(f"/api/v0/{PROJECT}/annotations", params={"app_id": app_id})
    assert response.status_code == 200, response.text
    return response.json()


def answer_step(events: list[dict[str, Any]]) -> tuple[int, str]:
    """The sequence id and action of the step that streamed the turn's answer: the last
    ``action`` event before its ``message``."""
    last = [event["value"] for event in events if event["type"] == "action"][-1]
    return last["sequence_id"], last["action"]


def vote(server: ChatServer, app_id: str, body: Any) -> Any:
    return server.client.post(f"{API}/feedback/{PROJECT}/{app_id}", json=body)


@pytest.mark.e2e
def test_a_vote_is_a_burr_annotation_on_the_step_that_wrote_the_answer(
    tmp_path: Path, engine: dict[str, str]
) -> None:
    server = start_server("burr", tmp_path, None, "feedback", **engine)
    try:
        first = server.turn("voted", "What is Burr?")
        second = server.turn("voted", "Write a poem about state machines")
        assert [m["role"] for m in server.history("voted")] == [
            "user",
            "assistant",
            "user",
            "assistant",
        ]
        (first_id, first_name), (second_id, second_name) = answer_step(first), answer_step(second)
        assert first_id != second_id

        # A thumbs up with a comment: one annotation, on the answer's step.
        response = vote(server, "voted", {"at": 1, "thumbs_up": True, "comment": "Clear."})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "at": 1,
            "thumbs_up": True,
            "comment": "Clear.",
            "app_id": "voted",
            "step_sequence_id": first_id,
            "step_name": first_name,
        }
        [annotation] = annotations(server, "voted")
        assert annotation["step_sequence_id"] == first_id
        assert annotation["step_name"] == first_name
        assert annotation["partition_key"] is None
        [observation] = annotation["observations"]
        assert observation["thumbs_up_thumbs_down"] is True
        assert observation["data_fields"] == {"note": "Clear."}

        # Voting again updates it: still one annotation there.
        changed = vote(server, "voted", {"at": 1, "thumbs_up": False, "comment": "Wrong."})
        assert changed.status_code == 200, changed.text
        [annotation] = annotations(server, "voted")
        assert annotation["step_sequence_id"] == first_id
        assert annotation["observations"][0]["thumbs_up_thumbs_down"] is False
        assert annotation["observations"][0]["data_fields"] == {"note": "Wrong."}

        # The second answer gets its own, without a comment.
        assert vote(server, "voted", {"at": 3, "thumbs_up": True}).status_code == 200
        by_step = {a["step_sequence_id"]: a for a in annotations(server, "voted")}
        assert set(by_step) == {first_id, second_id}
        assert by_step[second_id]["step_name"] == second_name
        assert by_step[second_id]["observations"][0]["data_fields"] == {}

        # Burr's own app list is not disturbed by its annotations file beside the apps.
        apps = server.client.get(f"/api/v0/{PROJECT}/__none__/apps")
        assert apps.status_code == 200, apps.text
        assert "voted" in [a["app_id"] for a in apps.json()["applications"]]

        # The page reads the votes back after a reload.
        votes = server.client.get(f"{API}/feedback/{PROJECT}/voted")
        assert votes.status_code == 200, votes.text
        assert [(v["at"], v["thumbs_up"], v["comment"]) for v in votes.json()] == [
            (1, False, "Wrong."),
            (3, True, None),
        ]

        # A vote without a comment keeps the earlier one's; an empty comment removes it.
        kept = vote(server, "voted", {"at": 1, "thumbs_up": True})
        assert (kept.json()["thumbs_up"], kept.json()["comment"]) == (True, "Wrong.")
        cleared = vote(server, "voted", {"at": 1, "thumbs_up": True, "comment": ""})
        assert cleared.json()["comment"] is None
        by_step = {a["step_sequence_id"]: a for a in annotations(server, "voted")}
        assert by_step[first_id]["observations"][0]["data_fields"] == {}
        assert len(by_step) == 2

        # A branch's copy of an answer was written by the original's step: the vote lands
        # there too (no second annotation), and the branch reads it.
        branch = server.client.post(f"{API}/fork/{PROJECT}/voted", json={"at": 2}).json()
        copied = vote(server, branch, {"at": 1, "thumbs_up": True})
        assert copied.status_code == 200, copied.text
        assert (copied.json()["app_id"], copied.json()["step_sequence_id"]) == ("voted", first_id)
        assert len(annotations(server, "voted")) == 2
        assert annotations(server, branch) == []
        branch_votes = server.client.get(f"{API}/feedback/{PROJECT}/{branch}").json()
        assert [(v["at"], v["thumbs_up"]) for v in branch_votes] == [(1, True)]
    finally:
        server.close()


@pytest.mark.e2e
def test_bad_votes_get_4xx_and_write_nothing(tmp_path: Path, engine: dict[str, str]) -> None:
    server = start_server("burr", tmp_path, None, "feedback-bad", **engine)
    try:
        server.turn("target", "What is Burr?")
        assert vote(server, "target", {"at": 1, "thumbs_up": True}).status_code == 200
        file = tmp_path / PROJECT / "annotations.jsonl"
        before = file.read_bytes()
        for app_id, body, status in [
            ("target", {"at": 0, "thumbs_up": False}, 422),  # the prompt, not an answer
            ("target", {"at": 2, "thumbs_up": False}, 422),  # beyond the history
            ("target", {"at": -1, "thumbs_up": False}, 422),
            ("target", {"at": "one", "thumbs_up": False}, 422),
            ("target", {"at": 1}, 422),
            ("target", {"at": 1, "thumbs_up": "maybe"}, 422),
            ("target", {"at": 1, "thumbs_up": False, "comment": "x" * 2001}, 422),
            ("target", {"at": 1, "thumbs_up": False, "comment": "a\x00b"}, 422),
            ("target", [], 422),
            ("nobody-here", {"at": 1, "thumbs_up": False}, 404),
            ("bad.id", {"at": 1, "thumbs_up": False}, 422),
        ]:
            response = vote(server, app_id, body)
            assert response.status_code == status, (app_id, body, response.text)
            assert "detail" in response.json()
        assert file.read_bytes() == before
        assert server.client.get(f"{API}/feedback/{PROJECT}/nobody-here").status_code == 404
        assert server.client.get(f"{API}/feedback/{PROJECT}/bad.id").status_code == 422
        assert not (tmp_path / "other_project").exists()
        missing = server.client.get(f"{API}/feedback/other_project/a")
        assert missing.status_code == 404
        assert not (tmp_path / "other_project").exists()
    finally:
        server.close()
