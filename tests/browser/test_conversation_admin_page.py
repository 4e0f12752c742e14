"""Renaming, deleting and searching conversations from the sidebar (issue 24), in Chromium against the real server."""

import re
from typing import Any

import pytest
from conftest import API, PROJECT, ChatServer
from fake_openai import FakeUpstream

from .test_chat_page import conversation_id, open_chat, send, wait_for_answers

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = pytest.mark.browser


def entry(page: Any, title: str) -> Any:
    return page.get_by_test_id("conversation-entry").filter(has_text=title)


def test_a_conversation_is_renamed_in_place_and_keeps_its_title_after_a_reload(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    upstream.control(text="Burr runs state machines.", delay_ms=0)
    send(page, "What is Burr, renamed?")
    wait_for_answers(page, 1)
    app_id = conversation_id(page)
    expect(entry(page, "What is Burr, renamed?")).to_have_count(1)

    page.get_by_role("button", name="Rename What is Burr, renamed?").click()
    box = page.get_by_role("textbox", name="New title")
    expect(box).to_have_value("What is Burr, renamed?")
    box.press("Escape")  # cancels
    expect(box).to_have_count(0)

    page.get_by_role("button", name="Rename What is Burr, renamed?").click()
    box = page.get_by_role("textbox", name="New title")
    box.fill("  Notes about Burr  ")
    box.press("Enter")
    expect(box).to_have_count(0)
    expect(entry(page, "Notes about Burr")).to_have_count(1)
    expect(entry(page, "What is Burr, renamed?")).to_have_count(0)

    page.reload()
    expect(entry(page, "Notes about Burr")).to_have_count(1)
    listed = server.client.get(f"{API}/conversations/{PROJECT}").json()
    assert {"app_id": app_id, "title": "Notes about Burr"}.items() <= next(
        c for c in listed if c["app_id"] == app_id
    ).items()


def test_a_conversation_is_deleted_after_a_confirm_and_its_branch_says_so(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    upstream.control(text="Burr runs state machines.", delay_ms=0)
    send(page, "Delete me, Burr?")
    wait_for_answers(page, 1)
    original = conversation_id(page)
    forked = server.client.post(f"{API}/fork/{PROJECT}/{original}", json={"at": 2})
    assert forked.status_code == 200, forked.text
    branch = forked.json()
    page.reload()
    expect(entry(page, "Delete me, Burr?")).to_have_count(1)
    # (other tests' branches share this server's project: count this one's only)
    mine = page.get_by_test_id("conversation-branch").filter(has_text="Delete me, Burr?")
    expect(mine).to_have_count(1)

    page.get_by_role("button", name="Delete Delete me, Burr?").first.click()
    confirm = page.get_by_role("group", name="Delete Delete me, Burr??")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert server.client.get(f"{API}/history/{PROJECT}/{original}").status_code == 200

    page.get_by_role("button", name="Delete Delete me, Burr?").first.click()
    page.get_by_role("group", name="Delete Delete me, Burr??").get_by_role(
        "button", name="Delete"
    ).click()
    # The page leaves the deleted conversation; its branch stays, marked.
    expect(entry(page, "Delete me, Burr?")).to_have_count(0)
    kept = page.get_by_test_id("conversation-branch").filter(has_text="Delete me, Burr?")
    expect(kept).to_have_count(1)
    expect(kept.get_by_test_id("original-deleted")).to_have_text(" · original deleted")
    expect(page.locator('[data-testid="assistant-message"]')).to_have_count(0)
    assert conversation_id_or_none(page) != original
    assert server.client.get(f"{API}/history/{PROJECT}/{original}").status_code == 404
    assert [c["app_id"] for c in server.client.get(f"{API}/conversations/{PROJECT}").json()].count(
        branch
    ) == 1


def expect_one(results: Any, title: str) -> None:
    """The search results are one conversation, with this title."""
    found = results.get_by_test_id("conversation-entry")
    expect(found.first).to_contain_text(title)
    expect(found).to_have_count(1)


def conversation_id_or_none(page: Any) -> Any:
    try:
        return conversation_id(page)
    except AssertionError:
        return None


def test_the_search_box_finds_conversations_by_title_and_message(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    upstream.control(text="Quokkas live on Rottnest island.", delay_ms=0)
    send(page, "What is a marsupial?")
    wait_for_answers(page, 1)
    marsupials = conversation_id(page)
    page.get_by_role("button", name="New conversation").click()
    upstream.control(text="Axolotls regrow limbs.", delay_ms=0)
    send(page, "What is an amphibian?")
    wait_for_answers(page, 1)

    box = page.get_by_role("searchbox", name="Search conversations")
    results = page.get_by_test_id("search-results")
    box.fill("quokka")  # (a word of an answer, as a prefix)
    expect_one(results, "What is a marsupial?")
    box.fill("AMPHIB")
    expect_one(results, "What is an amphibian?")
    box.fill("zzzunfindable")
    expect(page.get_by_text("No conversation matches.")).to_be_visible()
    expect(results.get_by_test_id("conversation-entry")).to_have_count(0)

    # A renamed conversation is found by its new title; a result opens the conversation.
    renamed = server.client.patch(
        f"{API}/conversations/{PROJECT}/{marsupials}", json={"title": "Wombat facts"}
    )
    assert renamed.status_code == 200, renamed.text
    box.fill("wombat")
    expect_one(results, "Wombat facts")
    results.get_by_test_id("conversation-entry").click()
    expect(page).to_have_url(re.compile(f"c={marsupials}"))
    box.fill("")
    expect(results).to_have_count(0)
    expect(page.get_by_test_id("conversation-list")).to_be_visible()
