"""Opening a long conversation: 100 messages whose answers hold code blocks, all rendered and
highlighted in the end, the newest put on the page first (the rest follow in slices)."""

from typing import Any

import pytest
from conftest import ChatServer
from fake_openai import FakeUpstream

from .conftest import PAGE_PATH

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = pytest.mark.browser

TURNS = 50

# What the page showed first of the conversation, recorded at each DOM commit.
FIRST_SHOWN = """
() => {
  window.__firstShown = null;
  const look = () => {
    if (window.__firstShown) return;
    const answers = [...document.querySelectorAll('[data-testid="assistant-message"]')];
    if (!answers.length) return;
    const log = document.querySelector('[role="log"]');
    window.__firstShown = {
      steps: answers.map((a) => Number((a.textContent.match(/step (\\d+) works/) || [])[1])),
      busy: log ? log.getAttribute('aria-busy') : null,
    };
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true});
}
"""


def answer(turn: int) -> str:
    return (
        f"Here is how step {turn} works: the **machine** reads `count_{turn}`.\n\n"
        f"```python\ndef step_{turn}(state):\n    return state + {turn}\n```\n\n"
        f"- one\n- two\n\n"
        f"```javascript\nconst step{turn} = (state) => state + {turn}\n```\n\n"
        f"That is step {turn}."
    )


def test_a_long_conversation_opens_newest_first_and_ends_fully_rendered_and_highlighted(
    page: Any, server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    prompts = [f"How does step {turn} work?" for turn in range(TURNS)]
    for turn, prompt in enumerate(prompts):
        upstream.control(text=answer(turn))
        server.turn(app_id, prompt)

    page.add_init_script(f"({FIRST_SHOWN})()")
    page.goto(server.url + PAGE_PATH + f"?c={app_id}")
    answers = page.locator('[data-testid="assistant-message"]:not([data-streaming])')
    expect(answers).to_have_count(TURNS, timeout=60_000)
    expect(page.get_by_test_id("user-message")).to_have_text(prompts)
    code = page.locator('[data-testid="assistant-message"] pre[data-highlighted="true"]')
    expect(code).to_have_count(2 * TURNS, timeout=60_000)
    expect(page.get_by_role("log", name="Conversation")).not_to_have_attribute("aria-busy", "true")

    # Every answer in order, its markdown rendered and both its code blocks highlighted.
    steps = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="assistant-message"]')].map((a) => ({
          first: (a.querySelector('.prose p') || {}).textContent,
          strong: a.querySelectorAll('.prose strong').length,
          items: [...a.querySelectorAll('.prose li')].map((li) => li.textContent),
          languages: [...a.querySelectorAll('pre code')].map((c) => c.className),
          keywords: a.querySelectorAll('pre[data-highlighted="true"] .hljs-keyword').length,
          code: [...a.querySelectorAll('pre')].map((p) => p.textContent),
        }))"""
    )
    assert len(steps) == TURNS
    for turn, shown in enumerate(steps):
        assert shown["first"] == f"Here is how step {turn} works: the machine reads count_{turn}."
        assert shown["strong"] == 1 and shown["items"] == ["one", "two"], shown
        assert shown["languages"] == [
            "hljs block language-python",
            "hljs block language-javascript",
        ]
        assert shown["keywords"] >= 3, shown  # def, return, const
        assert shown["code"] == [
            f"def step_{turn}(state):\n    return state + {turn}",
            f"const step{turn} = (state) => state + {turn}",
        ]

    # The newest answers came first, while the log said it was still busy.
    first = page.evaluate("window.__firstShown")
    assert first is not None
    assert TURNS - 1 in first["steps"] and 0 not in first["steps"], first
    assert len(first["steps"]) < TURNS and first["busy"] == "true", first


# The page's scripts as the browser got them: the module script, the preloaded modules, and the
# size of each (decoded), from the page's own resource timings.
SCRIPTS = """
() => {
  const size = (url) => {
    const entry = performance.getEntriesByName(url)[0];
    return entry ? entry.decodedBodySize : null;
  };
  const first = document.querySelector('script[type="module"]');
  return {
    first: first ? {url: first.src, size: size(first.src)} : null,
    preloaded: [...document.querySelectorAll('link[rel="modulepreload"]')].map((l) => l.href),
  };
}
"""


def test_the_first_script_is_small_and_react_and_the_app_are_preloaded_chunks_of_their_own(
    page: Any, server: ChatServer
) -> None:
    """The browser evaluates a module graph in one task: the page's first script only starts the
    render worker and imports React, which imports the app, each a chunk of its own (and so
    evaluated in a task of its own); index.html preloads both, so neither waits for the other's
    download."""
    page.goto(server.url + PAGE_PATH)
    expect(page.get_by_role("textbox")).to_be_visible()
    scripts = page.evaluate(SCRIPTS)
    first = scripts["first"]
    assert first is not None, scripts
    assert first["size"] is not None and first["size"] < 20_000, first
    names = [url.rsplit("/", 1)[-1] for url in scripts["preloaded"]]
    assert any(name.startswith("boot-") for name in names), names
    assert any(name.startswith("App-") for name in names), names
    # And React and the app were loaded from those chunks, not from the first script.
    loaded = page.evaluate(
        "() => performance.getEntriesByType('resource').map((e) => e.name.split('/').pop())"
    )
    assert any(name.startswith("boot-") for name in loaded), loaded
    assert any(name.startswith("App-") for name in loaded), loaded
