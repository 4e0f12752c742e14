"""Users behind an authenticating proxy, as the page shows them.

``burr`` runs with ``BURR_CHATBOT_USER_HEADER=X-Forwarded-User``; each browser context sends the
header an authenticating proxy would add (Playwright's ``extra_http_headers``). Alice sees who
she is and her conversation; Bob, in another context, sees neither her conversation in his list
nor its messages at its URL. axe-core scans the page with the signed-in line, light and dark
(the context bypasses the page's CSP to inject it, as in ``test_accessibility.py``).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, ChatServer, burr_command, free_port, server_env

from .conftest import DESKTOP, PAGE_PATH
from .test_accessibility import axe_script, burr_offline, open_chat, scan, send, wait_for_answers

__all__ = ["axe_script", "burr_offline"]  # (fixtures of test_accessibility, used here too)

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HEADER = "X-Forwarded-User"


@pytest.fixture(scope="module")
def burr_with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    port = free_port()
    command = [burr_command(), "--no-open", "--no-copy-demo_data", "--port", str(port)]
    env = server_env(tmp_path_factory.mktemp("users-page"), None, BURR_CHATBOT_USER_HEADER=HEADER)
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / "users_page.log")
    server.client.headers[HEADER] = "probe"  # (every request needs a user, the probe's too)
    server.start()
    yield server
    server.close()


def signed_in_page(browser: Any, user: str) -> Any:
    context = browser.new_context(
        viewport=DESKTOP, bypass_csp=True, extra_http_headers={HEADER: user}
    )
    context.set_default_timeout(10_000)
    return context.new_page()


def test_each_user_sees_who_they_are_and_only_their_conversations(
    browser: Any, burr_with_users: ChatServer, axe_script: Path, request: pytest.FixtureRequest
) -> None:
    alice = signed_in_page(browser, "alice@example.com")
    bob = signed_in_page(browser, "bob@example.com")
    try:
        open_chat(alice, burr_with_users)
        expect(alice.get_by_test_id("signed-in")).to_have_text("Signed in as alice@example.com")
        send(alice, "What is a private question?")
        wait_for_answers(alice, 1)
        expect(alice.get_by_test_id("conversation-entry")).to_have_count(1)
        found = scan(alice, "signed-in", request.node.name)
        assert not found, "axe-core found violations:\n" + "\n".join(found)
        conversation_url = alice.url
        assert "c=" in conversation_url

        open_chat(bob, burr_with_users)
        expect(bob.get_by_test_id("signed-in")).to_have_text("Signed in as bob@example.com")
        expect(bob.get_by_test_id("conversation-entry")).to_have_count(0)
        bob.goto(conversation_url)  # Alice's conversation, by its link
        expect(bob.get_by_role("textbox", name="Message")).to_be_visible()
        bob.wait_for_timeout(500)
        expect(bob.get_by_text("What is a private question?")).to_have_count(0)
        expect(bob.get_by_test_id("assistant-message")).to_have_count(0)
    finally:
        alice.context.close()
        bob.context.close()


def test_the_page_names_nobody_when_users_are_off(browser: Any, burr_offline: ChatServer) -> None:
    page = browser.new_page(viewport=DESKTOP)
    try:
        page.goto(burr_offline.url + PAGE_PATH)
        expect(page.get_by_role("textbox", name="Message")).to_be_visible()
        expect(page.get_by_test_id("model-line")).not_to_contain_text("Loading")
        expect(page.get_by_test_id("signed-in")).to_have_count(0)
    finally:
        page.close()
