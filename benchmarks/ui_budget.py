"""The page's budgets: initial JavaScript, and main-thread long tasks while streaming and at load.

(a) Initial JavaScript: the module scripts, classic scripts and ``modulepreload`` links that the
built page's ``index.html`` loads before anything else, each gzipped with Python's ``gzip``
(level 9, which is also ``gzip.compress``'s default, and level 6, zlib's default and what
servers commonly use), summed, and compared with the 200 KB budget and with Burr's own UI
(``burr/tracking/server/build/index.html`` of the installed ``burr``, measured the same way).
Chunks loaded later (the render worker, the main-thread highlighter used only without workers)
are listed apart. KB = 1000 bytes.

(b) Long tasks: the fake OpenAI server (``tests/fake_openai.py``, its own process) streams a
markdown answer with a code block at 200 tokens/s to ``python -m burr_streaming_chatbot``;
headless Chromium (``/usr/bin/chromium``, via Playwright) opens the page with a
``PerformanceObserver`` for ``longtask`` installed before the page's scripts run, sends a
prompt and waits for the final message. Printed: long tasks during the stream, the longest,
total blocking time (the sum of each task's time over 50 ms), the stream's duration, and PASS
when no task of the stream reached 50 ms. For the longest tasks, what the long animation frame
that held each one spent its time on (its longest scripts, the style and layout they forced, the
frame's rendering). Whether the page keeps up: when the answer's last byte reached the browser
(Resource Timing) and how much later the page showed the final message; for the budget run,
how long the same answer takes read by a plain HTTP client just before (the server's pace on
this machine, without a browser competing for the cores). Two comparisons run in the same
process first: a short markdown answer (400 tokens), and the same number of tokens as plain
words (one long paragraph: no code block, so no syntax highlighting).

    python benchmarks/ui_budget.py                 # both
    python benchmarks/ui_budget.py --js-only       # (a) only; needs no browser
    python benchmarks/ui_budget.py --tokens 4000 --baseline-tokens 400 --delay-ms 5
    python benchmarks/ui_budget.py --no-plain --trace budget-trace.json   # + a timeline
    python benchmarks/ui_budget.py --load --baseline-src /tmp/base/src --load-rounds 3

(c) Page load (``--load``, instead of (b)): a conversation of ``--load-turns`` turns (50: 100
messages) is made through the server's own API, the fake upstream answering each prompt with
given markdown (prose, a list, a Python and a TypeScript code block: two code blocks per
answer). Then the page is opened on it (``?c=<id>``) in a fresh browser context, with the same
``longtask`` and ``long-animation-frame`` observers installed before the page's scripts, and
every long task from navigation is recorded until every message is shown, every code block is
highlighted (``pre[data-highlighted]``), and no long animation frame has come for 1.5 s.
Printed per load: the count of long tasks, the longest, their total, when the page settled,
and what the longest three were made of (the scripts of their long animation frame: function,
what invoked it, the chunk and character position, forced style and layout; then rendering).
With ``--baseline-src`` (a ``src`` folder holding ``burr_streaming_chatbot`` with its page
built, e.g. a checkout of the baseline commit after ``npm ci && npm run build`` in its
``ui_bundle``), a second server runs that package on the same storage, and the rounds
(``--load-rounds``, 3) open the baseline page and this one in alternating order, after one
load of each that is not counted. With ``--trace PATH``, the first round of each page is
traced (``PATH-new.json``, ``PATH-base.json``) and summarized. Exit status 1 when a load of
this page had a long task.

``--trace`` records a Chromium performance trace of the budget run (JavaScript samples
included), to open in Chrome DevTools' Performance panel or Perfetto; the script also prints
the longest tasks of the page's main thread from it, with what ran in each.

Needs the page built (``cd ui_bundle && npm run build``) and the package installed.
"""

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from statistics import median
from typing import Any, Optional

import httpx

ROOT = Path(__file__).resolve().parent.parent
PAGE_INDEX = ROOT / "src" / "burr_streaming_chatbot" / "ui" / "index.html"
BUDGET_KB = 200.0
LONG_TASK_MS = 50.0
PAGE_PATH = "/demos/streaming-chatbot/"
API = "/api/v0/streaming_chatbot"

sys.path.insert(0, str(ROOT / "tests"))
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from harness import machine_description  # noqa: E402

# ----------------------------------------------------------------------------- (a) initial JS


class _InitialScripts(HTMLParser):
    """Collects the URLs of scripts and module preloads an HTML document loads up front."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"])
        elif (
            tag == "link"
            and "modulepreload" in values.get("rel", "").split()
            and values.get("href")
        ):
            self.urls.append(values["href"])


@dataclass
class JsReport:
    name: str
    files: list[tuple[str, int, int, int]] = field(default_factory=list)
    """(path relative to the build, raw bytes, gzip -9 bytes, gzip -6 bytes)"""
    later: list[tuple[str, int, int]] = field(default_factory=list)
    """Other .js files in the build (loaded on demand): (path, raw, gzip -9)."""

    @property
    def raw(self) -> int:
        return sum(f[1] for f in self.files)

    @property
    def gz9(self) -> int:
        return sum(f[2] for f in self.files)

    @property
    def gz6(self) -> int:
        return sum(f[3] for f in self.files)


def _resolve(build: Path, index: Path, url: str) -> Optional[Path]:
    if "://" in url or url.startswith("//"):
        return None  # not part of the build
    path = url.split("?", 1)[0].split("#", 1)[0]
    return (build / path.lstrip("/")) if path.startswith("/") else (index.parent / path)


def initial_js(index: Path, name: str) -> JsReport:
    """What ``index`` loads up front, gzipped; ``FileNotFoundError`` when it is not built."""
    build = index.parent
    parser = _InitialScripts()
    parser.feed(index.read_text(encoding="utf-8"))
    report = JsReport(name)
    seen: set[Path] = set()
    for url in parser.urls:
        path = _resolve(build, index, url)
        if path is None or path in seen:
            continue
        seen.add(path)
        data = path.read_bytes()
        report.files.append(
            (
                str(path.relative_to(build)),
                len(data),
                len(gzip.compress(data, compresslevel=9, mtime=0)),
                len(gzip.compress(data, compresslevel=6, mtime=0)),
            )
        )
    for path in sorted(build.rglob("*.js")):
        if path not in seen:
            data = path.read_bytes()
            report.later.append(
                (str(path.relative_to(build)), len(data), len(gzip.compress(data, 9, mtime=0)))
            )
    return report


def burr_index() -> Path:
    import burr

    return Path(burr.__file__).resolve().parent / "tracking" / "server" / "build" / "index.html"


def kb(n: int) -> str:
    return f"{n / 1000:.1f} KB"


def print_js(page: JsReport, burr: Optional[JsReport]) -> None:
    print("== (a) initial JavaScript (gzip; KB = 1000 bytes)")
    for report in (page, burr):
        if report is None:
            continue
        print(f"  {report.name}:")
        for path, raw, gz9, gz6 in report.files:
            print(f"    {path}: {kb(raw)} raw, {kb(gz9)} gzip -9, {kb(gz6)} gzip -6")
        print(
            f"    initial total: {kb(report.raw)} raw, {kb(report.gz9)} gzip -9, "
            f"{kb(report.gz6)} gzip -6"
        )
        for path, raw, gz9 in report.later:
            print(f"    loaded later: {path}: {kb(raw)} raw, {kb(gz9)} gzip -9")
    print(
        f"  page vs the {BUDGET_KB:.0f} KB budget: {page.gz9 / 1000 / BUDGET_KB:.0%} (gzip -9), "
        f"{page.gz6 / 1000 / BUDGET_KB:.0%} (gzip -6) -> "
        f"{'PASS' if page.gz6 / 1000 <= BUDGET_KB else 'FAIL'}"
    )
    if burr is not None and burr.gz9:
        print(
            f"  page vs Burr's UI: {page.gz9 / burr.gz9:.2f}x (gzip -9), "
            f"{page.gz6 / burr.gz6:.2f}x (gzip -6)"
        )


# ----------------------------------------------------------------------------- (b) long tasks

OBSERVER = """
(() => {
  window.__longTasks = [];
  window.__streamMarks = {};
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({start: e.startTime, ms: e.duration});
    }).observe({type: 'longtask', buffered: true});
    window.__longTaskSupported = true;
  } catch (e) {
    window.__longTaskSupported = false;
  }
  // Long animation frames say what a long task was made of: scripts (and the style and layout
  // they forced), then the frame's own style, layout and paint.
  window.__frames = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__frames.push({
          start: e.startTime, ms: e.duration, renderStart: e.renderStart,
          styleAndLayoutStart: e.styleAndLayoutStart,
          scripts: e.scripts.map((s) => ({
            invoker: s.invoker, fn: s.sourceFunctionName, url: (s.sourceURL || '').split('/').pop(),
            ms: s.duration, forced: s.forcedStyleAndLayoutDuration,
          })),
        });
      }
    }).observe({type: 'long-animation-frame', buffered: true});
  } catch (e) {}
  const watch = () => {
    new MutationObserver(() => {
      const marks = window.__streamMarks;
      if (marks.sent === undefined) return;
      const streaming = document.querySelector('[data-testid="assistant-message"][data-streaming="true"] .prose');
      if (marks.firstText === undefined && streaming && streaming.textContent.length) marks.firstText = performance.now();
      const done = document.querySelectorAll('[data-testid="assistant-message"]:not([data-streaming])').length;
      if (marks.done === undefined && done > marks.answersBefore) marks.done = performance.now();
    }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
})();
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChatbotProcess:
    """``python -m burr_streaming_chatbot`` talking to ``base_url``, storage in a temp dir; with
    ``source``, the package (and its built page) imported from that ``src`` folder instead."""

    def __init__(
        self, base_url: str, storage: Path, source: Optional[Path] = None, log: str = "server.log"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BURR_CHATBOT_"))
        }
        env.update(
            OPENAI_BASE_URL=base_url,
            OPENAI_API_KEY="sk-benchmark",
            BURR_CHATBOT_STORAGE_DIR=str(storage),
            burr_path=str(storage),
            BURR_CHATBOT_MAX_RETRIES="0",
            PYTHONUNBUFFERED="1",
        )
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
        self.log = open(storage / log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "burr_streaming_chatbot", "--no-open", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the chatbot server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}{API}/model", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the chatbot server did not start")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class StreamRun:
    label: str
    tokens: int
    markdown: bool
    tasks: list[dict[str, float]]
    load_tasks: list[dict[str, float]]
    duration_ms: float
    first_text_ms: float
    code_blocks: int
    load_after: float = 0.0
    sent: float = 0.0
    last_byte_ms: Optional[float] = None
    """From Enter to the answer's last byte reaching the browser."""
    pace_s: Optional[float] = None
    """The same answer read by a plain HTTP client (budget run only)."""

    @property
    def longest(self) -> float:
        return max((t["ms"] for t in self.tasks), default=0.0)

    @property
    def blocking(self) -> float:
        return sum(max(0.0, t["ms"] - LONG_TASK_MS) for t in self.tasks)

    @property
    def passed(self) -> bool:
        return not self.tasks


TRACE_CATEGORIES = ",".join(
    [
        "devtools.timeline",
        "disabled-by-default-devtools.timeline",
        "disabled-by-default-devtools.timeline.frame",
        "v8.execute",
        "disabled-by-default-v8.cpu_profiler",
        "blink.user_timing",
    ]
)


def stream_once(
    browser: Any,
    url: str,
    fake: Any,
    label: str,
    tokens: int,
    delay_ms: float,
    markdown: bool,
    trace: Optional[Path] = None,
) -> StreamRun:
    fake.control(markdown=markdown, tokens=tokens, delay_ms=delay_ms, text=None)
    # The page's CSP (script-src 'self' plus one hash) would block the observer script and
    # Playwright's string predicates; the measuring context alone ignores it.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        context.add_init_script(OBSERVER)
        page = context.new_page()
        page.goto(url + PAGE_PATH)
        page.get_by_role("textbox", name="Message").wait_for()
        page.wait_for_function(
            "!document.querySelector('[data-testid=\"model-line\"]').textContent.includes('Loading')"
        )
        if not page.evaluate("window.__longTaskSupported"):
            raise RuntimeError("this Chromium has no longtask entries")
        page.wait_for_timeout(500)  # let the page settle: load-time tasks are reported apart
        box = page.get_by_role("textbox", name="Message")
        box.fill("Explain with some code?")
        page.evaluate(
            """() => {
              const m = window.__streamMarks;
              m.answersBefore = document.querySelectorAll(
                '[data-testid="assistant-message"]:not([data-streaming])').length;
              m.sent = performance.now();
            }"""
        )
        if trace is not None:
            browser.start_tracing(
                page=page, path=str(trace), categories=TRACE_CATEGORIES.split(",")
            )
        box.press("Enter")
        page.wait_for_function("window.__streamMarks.done !== undefined", timeout=300_000)
        page.wait_for_timeout(300)  # a task still running when the message lands is reported late
        if trace is not None:
            browser.stop_tracing()
        marks = page.evaluate("window.__streamMarks")
        # When the answer's last byte reached the browser (its network stack, whatever the page
        # was doing): the page's own lag is the time from there to the final message shown.
        last_byte = page.evaluate(
            """() => {
              const all = performance.getEntriesByType('resource')
                .filter((e) => e.name.includes('/response/'));
              return all.length ? all[all.length - 1].responseEnd : null;
            }"""
        )
        tasks = page.evaluate("window.__longTasks")
        frames = page.evaluate("window.__frames")
        code_blocks = page.locator('[data-testid="assistant-message"] pre').count()
    finally:
        context.close()
    sent, done = marks["sent"], marks["done"]
    during = [t for t in tasks if sent <= t["start"] <= done + 300]
    for task in during:
        task["frame"] = _frame_of(task, frames)
    before = [t for t in tasks if t["start"] < sent]
    return StreamRun(
        label=label,
        tokens=tokens,
        markdown=markdown,
        tasks=during,
        load_tasks=before,
        duration_ms=done - sent,
        first_text_ms=marks.get("firstText", done) - sent,
        code_blocks=code_blocks,
        load_after=os.getloadavg()[0],
        sent=sent,
        last_byte_ms=(last_byte - sent) if last_byte else None,
    )


def _frame_of(task: dict[str, Any], frames: list[dict[str, Any]]) -> str:
    """What the long animation frame holding a long task spent its time on, in short."""
    for frame in frames:
        if frame["start"] - 1 <= task["start"] <= frame["start"] + frame["ms"]:
            parts = []
            for script in sorted(frame["scripts"], key=lambda s: -s["ms"])[:2]:
                name = script["fn"] or script["invoker"]
                if script.get("at", -1) >= 0 and script.get("url"):
                    name += f" ({script['invoker']}, {script['url']}@{script['at']})"
                elif script["fn"]:
                    name += f" ({script['invoker']})"
                forced = f", {script['forced']:.0f} forced style/layout" if script["forced"] else ""
                parts.append(f"{name} {script['ms']:.0f} ms{forced}")
            end = frame["start"] + frame["ms"]
            if frame.get("renderStart"):
                parts.append(f"rendering {end - frame['renderStart']:.0f} ms")
            return "; ".join(parts) or "no script"
    return "?"


def server_pace(url: str, fake: Any, tokens: int, delay_ms: float, markdown: bool) -> float:
    """Seconds the same answer takes read by a plain HTTP client (no page): what the stream can
    do on this machine now, to tell the page falling behind from the server being slow."""
    fake.control(markdown=markdown, tokens=tokens, delay_ms=delay_ms, text=None)
    project = httpx.get(f"{url}{API}/model", timeout=10).json()["project_id"]
    app_id = f"pace-{int(time.time() * 1000)}"
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"{url}{API}/response/{project}/{app_id}", json={"prompt": "Pace?"}, timeout=300
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:") and '"type":"message"' in line.replace(" ", ""):
                break
    return time.perf_counter() - started


def print_run(run: StreamRun, delay_ms: float) -> None:
    rate = 1000.0 / delay_ms if delay_ms else float("inf")
    kind = "markdown" if run.markdown else "plain-word"
    print(f"  {run.label}: {run.tokens} {kind} tokens at {rate:.0f} tokens/s")
    print(
        f"    stream: {run.duration_ms / 1000:.2f} s from Enter to the final message "
        f"(first text after {run.first_text_ms:.0f} ms); code blocks rendered: {run.code_blocks}"
    )
    if run.last_byte_ms:
        lag = run.duration_ms - run.last_byte_ms
        print(
            f"    the answer's last byte reached the browser {run.last_byte_ms / 1000:.2f} s "
            f"after Enter; the page showed the final message {lag:.0f} ms later"
        )
    nominal = run.tokens * delay_ms / 1000
    if run.pace_s is not None:
        more = run.duration_ms / 1000 - run.pace_s
        print(
            f"    nominal {nominal:.1f} s; the same answer read by a plain HTTP client: "
            f"{run.pace_s:.2f} s (the page took {more:+.2f} s more)"
        )
    print(
        f"    long tasks during the stream: {len(run.tasks)}; longest {run.longest:.0f} ms; "
        f"total blocking time {run.blocking:.0f} ms"
    )
    if run.tasks:
        worst = sorted(run.tasks, key=lambda t: -t["ms"])[:8]
        longest = ", ".join(f"{t['ms']:.0f}" for t in worst)
        print(f"    the longest ones (ms): {longest}")
        for task in worst[:4]:
            at = (task["start"] - run.sent) / 1000
            print(f"      {task['ms']:.0f} ms at {at:.1f} s: {task.get('frame', '?')}")
    print(
        f"    long tasks while the page loaded (not counted): {len(run.load_tasks)}, "
        f"longest {max((t['ms'] for t in run.load_tasks), default=0):.0f} ms"
    )
    print(f"    load average (1 min) after the run: {run.load_after:.2f}")
    print(
        f"    target: no main-thread task of {LONG_TASK_MS:.0f} ms or more while streaming -> "
        f"{'PASS' if run.passed else 'FAIL'}"
    )


def long_tasks(
    tokens: int,
    baseline_tokens: int,
    delay_ms: float,
    plain: bool = True,
    trace: Optional[Path] = None,
) -> list[StreamRun]:
    from fake_openai import spawned_fake
    from playwright.sync_api import sync_playwright

    runs = []
    with tempfile.TemporaryDirectory(prefix="ui-budget-") as tmp, spawned_fake() as fake:
        server = ChatbotProcess(fake.base_url, Path(tmp))
        try:
            server.wait_ready()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                try:
                    plan = [("baseline, short answer", baseline_tokens, True)]
                    if plain:
                        plan.append(("comparison, plain words", tokens, False))
                    plan.append(("budget run", tokens, True))
                    for label, count, markdown in plan:
                        pace = (
                            server_pace(server.url, fake, count, delay_ms, markdown)
                            if label == "budget run"
                            else None
                        )
                        runs.append(
                            stream_once(
                                browser,
                                server.url,
                                fake,
                                label,
                                count,
                                delay_ms,
                                markdown,
                                trace if label == "budget run" else None,
                            )
                        )
                        runs[-1].pace_s = pace
                finally:
                    browser.close()
        finally:
            server.close()
    return runs


# ----------------------------------------------------------------------------- (c) page load

LOAD_OBSERVER = """
(() => {
  window.__longTasks = [];
  window.__frames = [];
  window.__longTaskSupported = false;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({start: e.startTime, ms: e.duration});
    }).observe({type: 'longtask', buffered: true});
    window.__longTaskSupported = true;
  } catch (e) {}
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__frames.push({
          start: e.startTime, ms: e.duration, renderStart: e.renderStart,
          styleAndLayoutStart: e.styleAndLayoutStart,
          scripts: e.scripts.map((s) => ({
            invoker: s.invoker, fn: s.sourceFunctionName, url: (s.sourceURL || '').split('/').pop(),
            at: s.sourceCharPosition, ms: s.duration, forced: s.forcedStyleAndLayoutDuration,
          })),
        });
      }
    }).observe({type: 'long-animation-frame', buffered: true});
  } catch (e) {}
})();
"""

# Settled: every message of the conversation on the page, every code block highlighted.
LOAD_SETTLED = """([users, answers, code]) => {
  const q = (s) => document.querySelectorAll(s).length;
  if (q('[data-testid="user-message"]') < users) return false;
  if (q('[data-testid="assistant-message"]:not([data-streaming])') < answers) return false;
  if (q('[data-testid="assistant-message"] pre[data-highlighted="true"]') < code) return false;
  window.__settled = window.__settled || performance.now();
  return true;
}"""


def history_answer(turn: int) -> str:
    """The answer of turn ``turn`` in the page-load conversation: prose, a list and two fenced
    code blocks (Python and TypeScript), different in each turn."""
    n = turn
    return (
        f"Here is how step {n} works: the **state machine** reads `count_{n}` and writes "
        f"the result back, as the [docs](https://example.com/{n}) say.\n\n"
        f"```python\n"
        f"def step_{n}(state: dict[str, int]) -> dict[str, int]:\n"
        f'    """Adds {n} to the count, then doubles it."""\n'
        f"    count = state.get('count', 0) + {n}\n"
        f"    for i in range({n % 7 + 3}):\n"
        f"        if i % 2 == 0:\n"
        f"            count *= 2\n"
        f"        else:\n"
        f"            count -= i  # keep it small\n"
        f"    return {{**state, 'count': count, 'label': f'step {{count}}'}}\n"
        f"```\n\n"
        f"Some notes:\n\n"
        f"- the step is pure: it returns a new state\n"
        f"- it runs in {n} ms on average\n"
        f"- see `step_{n}` above\n\n"
        f"The same in TypeScript:\n\n"
        f"```typescript\n"
        f"export function step{n}(state: Record<string, number>): Record<string, number> {{\n"
        f"  let count = (state.count ?? 0) + {n}\n"
        f"  for (let i = 0; i < {n % 7 + 3}; i++) {{\n"
        f"    count = i % 2 === 0 ? count * 2 : count - i\n"
        f"  }}\n"
        f"  return {{ ...state, count }}\n"
        f"}}\n"
        f"```\n\n"
        f"That is all for step {n}."
    )


CODE_BLOCKS_PER_ANSWER = 2


def make_conversation(url: str, fake: Any, turns: int) -> tuple[str, str]:
    """(project, app id) of a conversation of ``turns`` turns (two messages each) made through
    the server's own API, each answer ``history_answer(turn)``."""
    project = httpx.get(f"{url}{API}/model", timeout=10).json()["project_id"]
    app_id = f"load-{int(time.time() * 1000)}"
    with httpx.Client(timeout=60) as client:
        for turn in range(turns):
            fake.control(text=history_answer(turn), delay_ms=0)
            with client.stream(
                "POST",
                f"{url}{API}/response/{project}/{app_id}",
                json={"prompt": f"How does step {turn} work?"},
            ) as response:
                response.raise_for_status()
                for _ in response.iter_lines():
                    pass
        items = client.get(f"{url}{API}/history/{project}/{app_id}").json()
    if len(items) != 2 * turns:
        raise RuntimeError(f"the conversation has {len(items)} messages, not {2 * turns}")
    return project, app_id


@dataclass
class LoadRun:
    side: str
    round: int
    tasks: list[dict[str, Any]]
    settled_ms: float
    """From navigation to every message shown and every code block highlighted."""
    load_before: float

    @property
    def longest(self) -> float:
        return max((t["ms"] for t in self.tasks), default=0.0)

    @property
    def total(self) -> float:
        return sum(t["ms"] for t in self.tasks)

    @property
    def blocking(self) -> float:
        return sum(max(0.0, t["ms"] - LONG_TASK_MS) for t in self.tasks)


def load_once(
    browser: Any,
    url: str,
    app_id: str,
    turns: int,
    side: str,
    round_: int,
    trace: Optional[Path] = None,
    idle_ms: int = 1500,
) -> LoadRun:
    """Opens the page on ``app_id`` in a fresh context and records its long tasks from
    navigation until it has settled and then stayed idle ``idle_ms``."""
    load_before = os.getloadavg()[0]
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        context.add_init_script(LOAD_OBSERVER)
        page = context.new_page()
        if trace is not None:
            browser.start_tracing(
                page=page, path=str(trace), categories=TRACE_CATEGORIES.split(",")
            )
        page.goto(f"{url}{PAGE_PATH}?c={app_id}")
        page.wait_for_function(
            LOAD_SETTLED,
            arg=[turns, turns, turns * CODE_BLOCKS_PER_ANSWER],
            timeout=120_000,
            polling=50,
        )
        # Idle: no long animation frame for idle_ms (a task still running is reported late).
        page.wait_for_function(
            """(idle) => {
              const f = window.__frames, last = f.length ? f[f.length - 1] : null;
              const end = last ? last.start + last.ms : 0;
              return performance.now() - Math.max(end, window.__settled) >= idle;
            }""",
            arg=idle_ms,
            timeout=120_000,
            polling=100,
        )
        if trace is not None:
            browser.stop_tracing()
        if not page.evaluate("window.__longTaskSupported"):
            raise RuntimeError("this Chromium has no longtask entries")
        tasks = page.evaluate("window.__longTasks")
        frames = page.evaluate("window.__frames")
        settled = page.evaluate("window.__settled")
    finally:
        context.close()
    for task in tasks:
        task["frame"] = _frame_of(task, frames)
    return LoadRun(side, round_, tasks, settled, load_before)


def page_load(
    turns: int,
    rounds: int,
    baseline_src: Optional[Path],
    trace: Optional[Path] = None,
) -> list[LoadRun]:
    """The page-load scenario: one conversation, opened ``rounds`` times by this page and (with
    ``baseline_src``) by the baseline's page served by a second server on the same storage,
    alternating which goes first."""
    from fake_openai import spawned_fake
    from playwright.sync_api import sync_playwright

    runs: list[LoadRun] = []
    with tempfile.TemporaryDirectory(prefix="ui-budget-load-") as tmp, spawned_fake() as fake:
        servers = {"this page": ChatbotProcess(fake.base_url, Path(tmp))}
        if baseline_src is not None:
            servers["baseline"] = ChatbotProcess(
                fake.base_url, Path(tmp), source=baseline_src, log="baseline.log"
            )
        try:
            for server in servers.values():
                server.wait_ready()
            started = time.perf_counter()
            _, app_id = make_conversation(servers["this page"].url, fake, turns)
            print(
                f"  made a conversation of {2 * turns} messages, "
                f"{turns * CODE_BLOCKS_PER_ANSWER} code blocks, "
                f"in {time.perf_counter() - started:.1f} s"
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                try:
                    # One load of each, not counted: the server's caches, the disk's.
                    for side, server in servers.items():
                        load_once(browser, server.url, app_id, turns, side, 0)
                    sides = list(servers.items())
                    for n in range(1, rounds + 1):
                        order = sides if n % 2 else sides[::-1]
                        for side, server in order:
                            path = None
                            if trace is not None and n == 1:
                                suffix = "new" if side == "this page" else "base"
                                path = trace.with_name(f"{trace.stem}-{suffix}{trace.suffix}")
                            runs.append(
                                load_once(browser, server.url, app_id, turns, side, n, path)
                            )
                            print_load_run(runs[-1])
                            if path is not None:
                                summarize_trace(path, top=4, inclusive_top=12)
                finally:
                    browser.close()
        finally:
            for server in servers.values():
                server.close()
    return runs


def print_load_run(run: LoadRun) -> None:
    print(
        f"  round {run.round}, {run.side}: {len(run.tasks)} long tasks, longest {run.longest:.0f} ms, "
        f"total {run.total:.0f} ms (blocking {run.blocking:.0f} ms); settled after "
        f"{run.settled_ms:.0f} ms; load average before {run.load_before:.2f}"
    )
    for task in sorted(run.tasks, key=lambda t: -t["ms"])[:3]:
        print(f"      {task['ms']:.0f} ms at {task['start']:.0f} ms: {task['frame']}")


def print_load_summary(runs: list[LoadRun]) -> None:
    print("  summary (median over the rounds; worst in brackets):")
    for side in dict.fromkeys(r.side for r in runs):
        mine = [r for r in runs if r.side == side]

        longest = [r.longest for r in mine]
        print(
            f"    {side}: long tasks {median([len(r.tasks) for r in mine]):.0f} "
            f"[{max(len(r.tasks) for r in mine)}], longest {median(longest):.0f} ms "
            f"[{max(longest):.0f}], total {median([r.total for r in mine]):.0f} ms, settled after "
            f"{median([r.settled_ms for r in mine]):.0f} ms"
        )
    new = [r for r in runs if r.side == "this page"]
    ok = all(not r.tasks for r in new)
    print(
        f"  target: no long task of {LONG_TASK_MS:.0f} ms or more while the page opens the "
        f"conversation -> {'PASS' if ok else 'FAIL'}"
    )


# A long task's time by kind of work, from the trace's events nested in it.
_WORK = {
    "FunctionCall": "script",
    "EvaluateScript": "script",
    "v8.compile": "script",
    "RunMicrotasks": "script",
    "UpdateLayoutTree": "style",
    "Layout": "layout",
    "PrePaint": "paint",
    "Paint": "paint",
    "Layerize": "paint",
    "MajorGC": "gc",
    "MinorGC": "gc",
    "V8.GC_MC_BACKGROUND_MARKING": "gc",
    "ParseHTML": "html",
}


def _main_thread(events: list[dict[str, Any]]) -> Optional[tuple[int, int]]:
    """(pid, tid) of the page's renderer main thread: the CrRendererMain with the most script."""
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "thread_name"
        and e.get("args", {}).get("name") == "CrRendererMain"
    }
    busy: dict[tuple[int, int], float] = {}
    for e in events:
        key = (e.get("pid"), e.get("tid"))
        if key in mains and e.get("name") == "FunctionCall" and e.get("ph") == "X":
            busy[key] = busy.get(key, 0.0) + e.get("dur", 0)
    return max(busy, key=busy.get) if busy else None  # type: ignore[arg-type]


def _samples(events: list[dict[str, Any]], pid: int, tid: int) -> list[tuple[float, list[str]]]:
    """The JavaScript samples of a thread: (time in µs, frames from the leaf up)."""
    nodes: dict[str, dict[int, dict[str, Any]]] = {}
    start: dict[str, float] = {}
    raw: list[tuple[str, int, float]] = []
    clock: dict[str, float] = {}
    for e in events:
        if e.get("pid") != pid:
            continue
        if e.get("name") == "Profile" and e.get("tid") == tid:
            start[e["id"]] = e["args"]["data"]["startTime"]
        elif e.get("name") == "ProfileChunk":
            profile = e["id"]
            data = e["args"]["data"]
            cpu = data.get("cpuProfile", {})
            for node in cpu.get("nodes", []):
                nodes.setdefault(profile, {})[node["id"]] = node
            clock.setdefault(profile, start.get(profile, 0.0))
            for sample, delta in zip(
                cpu.get("samples", []), data.get("timeDeltas", []), strict=False
            ):
                clock[profile] += delta
                raw.append((profile, sample, clock[profile]))
    out = []
    for profile, sample, at in raw:
        if profile not in start:
            continue  # another thread's profile
        frames = []
        node = nodes.get(profile, {}).get(sample)
        while node is not None:
            frame = node["callFrame"]
            name = frame.get("functionName") or "(anonymous)"
            where = frame.get("url", "").rsplit("/", 1)[-1]
            if where:
                line, column = frame.get("lineNumber", 0) + 1, frame.get("columnNumber", 0) + 1
                name = f"{name} {where}:{line}:{column}"
            frames.append(name)
            node = nodes[profile].get(node.get("parent")) if node.get("parent") else None
        out.append((at, frames))
    return out


def summarize_trace(path: Path, top: int = 8, inclusive_top: int = 0) -> None:
    """Print the longest main-thread tasks of a trace, their time by kind of work, and the page's
    functions most sampled in them (self time of the leaf frame; with ``inclusive_top``, that many
    functions with the most samples in or under them)."""
    data = json.loads(path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    main = _main_thread(events)
    if main is None:
        print(f"  trace {path}: no renderer main thread found")
        return
    pid, tid = main
    on_main = [
        e for e in events if e.get("pid") == pid and e.get("tid") == tid and e.get("ph") == "X"
    ]
    tasks = sorted(
        (
            e
            for e in on_main
            if e.get("name") == "RunTask" and e.get("dur", 0) >= LONG_TASK_MS * 1000
        ),
        key=lambda e: -e["dur"],
    )
    samples = _samples(events, pid, tid)
    print(f"  trace {path}: {len(tasks)} main-thread tasks of {LONG_TASK_MS:.0f} ms or more")
    for task in tasks[:top]:
        begin, end = task["ts"], task["ts"] + task["dur"]
        kinds: dict[str, float] = {}
        for e in on_main:
            kind = _WORK.get(e.get("name", ""))
            if kind and begin <= e["ts"] < end:
                kinds[kind] = kinds.get(kind, 0.0) + e.get("dur", 0) / 1000
        leaves: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        for at, frames in samples:
            if begin <= at < end and frames:
                leaves[frames[0]] = leaves.get(frames[0], 0) + 1
                for frame in set(frames):
                    inclusive[frame] = inclusive.get(frame, 0) + 1
        hot = sorted(leaves.items(), key=lambda kv: -kv[1])[:4]
        held = sorted(inclusive.items(), key=lambda kv: -kv[1])[:inclusive_top]
        print(
            f"    {task['dur'] / 1000:.0f} ms: "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
        )
        for frame, count in hot:
            print(f"      {count} samples in {frame}")
        for frame, count in held:
            print(f"      {count} samples in or under {frame}")


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--baseline-tokens", type=int, default=400)
    parser.add_argument("--delay-ms", type=float, default=5.0, help="5 ms: 200 tokens/s")
    parser.add_argument("--js-only", action="store_true", help="only (a), no browser")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain-words comparison")
    parser.add_argument(
        "--trace", type=Path, help="write a Chromium performance trace of the budget run here"
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="(c) page load of a long conversation instead of (b) streaming",
    )
    parser.add_argument("--load-turns", type=int, default=50, help="turns (two messages each)")
    parser.add_argument("--load-rounds", type=int, default=3, help="loads of each page")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="a src folder whose burr_streaming_chatbot/ui holds the baseline's built page: "
        "(c) opens it too, served by a second server on the same storage",
    )
    args = parser.parse_args()

    print(f"{machine_description()} (other work on the machine skews (b))")
    try:
        page = initial_js(PAGE_INDEX, "this page (src/burr_streaming_chatbot/ui)")
    except FileNotFoundError:
        sys.exit("The page is not built: cd ui_bundle && npm run build")
    try:
        burr: Optional[JsReport] = initial_js(
            burr_index(), "Burr's UI (burr/tracking/server/build)"
        )
    except (ImportError, FileNotFoundError) as error:
        print(f"  (Burr's UI not measured: {error})")
        burr = None
    print_js(page, burr)
    if args.js_only:
        return

    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    if args.load:
        if args.baseline_src is not None:
            try:
                base = initial_js(
                    args.baseline_src / "burr_streaming_chatbot" / "ui" / "index.html", "baseline"
                )
            except FileNotFoundError:
                sys.exit(f"The baseline page is not built under {args.baseline_src}")
            print(
                f"  baseline initial JS: {kb(base.raw)} raw, {kb(base.gz9)} gzip -9, "
                f"{kb(base.gz6)} gzip -6 (this page: {kb(page.raw)}, {kb(page.gz9)}, "
                f"{kb(page.gz6)})"
            )
        print(
            f"== (c) main-thread long tasks while the page opens a conversation of "
            f"{2 * args.load_turns} messages ({chromium_version()}, headless)"
        )
        loads = page_load(args.load_turns, args.load_rounds, args.baseline_src, args.trace)
        print_load_summary(loads)
        if any(r.tasks for r in loads if r.side == "this page"):
            sys.exit(1)
        return
    print(f"== (b) main-thread long tasks while an answer streams ({chromium_version()}, headless)")
    runs = long_tasks(
        args.tokens, args.baseline_tokens, args.delay_ms, plain=not args.no_plain, trace=args.trace
    )
    for run in runs:
        print_run(run, args.delay_ms)
    if args.trace is not None:
        summarize_trace(args.trace)
    if not runs[-1].passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
