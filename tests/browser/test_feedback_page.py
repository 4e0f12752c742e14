"""Thumbs on the answers and the export download (issue 24), in Chromium against the real
server: a vote is a Burr annotation on the step that wrote the answer, shown pressed at once and
again after a reload; the conversation downloads as Markdown and as JSON."""

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT, ChatServer
from fake_openai import FakeUpstream

from .test_chat_page import conversation_id, open_chat, send, wait_for_answers

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = pytest.mark.browser


def burr_votes(server: ChatServer, app_id: str) -> dict[int, bool]:
    """Burr's own annotations API: each annotated step's thumbs, by sequence id."""
    response = server.client.get(f"/api/v0/{PROJECT}/annotations", params={"app_id": app_id})
    assert response.status_code == 200, response.text
    return {
        a["step_sequence_id"]: a["observations"][0]["thumbs_up_thumbs_down"]
        for a in response.json()
    }


def test_thumbs_on_every_answer_land_in_burr_and_show_after_a_reload(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    for number, (prompt, answer) in enumerate(
        [("What is Burr?", "A state machine library."), ("And Hamilton?", "A dataflow one.")],
        start=1,
    ):
        upstream.control(text=answer, delay_ms=0)
        send(page, prompt)
        wait_for_answers(page, number)
    app_id = conversation_id(page)
    answers = page.get_by_test_id("assistant-message")
    expect(page.get_by_role("group", name="Rate this answer")).to_have_count(2)

    answers.nth(1).get_by_role("button", name="Bad answer").click()
    expect(answers.nth(1).get_by_role("button", name="Bad answer")).to_have_attribute(
        "aria-pressed", "true"
    )
    answers.nth(0).get_by_role("button", name="Good answer").click()
    expect(answers.nth(0).get_by_role("button", name="Good answer")).to_have_attribute(
        "aria-pressed", "true"
    )
    deadline_votes: dict[int, bool] = {}
    for _ in range(100):  # (the page's POSTs run in the background)
        deadline_votes = burr_votes(server, app_id)
        if len(deadline_votes) == 2:
            break
        page.wait_for_timeout(50)
    assert sorted(deadline_votes.values()) == [False, True], deadline_votes

    # After a reload the votes are read back (GET /feedback) and shown pressed.
    page.reload()
    wait_for_answers(page, 2)
    answers = page.get_by_test_id("assistant-message")
    expect(answers.nth(0).get_by_role("button", name="Good answer")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(answers.nth(1).get_by_role("button", name="Bad answer")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(answers.nth(1).get_by_role("button", name="Good answer")).to_have_attribute(
        "aria-pressed", "false"
    )

    # Changing a vote updates its annotation: still two, now both up.
    answers.nth(1).get_by_role("button", name="Good answer").click()
    for _ in range(100):
        if list(burr_votes(server, app_id).values()) == [True, True]:
            break
        page.wait_for_timeout(50)
    assert list(burr_votes(server, app_id).values()) == [True, True]

    # A comment on the first answer: Burr's annotation carries it as its note, and it is
    # shown again after a reload.
    first = answers.nth(0)
    first.get_by_role("button", name="Add a comment").click()
    first.get_by_role("textbox", name="Comment on this answer").fill("Short and right.")
    first.get_by_role("button", name="Save").click()
    expect(first.get_by_test_id("vote-comment")).to_have_text("Short and right.")
    notes: list[Any] = []
    for _ in range(100):
        notes = [
            a["observations"][0]["data_fields"].get("note")
            for a in server.client.get(
                f"/api/v0/{PROJECT}/annotations", params={"app_id": app_id}
            ).json()
        ]
        if "Short and right." in notes:
            break
        page.wait_for_timeout(50)
    assert sorted(map(str, notes)) == ["None", "Short and right."]
    page.reload()
    wait_for_answers(page, 2)
    expect(
        page.get_by_test_id("assistant-message").nth(0).get_by_test_id("vote-comment")
    ).to_have_text("Short and right.")
    expect(page.get_by_test_id("vote-error")).to_have_count(0)


def test_the_conversation_downloads_as_markdown_and_json(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    expect(page.get_by_test_id("export-links")).to_have_count(0)  # (nothing to export yet)
    upstream.control(text="Burr runs state machines.", delay_ms=0)
    send(page, "What is Burr?")
    wait_for_answers(page, 1)
    app_id = conversation_id(page)
    links = page.get_by_role("navigation", name="Export")

    with page.expect_download() as markdown_download:
        links.get_by_role("link", name="Markdown").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename == f"{app_id}.md"
    text = Path(markdown.path()).read_text(encoding="utf-8")
    assert text.startswith("# What is Burr?\n")
    assert "## You" in text and "Burr runs state machines." in text

    with page.expect_download() as json_download:
        links.get_by_role("link", name="JSON").click()
    exported = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    assert json_download.value.suggested_filename == f"{app_id}.json"
    assert [m["content"] for m in exported["messages"]] == [
        "What is Burr?",
        "Burr runs state machines.",
    ]
