"""Tool calls and approvals on the page, in Chromium, against the real server and its offline
model (which calls the demo tools: arithmetic calls ``calculator``, "remember ..." calls
``save_note``, which waits for a person's approval).

Each test runs in a fresh browser context, so the page starts a new conversation of its own;
the notes are the project's, so each test saves a note with words of its own.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import ChatServer, start_server

from .conftest import PAGE_PATH

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

VIOLATIONS = """
() => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) =>
    window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
}
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """``burr-streaming-chatbot`` with no model configured: the offline model answers."""
    storage: Path = tmp_path_factory.mktemp("tools-page")
    server = start_server("cli", storage, None, "tools_page")
    yield server
    server.close()


def open_chat(page: Any, server: ChatServer, query: str = "") -> None:
    page.goto(server.url + PAGE_PATH + query)
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_test_id("model-line")).not_to_contain_text("Loading")


def send(page: Any, prompt: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(prompt)
    box.press("Enter")


def settled(page: Any) -> None:
    """Nothing streams and the composer is ready."""
    expect(page.locator('[data-streaming="true"]')).to_have_count(0, timeout=15_000)
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()


def conversation_id(page: Any) -> str:
    ids = parse_qs(urlparse(page.url).query).get("c")
    assert ids, f"no ?c= in {page.url}"
    return ids[0]


def card(page: Any, tool: str) -> Any:
    return page.locator(f'[data-testid="tool-card"][data-tool-name="{tool}"]')


def approval(page: Any) -> Any:
    return page.get_by_test_id("approval-card")


def test_arithmetic_shows_a_calculator_card_with_the_result(page: Any, offline: ChatServer) -> None:
    """ "What is 6*7?": a calculator card inside the answer (arguments, result 42, time taken),
    closed once done; the answer goes on after it; the graph panel shows run_tool on the path;
    no CSP violation and no error in the console."""
    console: list[str] = []
    # (An answer's status is the server's, not a page error: the branch tree of a conversation
    # being created may be asked for a moment before it exists, a 404 the page handles.)
    page.on(
        "console",
        lambda m: (
            console.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.add_init_script(f"({VIOLATIONS})()")
    open_chat(page, offline)
    send(page, "What is 6*7?")
    settled(page)

    calculator = card(page, "calculator")
    expect(calculator).to_have_count(1)
    expect(calculator).to_have_attribute("data-status", "ok")
    expect(calculator.get_by_test_id("tool-status")).to_have_text("done")
    expect(calculator.get_by_test_id("tool-duration")).to_have_text(re.compile(r"^\d+ ms$"))
    details = calculator.get_by_test_id("tool-details")
    expect(details).not_to_have_attribute("open", "")
    calculator.locator("summary").click()
    expect(calculator.get_by_test_id("tool-arguments")).to_contain_text('"expression": "6*7"')
    expect(calculator.get_by_test_id("tool-output")).to_contain_text('"result": "42"')
    # The card is in the answer that called the tool; the answer's text goes on after it.
    answers = page.get_by_test_id("assistant-message")
    expect(answers.first.get_by_test_id("tool-card")).to_have_count(1)
    expect(answers.last).to_contain_text("42")
    # The state machine panel: the tool steps are nodes, and this turn went through run_tool.
    expect(page.locator('[data-testid="graph-node"][data-action="run_tool"]')).to_have_count(1)
    expect(page.locator('[data-testid="graph-node"][data-action="tool_approval"]')).to_have_count(1)
    expect(page.get_by_test_id("answer-path")).to_contain_text("run_tool")
    assert page.evaluate("window.__violations") == []
    assert console == []


def test_approve_runs_the_tool_and_the_note_is_listed(page: Any, offline: ChatServer) -> None:
    """ "remember ...": an approval card, the graph waiting at tool_approval; Approve -> the
    note is saved (the card's result), the card's buttons are gone and the notes list shows it."""
    open_chat(page, offline)
    send(page, "remember to buy milk")
    settled(page)
    expect(approval(page)).to_have_count(1)
    expect(approval(page).get_by_test_id("approval-message")).to_contain_text("save_note")
    note = card(page, "save_note")
    expect(note).to_have_attribute("data-state", "awaiting")
    expect(note.get_by_test_id("tool-arguments")).to_contain_text("buy milk")
    expect(page.locator('[data-testid="graph-node"][data-waiting="true"]')).to_have_attribute(
        "data-action", "tool_approval"
    )

    approval(page).get_by_role("button", name="Approve").click()
    settled(page)
    expect(approval(page)).to_have_count(0)
    expect(note).to_have_attribute("data-status", "ok")
    expect(page.locator('[data-testid="graph-node"][data-waiting="true"]')).to_have_count(0)
    expect(page.get_by_test_id("answer-path")).to_contain_text("tool_approval")
    note.locator("summary").click()
    expect(note.get_by_test_id("tool-output")).to_contain_text("buy milk")
    expect(page.get_by_test_id("notes-list").get_by_test_id("note-text")).to_contain_text(
        ["buy milk"]
    )


def test_deny_with_a_reason_and_the_answer_goes_on(page: Any, offline: ChatServer) -> None:
    """Deny with a reason: the card says "denied: <reason>", and the model's answer continues
    after it; nothing is saved."""
    open_chat(page, offline)
    send(page, "remember to water the plants")
    settled(page)
    answers_before = page.get_by_test_id("assistant-message").count()
    approval(page).get_by_role("textbox", name="Reason (optional)").fill("not today")
    approval(page).get_by_role("button", name="Deny").click()
    settled(page)
    note = card(page, "save_note")
    expect(approval(page)).to_have_count(0)
    expect(note).to_have_attribute("data-status", "denied")
    expect(note.get_by_test_id("tool-status")).to_have_text("denied: not today")
    expect(page.get_by_test_id("assistant-message")).to_have_count(answers_before + 1)
    expect(page.get_by_test_id("chat-error")).to_have_count(0)
    expect(page.get_by_test_id("note-text").filter(has_text="water the plants")).to_have_count(0)


def test_a_reload_while_waiting_keeps_the_card_and_it_still_works(
    page: Any, offline: ChatServer
) -> None:
    """Reloaded while a call waits: the approval card is there again (the history and GET
    /approvals), the graph still marked as waiting, and Approve works."""
    open_chat(page, offline)
    send(page, "remember to book the dentist")
    settled(page)
    expect(approval(page)).to_have_count(1)
    page.reload()
    expect(approval(page)).to_have_count(1, timeout=15_000)
    expect(card(page, "save_note")).to_have_attribute("data-state", "awaiting")
    expect(page.locator('[data-testid="graph-node"][data-waiting="true"]')).to_have_count(1)
    approval(page).get_by_role("button", name="Approve").click()
    settled(page)
    expect(card(page, "save_note")).to_have_attribute("data-status", "ok")
    expect(approval(page)).to_have_count(0)
    expect(page.get_by_test_id("note-text").filter(has_text="book the dentist")).to_have_count(1)


def test_a_second_tab_sees_the_request_and_sees_it_answered(page: Any, offline: ChatServer) -> None:
    """Two tabs on one conversation: the request made in the first appears in the second (it
    follows GET /events), and once approved in the first it is gone from the second, which shows
    the result and the saved note."""
    open_chat(page, offline)
    send(page, "What is 2+3?")
    settled(page)
    other = page.context.new_page()
    open_chat(other, offline, f"?c={conversation_id(page)}")
    expect(card(other, "calculator")).to_have_count(1)

    send(page, "remember to call the plumber")
    settled(page)
    expect(approval(page)).to_have_count(1)
    expect(approval(other)).to_have_count(1, timeout=15_000)
    expect(approval(other).get_by_test_id("approval-message")).to_contain_text("save_note")

    approval(page).get_by_role("button", name="Approve").click()
    settled(page)
    expect(approval(page)).to_have_count(0)
    expect(approval(other)).to_have_count(0, timeout=15_000)
    expect(card(other, "save_note")).to_have_attribute("data-status", "ok", timeout=15_000)
    expect(other.get_by_test_id("note-text").filter(has_text="call the plumber")).to_have_count(
        1, timeout=15_000
    )
