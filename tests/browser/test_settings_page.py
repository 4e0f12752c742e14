"""The settings panel in Chromium: the open conversation's answer model, system prompt and
temperature, chosen on the page, reach the model server (the fake, which lists its models and
records each request) and are shown again after a reload."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ChatServer, start_server
from fake_openai import FakeUpstream

from .conftest import PAGE_PATH

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture
def served(upstream: FakeUpstream, tmp_path: Path) -> Iterator[ChatServer]:
    """A server answering with the fake, which lists two models (the list is not kept)."""
    upstream.control(models=["model-a", "model-b"], delay_ms=1)
    server = start_server(
        "cli", tmp_path, upstream, "settings_page", BURR_CHATBOT_MODELS_CACHE_S="0"
    )
    yield server
    server.close()


def send_and_wait(page: Any, prompt: str, answers: int) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(prompt)
    box.press("Enter")
    done = page.locator('[data-testid="assistant-message"]:not([data-streaming])')
    expect(done).to_have_count(answers, timeout=15_000)
    expect(page.locator('[data-streaming="true"]')).to_have_count(0, timeout=15_000)


def answer_requests(upstream: FakeUpstream) -> list[dict]:
    return [b for b in upstream.stats()["request_bodies"] if b.get("stream")]


def test_the_settings_panel_changes_what_the_next_answer_uses(
    page: Any, served: ChatServer, upstream: FakeUpstream
) -> None:
    page.goto(served.url + PAGE_PATH)
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_test_id("model-line")).not_to_contain_text("Loading")
    send_and_wait(page, "What is Burr?", 1)
    first = answer_requests(upstream)[-1]
    assert first["model"] == "answer-model" and "temperature" not in first

    page.get_by_test_id("settings-panel").locator("summary").click()
    model = page.get_by_role("combobox", name="Model")
    expect(model).to_have_value("")
    expect(model.locator("option")).to_have_text(["Default (answer-model)", "model-a", "model-b"])
    model.select_option("model-b")
    page.get_by_role("textbox", name="System prompt").fill("Answer in French.")
    page.get_by_role("spinbutton", name="Temperature (0 to 2)").fill("0.3")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-message")).to_contain_text("Saved")

    send_and_wait(page, "What is Hamilton?", 2)
    body = answer_requests(upstream)[-1]
    assert (body["model"], body["temperature"]) == ("model-b", 0.3)
    assert body["messages"][0]["content"].startswith("Answer in French.")

    # A reload shows them again (kept in the conversation's Burr state).
    page.reload()
    expect(page.get_by_test_id("assistant-message")).to_have_count(2)
    page.get_by_test_id("settings-panel").locator("summary").click()
    expect(page.get_by_role("combobox", name="Model")).to_have_value("model-b")
    expect(page.get_by_role("textbox", name="System prompt")).to_have_value("Answer in French.")
    expect(page.get_by_role("spinbutton", name="Temperature (0 to 2)")).to_have_value("0.3")

    # A refused change says why, and changes nothing (a temperature outside 0 to 2 the browser
    # itself stops; a system prompt too long, the server).
    page.get_by_role("spinbutton", name="Temperature (0 to 2)").fill("5")
    page.get_by_role("textbox", name="System prompt").fill("x" * 8001)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    page.get_by_role("spinbutton", name="Temperature (0 to 2)").fill("1")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("the limit is 8000")
    path = page.url.split("c=")[-1].split("&")[0]
    settings = served.client.get(f"{served.api}/settings/demo_streaming_chatbot/{path}").json()
    assert settings == {
        "model": "model-b",
        "system_prompt": "Answer in French.",
        "temperature": 0.3,
    }
