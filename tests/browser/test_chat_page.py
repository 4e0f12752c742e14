"""The page in a real browser, against the real server and the fake OpenAI-compatible upstream.

Most tests share the session's ``chatbot_server``; each one runs in a fresh browser context, so
the page makes a new conversation id for it. What the page shows while an answer streams is
recorded inside the page by a ``MutationObserver`` (every DOM commit), not by polling from
Python, so short-lived states (a node of the graph running for a few milliseconds) are seen.
"""

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import ChatServer, start_server
from fake_openai import FakeUpstream

from .conftest import PAGE_PATH

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = pytest.mark.browser

THIRTY_WORDS = (
    "Burr models an application as a graph of actions that read and write state and the "
    "tracking server records every step so you can replay and debug each run later"
)
assert len(THIRTY_WORDS.split()) == 30

RECORDER = """
() => {
  window.__samples = [];
  const sample = () => {
    const streaming = document.querySelector(
      '[data-testid="assistant-message"][data-streaming="true"] .prose');
    const active = document.querySelector('[data-testid="graph-node"][aria-current="step"]');
    const last = window.__samples[window.__samples.length - 1];
    const now = {
      len: streaming ? streaming.textContent.length : -1,
      active: active ? active.getAttribute('data-action') : null,
    };
    if (!last || last.len !== now.len || last.active !== now.active) window.__samples.push(now);
  };
  window.__recorder = new MutationObserver(sample);
  window.__recorder.observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
  sample();
}
"""


# ------------------------------------------------------------------------------- helpers


def open_chat(page: Any, server: ChatServer, query: str = "") -> None:
    """Open the page and wait until it knows the project (sending works from then on)."""
    page.goto(server.url + PAGE_PATH + query)
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_test_id("model-line")).not_to_contain_text("Loading")


def send(page: Any, prompt: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(prompt)
    box.press("Enter")


def finished_answers(page: Any) -> Any:
    return page.locator('[data-testid="assistant-message"]:not([data-streaming])')


def wait_for_answers(page: Any, count: int, timeout: float = 15_000) -> None:
    """Wait until ``count`` answers are shown and nothing streams."""
    expect(finished_answers(page)).to_have_count(count, timeout=timeout)
    expect(page.locator('[data-streaming="true"]')).to_have_count(0, timeout=timeout)
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def answer_text(answer: Any) -> str:
    """The rendered markdown of an answer, without its meta line and buttons."""
    return answer.locator(".prose").inner_text().strip()


def conversation_id(page: Any) -> str:
    ids = parse_qs(urlparse(page.url).query).get("c")
    assert ids, f"no ?c= in {page.url}"
    return ids[0]


def samples(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("window.__samples")


def wait_until(check: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


# ------------------------------------------------------------------------------- tests


def test_answer_streams_in_with_its_details_and_the_graph_follows(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    # The router's reply is held up, so decide_mode runs for 300 ms: long enough to be drawn
    # however loaded the machine is (the steps before it may take less than a frame).
    upstream.control(text=THIRTY_WORDS, delay_ms=80, route_delay_ms=300)
    open_chat(page, server)
    page.evaluate(RECORDER)

    send(page, "What is Burr?")
    wait_for_answers(page, 1)

    seen = samples(page)
    print("observed (text length, running node):", [(s["len"], s["active"]) for s in seen])
    lengths = sorted({s["len"] for s in seen if s["len"] > 0})
    assert len(lengths) >= 3, f"the answer did not grow in steps: {lengths}"
    # The nodes marked as running, in the order shown (a node shown in several samples once).
    active = [s["active"] for s in seen if s["active"]]
    moves = [node for i, node in enumerate(active) if i == 0 or active[i - 1] != node]
    # The running node moves forward along the graph's path for this prompt (steps quicker than
    # a frame may be skipped, none repeated, none off the path), from decide_mode to the answer.
    path = ["prompt", "check_safety", "decide_mode", "answer_question"]
    assert moves[-2:] == ["decide_mode", "answer_question"] and moves == [
        node for node in path if node in moves
    ], f"the running node did not move through the graph to the answer: {moves}"
    assert {s["active"] for s in seen if s["len"] > 0} == {"answer_question"}, (
        f"the answer's text streamed while another node was marked as running: {seen}"
    )

    answer = finished_answers(page).last
    assert answer_text(answer) == THIRTY_WORDS
    expect(answer.get_by_test_id("answer-mode")).to_contain_text("answer_question")
    expect(answer.get_by_test_id("answer-model")).to_contain_text("answer-model")
    expect(answer.get_by_test_id("answer-ttft")).to_have_text(
        re.compile(r"First token:\s*[\d.]+ m?s")
    )
    # Once the answer is done, nothing is marked as running.
    expect(page.locator('[data-testid="graph-node"][aria-current="step"]')).to_have_count(0)
    expect(page.get_by_test_id("user-message")).to_have_text(["What is Burr?"])


def test_stop_ends_the_stream_and_cancels_the_upstream_request(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    upstream.control(tokens=400, delay_ms=50)  # 20 s if nobody stops it
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if "/response/" in r.url else None,
    )
    open_chat(page, server)

    send(page, "What is a long answer?")
    streaming = page.locator('[data-testid="assistant-message"][data-streaming="true"] .prose')
    expect(streaming).to_contain_text("token5")
    assert upstream.stats()["open_streams"] == 1
    page.get_by_role("button", name="Stop").click()

    # The stream stopped: the kept text no longer grows, and it is marked as interrupted.
    wait_for_answers(page, 1)
    kept = finished_answers(page).last
    before = answer_text(kept)
    assert before.startswith("Token0 token1")
    page.wait_for_timeout(1000)
    assert answer_text(kept) == before
    expect(kept.get_by_test_id("interrupted-marker")).to_be_visible()
    assert "token399" not in before

    # The server cancelled its upstream request.
    assert wait_until(lambda: upstream.stats()["open_streams"] == 0, 2.0), upstream.stats()
    assert upstream.stats()["completed_streams"] == 0

    # The composer works again, and the same conversation takes a new prompt (no 409).
    upstream.control(tokens=5, delay_ms=0)
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_editable()
    send(page, "How about a short one?")
    wait_for_answers(page, 2)
    assert answer_text(finished_answers(page).last) == "Token0 token1 token2 token3 token4"
    expect(page.get_by_test_id("chat-error")).to_have_count(0)
    assert statuses == [200, 200], statuses

    # After a reload the stopped answer is still there, still marked as interrupted.
    page.reload()
    expect(page.get_by_test_id("user-message")).to_have_text(
        ["What is a long answer?", "How about a short one?"]
    )
    expect(finished_answers(page)).to_have_count(2)
    stopped = finished_answers(page).first
    assert answer_text(stopped).startswith(before), "the kept text changed after a reload"
    expect(stopped.get_by_test_id("interrupted-marker")).to_be_visible()


def test_regenerate_right_after_stop_answers_again_in_a_branch(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    """Stop, then at once Regenerate: the answer is asked again in a branch forked before it
    (the original keeps its stopped answer), and nothing is refused with a 409."""
    upstream.control(tokens=400, delay_ms=50)
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/response/" in r.url else None)
    open_chat(page, server)

    send(page, "What is a long answer?")
    expect(page.locator('[data-streaming="true"] .prose')).to_contain_text("token3")
    original = page.url.split("c=")[1].split("&")[0]
    page.get_by_role("button", name="Stop").click()
    upstream.control(tokens=5, delay_ms=0)
    page.get_by_role("button", name="Regenerate").click()

    wait_for_answers(page, 1)
    expect(page).not_to_have_url(re.compile(rf"c={original}(&|$)"))
    expect(page.get_by_test_id("chat-error")).to_have_count(0)
    assert answer_text(finished_answers(page).last) == "Token0 token1 token2 token3 token4"
    expect(page.get_by_test_id("user-message")).to_have_text(["What is a long answer?"])
    assert statuses == [200, 200], statuses
    kept = server.history(original)
    assert [m["role"] for m in kept] == ["user", "assistant"] and kept[1]["interrupted"]


def test_error_shows_retry_and_retry_answers_without_repeating_the_prompt(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    upstream.control(fault="server_error", fault_count=1, fault_on="route")
    open_chat(page, server)

    send(page, "What went wrong?")
    error = page.get_by_test_id("chat-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-code", "upstream_unavailable")
    retry = error.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    expect(page.get_by_test_id("user-message")).to_have_text(["What went wrong?"])

    retry.click()
    wait_for_answers(page, 1)
    expect(error).to_have_count(0)
    assert answer_text(finished_answers(page).last).startswith("Token0 token1")
    expect(page.get_by_test_id("user-message")).to_have_text(["What went wrong?"])

    history = server.history(conversation_id(page))
    assert [item["role"] for item in history] == ["user", "assistant"], history


def test_reload_and_deep_link_show_the_whole_conversation(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    prompts = ["What is a state machine?", "Write a poem about graphs"]
    answers = ["A graph of actions and transitions.", "Nodes hum softly, edges sing along."]
    open_chat(page, server)
    for number, (prompt, text) in enumerate(zip(prompts, answers, strict=False), start=1):
        upstream.control(text=text)
        send(page, prompt)
        wait_for_answers(page, number)

    app_id = conversation_id(page)

    def shows_both(view: Any) -> None:
        expect(view.get_by_test_id("user-message")).to_have_text(prompts)
        expect(finished_answers(view)).to_have_count(2)
        assert [answer_text(a) for a in finished_answers(view).all()] == answers
        # The Burr panel does not claim there is no answer yet.
        expect(view.get_by_test_id("answer-path-empty")).not_to_contain_text("No answer yet")

    page.reload()
    assert conversation_id(page) == app_id
    shows_both(page)

    linked = page.context.new_page()
    open_chat(linked, server, f"?c={app_id}")
    shows_both(linked)
    expect(finished_answers(linked).last.get_by_test_id("answer-mode")).to_contain_text(
        "generate_poem"
    )


def test_burr_sidebar_demos_link_opens_this_page(
    page: Any, upstream: FakeUpstream, tmp_path: Path
) -> None:
    burr = start_server("burr", tmp_path, upstream, "browser-burr")
    try:
        page.goto(burr.url + "/projects")
        demos = page.get_by_role("button", name="Demos")
        expect(demos).to_be_visible()
        link = page.get_by_role("link", name="streaming-chatbot", exact=True)
        if not link.is_visible():
            demos.click()  # Burr's sidebar folds its demos away
        expect(link).to_be_visible()
        link.click()

        page.wait_for_url(re.compile(r"/demos/streaming-chatbot/(\?.*)?$"))
        assert urlparse(page.url).path == PAGE_PATH
        expect(page.get_by_role("textbox", name="Message")).to_be_visible()
        assert page.evaluate("typeof window.__BURR_DEMO__") == "object"
        expect(page).to_have_title(re.compile("Streaming chatbot"))

        # And it works there: a prompt is answered through Burr's own server.
        upstream.control(text="Served by burr.")
        send(page, "What serves this?")
        wait_for_answers(page, 1)
        assert answer_text(finished_answers(page).last) == "Served by burr."
    finally:
        burr.close()


def test_html_in_an_answer_is_text_and_never_runs(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    image = '<img src=x onerror="window.__xss=1">'
    script = "<script>window.__xss=2</script>"
    upstream.control(text=f"Look: {image} and {script} done.")
    open_chat(page, server)

    send(page, "What does HTML do here?")
    wait_for_answers(page, 1)

    def safe(view: Any) -> None:
        answer = finished_answers(view).last
        expect(answer).to_contain_text(image)
        expect(answer).to_contain_text(script)
        assert answer.locator("img, script").count() == 0
        view.wait_for_timeout(300)  # time for an image's onerror, were there one
        assert view.evaluate("typeof window.__xss") == "undefined"

    safe(page)
    page.reload()  # the history is rendered by another path than the stream
    expect(finished_answers(page)).to_have_count(1)
    safe(page)


def test_offline_server_shows_the_banner_and_streams_the_offline_answer(
    page: Any, tmp_path: Path
) -> None:
    offline = start_server(
        "cli", tmp_path, None, "browser-offline", BURR_CHATBOT_OFFLINE_DELAY_MS="15"
    )
    try:
        open_chat(page, offline)
        expect(page.get_by_test_id("offline-banner")).to_be_visible()
        expect(page.get_by_test_id("model-line")).to_contain_text("offline-demo")
        page.evaluate(RECORDER)

        send(page, "Write a poem about rivers")
        wait_for_answers(page, 1, timeout=20_000)
        grown = sorted({s["len"] for s in samples(page) if s["len"] > 0})
        assert len(grown) >= 3, f"the offline answer did not stream: {grown}"
        answer = finished_answers(page).last
        expect(answer).to_contain_text("offline demo model")
        expect(answer.get_by_test_id("answer-mode")).to_contain_text("generate_poem")
        expect(answer.get_by_test_id("answer-model")).to_contain_text("offline-demo")
    finally:
        offline.close()


PHONE_ANSWER = (
    "## Wide things\n\n"
    "A long link: https://example.com/a/very/long/path/that/does/not/break/easily/anywhere/at/all\n\n"
    "```python\n"
    "result = compute_something_with_a_very_long_name(argument_one, argument_two, argument_three)\n"
    "```\n\n"
    "| column one | column two | column three | column four |\n"
    "|---|---|---|---|\n"
    "| a fairly long cell | another fairly long cell | yet another cell | the last cell |\n\n"
    "Averyveryveryverylongwordwithoutanyspacesthatmustwrapsomehowinsteadofoverflowing.\n"
)


def test_phone_width_keeps_composer_and_answer_visible_without_sideways_scroll(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    upstream.control(text=PHONE_ANSWER)
    open_chat(page, server)

    send(page, "Show me some wide code?")
    wait_for_answers(page, 1)
    page.wait_for_timeout(300)  # the highlighter chunk loads after the first code block

    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_in_viewport()
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    last = finished_answers(page).last
    expect(last).to_be_in_viewport()
    expect(last.get_by_role("button", name="Regenerate")).to_be_in_viewport()

    widths = page.evaluate(
        """() => ({
          page: document.documentElement.scrollWidth,
          list: document.querySelector('[data-testid="message-list"]').scrollWidth,
          listClient: document.querySelector('[data-testid="message-list"]').clientWidth,
        })"""
    )
    assert widths["page"] <= 375, widths
    assert widths["list"] <= widths["listClient"], widths


def test_reload_mid_answer_reattaches_and_shows_the_answer_without_repeating_text(
    page: Any, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Reload while an answer streams: the page loads the history, then reattaches to the answer
    (``GET /stream``), which goes on growing to its end, with no text twice.

    The server keeps an answer going without a reader for ``BURR_CHATBOT_RESUME_GRACE_S`` (half
    a second by default), and a reload on a loaded machine can take longer than that: the answer
    would then be stopped, which is another test's case
    (``test_leaving_mid_answer_for_longer_than_the_grace_shows_the_stopped_partial``). Here the
    server waits 30 s, far longer than any reload, so the answer is always there to reattach to.
    """
    words = [f"word{i}" for i in range(70)]
    full = " ".join(words)
    upstream.control(text=full, delay_ms=80)  # about 5.6 s
    patient = start_server(
        "cli", tmp_path, upstream, "browser-reload", BURR_CHATBOT_RESUME_GRACE_S="30"
    )
    try:
        open_chat(page, patient)
        send(page, "Tell me a long story?")
        streaming = page.locator('[data-testid="assistant-message"][data-streaming="true"] .prose')
        expect(streaming).to_contain_text("word4")
        app_id = conversation_id(page)

        reattached: list[int] = []
        page.on(
            "response",
            lambda r: (
                reattached.append(r.status)
                if r.request.method == "GET" and "/stream/" in r.url and app_id in r.url
                else None
            ),
        )
        started = time.monotonic()
        page.reload()
        # What the page shows from the reload on, polled: (streaming text length, finished answers).
        seen: list[tuple[int, int]] = []

        def look() -> bool:
            state = page.evaluate(
                """() => {
                  const live = document.querySelector(
                    '[data-testid="assistant-message"][data-streaming="true"] .prose');
                  return [live ? live.textContent.length : -1, document.querySelectorAll(
                    '[data-testid="assistant-message"]:not([data-streaming])').length];
                }"""
            )
            if not seen or tuple(state) != seen[-1]:
                seen.append(tuple(state))
            return state[1] >= 1

        assert wait_until(look, 20.0, interval=0.03), f"no finished answer after the reload: {seen}"
        growth = sorted({length for length, _ in seen if length > 0})
        print(f"reload to first look: {seen[:3]}; {time.monotonic() - started:.2f} s in all")
        print(f"streamed lengths seen after the reload: {growth}")
        wait_for_answers(page, 1)
        assert conversation_id(page) == app_id
        expect(page.get_by_test_id("user-message")).to_have_text(["Tell me a long story?"])
        answer = finished_answers(page).last
        text = answer_text(answer)
        assert text == full, f"not the whole answer, once: {text!r}"
        assert 200 in reattached, f"the page did not reattach (GET /stream): {reattached}"
        assert len(growth) >= 2, f"the answer did not grow after the reload: {seen}"
        expect(answer.get_by_test_id("interrupted-marker")).to_have_count(0)
        expect(page.get_by_test_id("chat-error")).to_have_count(0)
        history = patient.history(app_id)
        assert [item["role"] for item in history] == ["user", "assistant"], history
        assert history[1]["content"].split() == words
    finally:
        # The page's open streams (GET /events) would hold up the server's shutdown.
        page.goto("about:blank")
        patient.close()


def test_leaving_mid_answer_for_longer_than_the_grace_shows_the_stopped_partial(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    """Away from the page for longer than the server waits for a reader: the answer is stopped,
    and coming back shows its partial text marked "Stopped" (not a failure), once."""
    words = [f"word{i}" for i in range(200)]
    upstream.control(text=" ".join(words), delay_ms=80)
    open_chat(page, server)
    send(page, "Tell me a very long story?")
    expect(page.locator('[data-streaming="true"] .prose')).to_contain_text("word3")
    app_id = conversation_id(page)
    url = page.url
    page.goto("about:blank")
    time.sleep(1.5)  # the server keeps an answer going 0.5 s without a reader
    page.goto(url)
    wait_for_answers(page, 1)
    answer = finished_answers(page).last
    shown = answer_text(answer).split()
    assert 4 <= len(shown) < len(words) and shown == words[: len(shown)], shown
    marker = answer.get_by_test_id("interrupted-marker")
    expect(marker).to_have_text("Stopped")
    expect(page.get_by_test_id("chat-error")).to_have_count(0)
    expect(page.get_by_test_id("user-message")).to_have_text(["Tell me a very long story?"])
    page.wait_for_timeout(500)
    assert answer_text(finished_answers(page).last).split() == shown, "the stopped answer grew"
    assert [item["content"].split() for item in server.history(app_id)][1] == shown


def test_markdown_and_highlighting_run_in_a_worker(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    """The page parses markdown and highlights code in a Web Worker (so a long answer does not
    hold up the page); a worker that fails to load would silently leave all of it to the page."""
    warnings: list[str] = []
    page.on(
        "console", lambda m: warnings.append(m.text) if m.type in ("warning", "error") else None
    )
    upstream.control(
        text=(
            "Some **bold** text.\n\n```python\ndef double(x):\n    return x * 2\n```\n\n"
            "- one\n- two\n"
        )
    )
    open_chat(page, server)
    send(page, "Show me code?")
    wait_for_answers(page, 1)
    answer = finished_answers(page).last
    expect(answer.locator('pre[data-highlighted="true"] .hljs-keyword').first).to_have_text("def")
    expect(answer.locator("strong")).to_have_text("bold")
    expect(answer.locator("li")).to_have_text(["one", "two"])
    urls = [worker.url for worker in page.workers]
    assert any("renderWorker" in url for url in urls), urls
    assert not [w for w in warnings if "worker" in w.lower()], warnings


THINKING = "The user asks what Burr is so I should explain state machines and tracking briefly"
THOUGHT_ANSWER = "Burr runs your application as a state machine."

THINKING_RECORDER = """
() => {
  window.__thinking = [];
  const sample = () => {
    const live = document.querySelector('[data-testid="assistant-message"][data-streaming="true"]');
    const block = live && live.querySelector('[data-testid="thinking"]');
    const prose = live && live.querySelector('.prose');
    const last = window.__thinking[window.__thinking.length - 1];
    const now = {
      state: block ? block.getAttribute('data-state') : null,
      words: block ? block.querySelector('[data-testid="thinking-count"]').textContent : null,
      answer: prose ? prose.textContent.length : 0,
    };
    if (!last || last.state !== now.state || last.words !== now.words || last.answer !== now.answer)
      window.__thinking.push(now);
  };
  window.__thinkingRecorder = new MutationObserver(sample);
  window.__thinkingRecorder.observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}
"""


def test_a_reasoning_models_thinking_streams_in_a_collapsed_block_kept_after_a_reload(
    page: Any, server: ChatServer, upstream: FakeUpstream
) -> None:
    """The fake streams its thinking (``reasoning_content``) before the answer: the page shows a
    collapsed "Thinking…" block while the model thinks, which opens to the thinking text; the
    answer follows, its details show the token usage, and the block is still there after a
    reload (the thinking is stored with the answer)."""
    words = len(THINKING.split())
    # 15 pieces of thinking 250 ms apart: about 3.5 s before the answer's first word.
    upstream.control(reasoning=THINKING, text=THOUGHT_ANSWER, delay_ms=250)
    open_chat(page, server)
    page.evaluate(THINKING_RECORDER)

    send(page, "What is Burr?")
    live = page.locator('[data-testid="assistant-message"][data-streaming="true"]')
    block = live.get_by_test_id("thinking")
    expect(block).to_be_visible()
    # While the model thinks: "Thinking…", collapsed, no answer text yet.
    expect(block).to_have_attribute("data-state", "thinking")
    expect(block.get_by_test_id("thinking-summary")).to_contain_text("Thinking…")
    assert block.evaluate("el => el.open") is False, "the Thinking block is open by default"
    expect(block.get_by_test_id("thinking-text")).not_to_be_visible()
    expect(live.locator(".prose")).to_have_count(0)

    # Opening it shows the thinking as it streams.
    block.get_by_test_id("thinking-summary").click()
    assert block.evaluate("el => el.open") is True
    expect(block.get_by_test_id("thinking-text")).to_be_visible()
    expect(block.get_by_test_id("thinking-text")).to_contain_text("The user asks")

    wait_for_answers(page, 1)
    answer = finished_answers(page).last
    assert answer_text(answer) == THOUGHT_ANSWER
    done = answer.get_by_test_id("thinking")
    expect(done).to_have_attribute("data-state", "done")
    expect(done.get_by_test_id("thinking-summary")).to_contain_text("Thought")
    expect(done.get_by_test_id("thinking-summary")).not_to_contain_text("Thinking")
    expect(done.get_by_test_id("thinking-count")).to_have_text(f"{words} words")
    expect(done.get_by_test_id("thinking-text")).to_have_text(THINKING)
    assert done.evaluate("el => el.open") is True, "the block closed when the answer ended"

    # What the page showed, commit by commit: the block came before any answer text, said
    # "thinking" while its word count grew, and "done" once the text started.
    seen = page.evaluate("window.__thinking")
    print(
        "observed (state, words, answer length):",
        [(s["state"], s["words"], s["answer"]) for s in seen],
    )
    first_block = next(i for i, s in enumerate(seen) if s["state"] is not None)
    first_text = next(i for i, s in enumerate(seen) if s["answer"] > 0)
    assert first_block < first_text, "the Thinking block appeared only with the answer"
    thinking = [s for s in seen if s["state"] == "thinking"]
    assert all(s["answer"] == 0 for s in thinking), thinking
    assert len({s["words"] for s in thinking}) >= 3, f"the thinking did not stream: {thinking}"
    assert all(s["state"] == "done" for s in seen if s["answer"] > 0), seen

    # The answer's details: the tokens it cost, the thinking counted apart (one per piece).
    usage = answer.get_by_test_id("answer-usage")
    expect(usage).to_be_visible()
    match = re.fullmatch(
        r"Usage:\s*(\d+) tokens \((\d+) in, (\d+) out, (\d+) thinking\)", usage.inner_text().strip()
    )
    assert match, usage.inner_text()
    total, prompt, completion, thought = (int(g) for g in match.groups())
    assert thought == words
    assert completion == words + len(THOUGHT_ANSWER.split())
    assert total == prompt + completion and prompt > 0
    expect(answer.get_by_test_id("answer-ttft")).to_be_visible()

    # After a reload the stored answer still has its thinking (collapsed again).
    page.reload()
    expect(finished_answers(page)).to_have_count(1)
    stored = finished_answers(page).last
    assert answer_text(stored) == THOUGHT_ANSWER
    kept = stored.get_by_test_id("thinking")
    expect(kept).to_be_visible()
    expect(kept).to_have_attribute("data-state", "done")
    expect(kept.get_by_test_id("thinking-summary")).to_contain_text("Thought")
    assert kept.evaluate("el => el.open") is False
    kept.get_by_test_id("thinking-summary").click()
    expect(kept.get_by_test_id("thinking-text")).to_have_text(THINKING)
    history = server.history(conversation_id(page))
    assert history[-1]["reasoning"] == THINKING, history
