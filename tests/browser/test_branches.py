"""Branches, two tabs on one conversation, and a prompt sent while an answer streams (issue 14),
in Chromium against the real server and the fake OpenAI-compatible upstream.

Edit and Regenerate fork the conversation (``POST /fork``, a Burr fork) and open the fork
(``?c=<id>``); a ``‹ n / m ›`` switcher steps between the alternatives. A tab follows its
conversation's changes (``GET /events``), so another tab's prompt appears and its answer streams
without a reload. Sending while an answer streams interrupts it (``if_busy=interrupt``).
"""

import re
import time
from typing import Any

import pytest
from conftest import PROJECT, ChatServer
from fake_openai import FakeUpstream

from .conftest import DESKTOP, PAGE_PATH
from .test_chat_page import (
    answer_text,
    conversation_id,
    finished_answers,
    open_chat,
    send,
    wait_for_answers,
)

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = pytest.mark.browser


def user_texts(page: Any) -> list[str]:
    """The text of each user message (without its buttons)."""
    return [
        text.strip() for text in page.locator('[data-testid="user-message"] > p').all_inner_texts()
    ]


def converse(page: Any, upstream: FakeUpstream, exchanges: list[tuple[str, str]]) -> None:
    for number, (prompt, answer) in enumerate(exchanges, start=1):
        upstream.control(text=answer, delay_ms=0)
        send(page, prompt)
        wait_for_answers(page, number)


def test_editing_the_first_message_makes_a_branch_and_the_switcher_goes_back_and_forth(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    exchanges = [
        ("What is Burr?", "Burr runs state machines."),
        ("And its UI?", "It shows every step."),
        ("Can it fork?", "Yes, from any step."),
    ]
    converse(page, upstream, exchanges)
    original = conversation_id(page)

    upstream.control(text="A branch answer.", delay_ms=0)
    first = page.get_by_test_id("user-message-row").first
    first.get_by_role("button", name="Edit message").click()
    editor = first.get_by_role("textbox", name="Edited message")
    expect(editor).to_have_value("What is Burr?")
    editor.fill("What is Apache Burr?")
    first.get_by_role("button", name="Send").click()

    # The branch: one exchange, the edited prompt and a new answer, in a new conversation.
    expect(page).not_to_have_url(f"{server.url}{PAGE_PATH}?c={original}")
    wait_for_answers(page, 1)
    branch = conversation_id(page)
    assert branch != original
    assert user_texts(page) == ["What is Apache Burr?"]
    assert answer_text(finished_answers(page).last) == "A branch answer."
    switcher = page.get_by_test_id("user-message-row").first.get_by_test_id("branch-switcher")
    expect(switcher.get_by_test_id("branch-position")).to_have_text("2 / 2")
    expect(page.get_by_test_id("branch-switcher")).to_have_count(1)

    # The server's view: the original untouched, the branch forked from it at message 0.
    assert [m["content"] for m in server.history(original)] == [
        text for exchange in exchanges for text in exchange
    ]
    assert [m["content"] for m in server.history(branch)] == [
        "What is Apache Burr?",
        "A branch answer.",
    ]
    tree = server.client.get(f"{server.api}/branches/{PROJECT}/{branch}").json()
    assert tree["root"] == original
    assert [(b["app_id"], b["parent"], b["fork_at"]) for b in tree["branches"]] == [
        (original, None, None),
        (branch, original, 0),
    ]

    # ‹ goes back to the original, › forward to the branch again.
    switcher.get_by_role("button", name="Previous branch").click()
    expect(page).to_have_url(f"{server.url}{PAGE_PATH}?c={original}")
    wait_for_answers(page, 3)
    assert user_texts(page) == [prompt for prompt, _ in exchanges]
    expect(page.get_by_test_id("branch-position")).to_have_text("1 / 2")
    page.get_by_role("button", name="Next branch").click()
    expect(page).to_have_url(f"{server.url}{PAGE_PATH}?c={branch}")
    wait_for_answers(page, 1)
    assert user_texts(page) == ["What is Apache Burr?"]

    # A reload keeps the branch (it is in the URL), switcher and all.
    page.reload()
    wait_for_answers(page, 1)
    assert user_texts(page) == ["What is Apache Burr?"]
    expect(page.get_by_test_id("branch-position")).to_have_text("2 / 2")

    # The conversation list shows the branch under the original.
    branches = page.get_by_test_id("conversation-branch")
    expect(branches).to_have_count(1)
    expect(branches).to_contain_text("Branch at message 1")
    expect(branches).to_have_attribute("aria-current", "page")

    # Burr's own UI reads the fork's parent pointer from its API (the project's app list).
    apps = server.client.get(f"/api/v0/{PROJECT}/__none__/apps", params={"limit": 1000}).json()
    by_id = {app["app_id"]: app for app in apps["applications"]}
    assert branch in by_id, sorted(by_id)
    parent = by_id[branch].get("parent_pointer")
    assert parent and parent["app_id"] == original, by_id[branch]


def test_a_prompt_sent_in_one_tab_appears_and_streams_in_another_without_a_reload(
    browser: Any, page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    converse(page, upstream, [("First question?", "First answer.")])
    app_id = conversation_id(page)

    other_context = browser.new_context(viewport=DESKTOP)
    other_context.set_default_timeout(10_000)
    errors: list[str] = []
    try:
        other = other_context.new_page()
        other.on("pageerror", lambda error: errors.append(str(error)))
        open_chat(other, server, f"?c={app_id}")
        wait_for_answers(other, 1)
        # Marks this document: a reload would lose it. Then records, at every DOM commit, when
        # the second prompt appeared and how long the streamed answer is.
        other.evaluate(
            """() => {
              window.__sameDocument = true;
              window.__seen = {prompt: null, streaming: null, lengths: []};
              const sample = () => {
                const now = Date.now();
                if (window.__seen.prompt === null &&
                    document.querySelectorAll('[data-testid="user-message"]').length >= 2) {
                  window.__seen.prompt = now;
                }
                const live = document.querySelector(
                  '[data-testid="assistant-message"][data-streaming="true"] .prose');
                if (live && live.textContent.length > 0) {
                  if (window.__seen.streaming === null) window.__seen.streaming = now;
                  const lengths = window.__seen.lengths;
                  if (lengths[lengths.length - 1] !== live.textContent.length) {
                    lengths.push(live.textContent.length);
                  }
                }
              };
              new MutationObserver(sample).observe(document.body,
                {subtree: true, childList: true, characterData: true, attributes: true});
            }"""
        )
        # Let the second tab's /events stream open before the prompt is sent.
        other.wait_for_timeout(500)

        words = " ".join(f"word{i}" for i in range(40))
        upstream.control(text=words, delay_ms=60)
        sent_at = page.evaluate("Date.now()")
        send(page, "Second question?")

        wait_for_answers(page, 2, timeout=20_000)
        wait_for_answers(other, 2, timeout=20_000)
        seen = other.evaluate("window.__seen")
        print("second tab:", {k: v for k, v in seen.items() if k != "lengths"}, "sent", sent_at)
        assert seen["prompt"] is not None and seen["prompt"] - sent_at < 1000, (seen, sent_at)
        assert seen["streaming"] is not None and seen["streaming"] - sent_at < 1000, (seen, sent_at)
        assert len(seen["lengths"]) >= 3, f"the answer did not stream in steps: {seen['lengths']}"
        assert other.evaluate("window.__sameDocument") is True, "the second tab was reloaded"

        for each in (page, other):
            assert user_texts(each) == ["First question?", "Second question?"]
            assert answer_text(finished_answers(each).last) == words
            assert answer_text(finished_answers(each).first) == "First answer."
            expect(each.get_by_test_id("chat-error")).to_have_count(0)
        assert [m["content"] for m in server.history(app_id)] == [
            "First question?",
            "First answer.",
            "Second question?",
            words,
        ]
    finally:
        other_context.close()
    assert not errors, f"uncaught errors in the second tab: {errors}"


def test_sending_while_an_answer_streams_interrupts_it_and_answers_the_new_prompt(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    upstream.control(tokens=400, delay_ms=50)  # 20 s if nothing interrupts it
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/response/" in r.url else None)
    open_chat(page, server)

    send(page, "What is a long answer?")
    streaming = page.locator('[data-testid="assistant-message"][data-streaming="true"] .prose')
    expect(streaming).to_contain_text("token5")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_editable()

    upstream.control(tokens=5, delay_ms=0)
    send(page, "A short one instead?")

    wait_for_answers(page, 2)
    assert user_texts(page) == ["What is a long answer?", "A short one instead?"]
    first, second = finished_answers(page).first, finished_answers(page).last
    kept = answer_text(first)
    assert kept.startswith("Token0 token1"), kept
    assert "token399" not in kept
    expect(first.get_by_test_id("interrupted-marker")).to_be_visible()
    assert answer_text(second) == "Token0 token1 token2 token3 token4"
    expect(page.get_by_test_id("chat-error")).to_have_count(0)
    assert statuses == [200, 200], statuses
    assert any(
        "if_busy=interrupt" in url
        for url in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    )

    history = server.history(conversation_id(page))
    assert [(m["role"], m["interrupted"]) for m in history] == [
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", False),
    ], history
    assert history[1]["content"].startswith(kept.split(" token")[0])

    # After a reload: the same, the cut answer still marked.
    page.reload()
    wait_for_answers(page, 2)
    assert user_texts(page) == ["What is a long answer?", "A short one instead?"]
    expect(finished_answers(page).first.get_by_test_id("interrupted-marker")).to_be_visible()


def test_regenerating_an_earlier_answer_makes_a_branch_that_ends_with_its_prompt(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    converse(page, upstream, [("Name a colour?", "Blue."), ("Name a fruit?", "Apple.")])
    original = conversation_id(page)

    upstream.control(text="Green.", delay_ms=0)
    finished_answers(page).first.get_by_role("button", name="Regenerate").click()
    expect(page).not_to_have_url(f"{server.url}{PAGE_PATH}?c={original}")
    wait_for_answers(page, 1)
    branch = conversation_id(page)
    assert user_texts(page) == ["Name a colour?"]
    assert answer_text(finished_answers(page).last) == "Green."
    # The prompt is stored once in the branch; the switcher is on the answer.
    assert [(m["role"], m["content"]) for m in server.history(branch)] == [
        ("user", "Name a colour?"),
        ("assistant", "Green."),
    ]
    answer = finished_answers(page).last
    expect(answer.get_by_test_id("branch-position")).to_have_text("2 / 2")
    expect(page.get_by_test_id("user-message-row").get_by_test_id("branch-switcher")).to_have_count(
        0
    )

    answer.get_by_role("button", name="Previous branch").click()
    expect(page).to_have_url(f"{server.url}{PAGE_PATH}?c={original}")
    wait_for_answers(page, 2)
    assert [answer_text(a) for a in finished_answers(page).all()] == ["Blue.", "Apple."]
    expect(finished_answers(page).first.get_by_test_id("branch-position")).to_have_text("1 / 2")


def test_a_prompt_sent_in_a_second_tab_interrupts_the_answer_streaming_in_the_first(
    browser: Any, page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    open_chat(page, server)
    converse(page, upstream, [("Warm up?", "Ready.")])
    app_id = conversation_id(page)
    other_context = browser.new_context(viewport=DESKTOP)
    other_context.set_default_timeout(10_000)
    try:
        other = other_context.new_page()
        open_chat(other, server, f"?c={app_id}")
        wait_for_answers(other, 1)
        other.wait_for_timeout(500)

        upstream.control(text=None, tokens=400, delay_ms=50)
        send(page, "A long one?")
        live = '[data-testid="assistant-message"][data-streaming="true"] .prose'
        expect(page.locator(live)).to_contain_text("token5")
        expect(other.locator(live)).to_contain_text("token5")  # followed in the second tab

        upstream.control(text=None, tokens=3, delay_ms=0)
        send(other, "Never mind, a short one?")
        for each in (other, page):
            wait_for_answers(each, 3, timeout=20_000)
            assert user_texts(each) == ["Warm up?", "A long one?", "Never mind, a short one?"]
            cut = finished_answers(each).nth(1)
            assert answer_text(cut).startswith("Token0 token1")
            expect(cut.get_by_test_id("interrupted-marker")).to_be_visible()
            assert answer_text(finished_answers(each).last) == "Token0 token1 token2"
            expect(each.get_by_test_id("chat-error")).to_have_count(0)
    finally:
        other_context.close()


def test_burr_s_own_project_page_shows_the_fork_and_leads_to_its_parent(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    """Burr's UI (its project page, served by the same server) marks the branch as forked; the
    mark leads to the conversation it was forked from."""
    api = "/api/v0/streaming_chatbot"
    original = f"burr-ui-{int(time.time() * 1000) % 10**9}"
    upstream.control(text="First answer.", delay_ms=0)
    server.turn(original, "What is a fork?")
    branch = server.client.post(f"{api}/fork/{PROJECT}/{original}", json={"at": 1}).json()
    upstream.control(text="Second answer.", delay_ms=0)
    server.turn(branch, "What is a fork?")  # (Burr's page lists applications that ran a step)

    page.goto(f"{server.url}/project/{PROJECT}")
    row = page.locator("tr", has_text=branch)
    expect(row).to_have_count(1, timeout=20_000)
    parent_row = page.locator("tr", has_text=original)
    expect(parent_row).to_have_count(1)
    # The "Forked" cell: an icon for the branch, none for the original.
    forked = page.locator("th, td").filter(has_text="Forked").first
    expect(forked).to_be_visible()
    column = page.locator("thead th").all_inner_texts().index("Forked")
    expect(row.locator("td").nth(column).locator("svg")).to_have_count(1)
    expect(parent_row.locator("td").nth(column).locator("svg")).to_have_count(0)
    row.locator("td").nth(column).locator("svg").click()
    expect(page).to_have_url(re.compile(rf"/project/{PROJECT}/[^/]+/{original}$"))
