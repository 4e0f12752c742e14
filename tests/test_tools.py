"""The tools the model can call (``tools.py``): the demo tools and their bounds, a toolbox's calls
(every failure a tool error, never an exception), and tools registered by other installed
packages through the ``burr_streaming_chatbot.tools`` entry point group."""

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from burr_streaming_chatbot.tools import (
    DEMO_TOOLS,
    TOOLS_ENTRY_POINT_GROUP,
    Tool,
    Toolbox,
    ToolContext,
    ToolError,
    ToolOutcome,
    calculate,
    load_toolbox,
)

FIXTURE_TOOLS = Path(__file__).resolve().parent / "fixture_tool_package"


class NoNotes:
    """A NoteBook for tools that keep no notes: any use is a bug of the test."""

    async def add_note(self, project_id: str, app_id: str, text: str) -> dict[str, Any]:
        raise AssertionError("no note expected")


CONTEXT = ToolContext(project_id="p", app_id="c", notes=NoNotes())
DEMOS = Toolbox(DEMO_TOOLS)


async def call(name: str, arguments: Any, toolbox: Toolbox = DEMOS, timeout_s=5.0) -> ToolOutcome:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return await toolbox.call(name, text, CONTEXT, timeout_s)


def tool(name: str, run: Any, **kwargs: Any) -> Tool:
    return Tool(
        name=name,
        description=f"{name} for a test",
        parameters={"type": "object"},
        run=run,
        **kwargs,
    )


# -- calculator -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, result",
    [
        ("6*7", {"result": "42"}),
        ("(2 + 3) * 7 / 5", {"result": "7"}),
        ("1/3 + 1/6", {"result": "1/2", "decimal": "0.5"}),
        ("0.1 + 0.2", {"result": "3/10", "decimal": "0.3"}),  # exact: no binary floats
        ("1/3", {"result": "1/3", "decimal": "0.33333333333333333333"}),
        ("-2/3", {"result": "-2/3", "decimal": "-0.66666666666666666667"}),
        ("2**-2", {"result": "1/4", "decimal": "0.25"}),
        ("(1/2)**3", {"result": "1/8", "decimal": "0.125"}),
        ("7 // 2", {"result": "3"}),
        ("-7 % 3", {"result": "2"}),
        ("--+5", {"result": "5"}),
        ("1.5e3 - 1_000", {"result": "500"}),
        ("2**100", {"result": str(2**100)}),
        ("1**99999999999", {"result": "1"}),  # a huge exponent of 1 is no work
        ("(-1)**(10**400 + 1)", {"result": "-1"}),
        ("2**9999", {"result": str(2**9999)}),  # the largest power of two under the bound
    ],
)
async def test_the_calculator_is_exact(expression: str, result: dict[str, str]) -> None:
    outcome = await call("calculator", {"expression": expression})
    assert outcome.status == "ok", outcome.content
    assert json.loads(outcome.content) == {"expression": expression, **result}


@pytest.mark.parametrize(
    "expression, says",
    [
        ("__import__('os').system('true')", "Only numbers, + - * / // % ** and parentheses"),
        ("x + 1", "Only numbers"),
        ("abs(-1)", "Only numbers"),
        ("(1).real", "Only numbers"),
        ("'a' * 3", "Only numbers are allowed"),
        ("1j", "Only numbers are allowed"),
        ("True + 1", "Only numbers are allowed"),
        ("1 < 2", "Only numbers"),
        ("[1, 2]", "Only numbers"),
        ("lambda: 1", "Only numbers"),
        ("1 +", "not valid arithmetic"),
        ("1; 2", "not valid arithmetic"),
        ("1 = 1", "not valid arithmetic"),
        ("   ", "empty"),
        ("1/0", "Division by zero"),
        ("5 // (2 - 2)", "Division by zero"),
        ("0**-1", "Division by zero"),
        ("2**0.5", "whole-number exponents"),
    ],
)
async def test_the_calculator_refuses_what_is_not_arithmetic(expression: str, says: str) -> None:
    outcome = await call("calculator", {"expression": expression})
    assert outcome.status == "error"
    assert says in outcome.content


BOUNDS = {
    "2**99999999": "too large",
    "(" * 10_000 + "1" + ")" * 10_000: "is too long",  # (its schema's maxLength: 500)
    "(" * 240 + "1" + ")" * 240: "not valid arithmetic",  # (Python's parser refuses it)
    "-" * 450 + "1": "nested too deeply",
    "9**9**9": "too large",
    "2**-99999999": "too large",
    "(2**9999) * (2**9999)": "too large",
    "(3**6000) / (7**6000) * (3**6000)": "too large",
    "1e999999": "too large",
    "1.5E+99999 - 1": "too large",
}


@pytest.mark.parametrize("expression", BOUNDS, ids=lambda e: e if len(e) < 40 else e[:20] + "…")
async def test_the_calculator_s_bounds_give_a_tool_error_at_once(expression: str) -> None:
    """Each bound is a tool error in well under 100 ms here (printed; the assertion allows 2 s
    so a loaded machine does not fail it)."""
    outcome = await call("calculator", {"expression": expression})
    assert outcome.status == "error"
    assert BOUNDS[expression] in outcome.content
    print(f"{expression[:30]!r}: {outcome.duration_ms:.2f} ms")
    assert outcome.duration_ms < 2000


def test_calculate_raises_tool_errors_by_itself() -> None:
    """(What the tool wraps: usable without a toolbox.)"""
    assert calculate(" 6 * 7 ") == {"expression": "6 * 7", "result": "42"}
    with pytest.raises(ToolError, match="too large"):
        calculate("2**99999999")
    with pytest.raises(ToolError, match="longer than 500 characters"):
        calculate("(" * 10_000 + "1" + ")" * 10_000)


# -- current_time -----------------------------------------------------------------------------


async def test_current_time_is_utc_unless_a_zone_is_given() -> None:
    for arguments in ({}, {"timezone": None}, ""):
        outcome = await call("current_time", arguments)
        assert outcome.status == "ok", outcome.content
        value = json.loads(outcome.content)
        assert value["timezone"] == "UTC"
        now = datetime.fromisoformat(value["iso"])
        assert now.utcoffset() == timedelta(0)
        assert abs(now - datetime.now(timezone.utc)) < timedelta(minutes=1)
        assert value["weekday"] == now.strftime("%A")


async def test_current_time_in_an_iana_zone() -> None:
    outcome = await call("current_time", {"timezone": "Asia/Tokyo"})
    value = json.loads(outcome.content)
    now = datetime.fromisoformat(value["iso"])
    assert (value["timezone"], now.utcoffset()) == ("Asia/Tokyo", timedelta(hours=9))
    assert abs(now - datetime.now(timezone.utc)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "asia/tokio", "../../etc/passwd", "/etc/localtime", "America"]
)
async def test_an_unknown_time_zone_is_a_tool_error(zone: str) -> None:
    outcome = await call("current_time", {"timezone": zone})
    assert outcome.status == "error"
    assert outcome.content.startswith(f"Unknown time zone {zone!r}")


# -- save_note (its store side: tests/test_notes_store.py) ------------------------------------


async def test_save_note_needs_approval_and_a_text_of_1_to_2000_characters() -> None:
    assert DEMOS.needs_approval("save_note")
    assert not DEMOS.needs_approval("calculator") and not DEMOS.needs_approval("current_time")
    for arguments in ({}, {"text": ""}, {"text": "x" * 2001}, {"text": 5}, {"text": "a", "b": 1}):
        outcome = await call("save_note", arguments)  # (NoNotes: nothing may be written)
        assert outcome.status == "error"
        assert outcome.content.startswith("Invalid arguments for save_note")
    outcome = await call("save_note", {"text": "   "})
    assert (outcome.status, outcome.content) == ("error", "The note is empty.")


# -- a toolbox --------------------------------------------------------------------------------


def test_a_toolbox_describes_its_tools_as_openai_takes_them() -> None:
    assert DEMOS.names == ("calculator", "current_time", "save_note")
    described = DEMOS.openai_tools()
    assert [entry["type"] for entry in described] == ["function"] * 3
    assert [entry["function"]["name"] for entry in described] == list(DEMOS.names)
    for entry, demo in zip(described, DEMO_TOOLS, strict=True):
        assert entry["function"] == {
            "name": demo.name,
            "description": demo.description,
            "parameters": demo.parameters,
        }
        assert entry["function"]["parameters"]["type"] == "object"
    assert DEMOS.get("calculator") is DEMO_TOOLS[0]
    assert DEMOS.get("nope") is None and not DEMOS.needs_approval("nope")
    assert DEMOS.tools == DEMO_TOOLS


def test_tools_are_checked_when_made_and_names_are_unique_in_a_toolbox() -> None:
    async def run(arguments, context):
        return None

    with pytest.raises(ValueError, match="two tools are named 'calculator'"):
        Toolbox([*DEMO_TOOLS, tool("calculator", run)])
    for name in ("", "has space", "x" * 65, "dot.ted", "ünïcode"):
        with pytest.raises(ValueError, match="name must match"):
            tool(name, run)
    with pytest.raises(ValueError, match="must be an object's schema"):
        Tool(name="t", description="d", parameters={"type": "string"}, run=run)
    with pytest.raises(ValueError, match="parameters of tool 't'"):
        Tool(name="t", description="d", parameters={"type": "object", "required": 3}, run=run)
    with pytest.raises(ValueError, match="needs a description"):
        Tool(name="t", description=" ", parameters={"type": "object"}, run=run)
    with pytest.raises(TypeError, match="not a Tool"):
        Toolbox([run])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "name, arguments, says",
    [
        ("rm_rf", "{}", "There is no tool named 'rm_rf' (the tools: calculator, current_time"),
        ("calculator", "{not json", "The arguments are not valid JSON"),
        ("calculator", '{"expression": "1"', "The arguments are not valid JSON"),
        ("calculator", "[1, 2]", "The arguments must be a JSON object."),
        ("calculator", '"6*7"', "The arguments must be a JSON object."),
        ("calculator", "{}", "Invalid arguments for calculator: 'expression' is a required"),
        ("calculator", '{"expression": 42}', "Invalid arguments for calculator at expression: 42"),
        ("calculator", '{"expression": "1", "x": 1}', "Additional properties are not allowed"),
        ("calculator", json.dumps({"expression": "1" * 501}), "is too long"),
        ("current_time", '{"timezone": 9}', "Invalid arguments for current_time at timezone"),
    ],
)
async def test_a_bad_call_is_a_tool_error_not_an_exception(
    name: str, arguments: str, says: str
) -> None:
    outcome = await call(name, arguments)
    assert outcome.status == "error"
    assert says in outcome.content
    assert len(outcome.content) <= 500  # (a long value quoted by the schema error is cut)
    assert outcome.duration_ms >= 0


async def test_a_tool_s_results_as_the_model_gets_them() -> None:
    async def text(arguments, context):
        return "plain text, as is"

    async def value(arguments, context):
        return {"ünïcode": [1, 2.5, None, True]}

    async def not_json(arguments, context):
        return {1, 2}

    async def nan(arguments, context):
        return float("nan")

    box = Toolbox(
        [tool("text", text), tool("value", value), tool("set", not_json), tool("nan", nan)]
    )
    assert (await call("text", {}, box)).content == "plain text, as is"
    assert (await call("value", {}, box)).content == '{"ünïcode": [1, 2.5, null, true]}'
    for name in ("set", "nan"):
        outcome = await call(name, {}, box)
        assert (outcome.status, outcome.content) == (
            "error",
            f"The tool {name} returned a value that is not JSON.",
        )


async def test_a_tool_s_failures_are_tool_errors_and_only_its_own_messages_are_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def refuses(arguments, context):
        raise ToolError("No such account.")

    async def crashes(arguments, context):
        raise RuntimeError("secret detail from /srv/app/config")

    async def times_out_itself(arguments, context):
        raise asyncio.TimeoutError()

    def not_async(arguments, context):
        return 42

    async def cancels_itself(arguments, context):
        raise asyncio.CancelledError()

    box = Toolbox(
        [
            tool("refuses", refuses),
            tool("crashes", crashes),
            tool("times_out_itself", times_out_itself),
            tool("not_async", not_async),
            tool("cancels_itself", cancels_itself),
        ]
    )
    assert (await call("refuses", {}, box)).content == "No such account."
    with caplog.at_level(logging.ERROR, logger="burr_streaming_chatbot.tools"):
        crashed = await call("crashes", {}, box)
    assert (crashed.status, crashed.content) == ("error", "The tool crashes failed (RuntimeError).")
    assert "secret detail" in caplog.text  # (in the server's log, never given to the model)
    # A TimeoutError of the tool's own is its failure, not the toolbox's timeout.
    own = await call("times_out_itself", {}, box)
    assert own.content == "The tool times_out_itself failed (TimeoutError)."
    assert (await call("not_async", {}, box)).content == "The tool not_async failed (TypeError)."
    # A tool cancelled by itself is its failure: the turn goes on (only its caller's cancel stops it).
    itself = await call("cancels_itself", {}, box)
    assert (itself.status, itself.content) == ("error", "The tool cancels_itself was cancelled.")


async def test_a_tool_past_its_timeout_is_cancelled_and_is_a_tool_error() -> None:
    cancelled = asyncio.Event()

    async def sleeps(arguments, context):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    box = Toolbox([tool("sleeps", sleeps)])
    started = time.monotonic()
    outcome = await call("sleeps", {}, box, timeout_s=0.2)
    assert outcome.status == "error"
    assert outcome.content == "The tool sleeps took longer than 0.2 s and was stopped."
    assert cancelled.is_set()
    assert 150 < outcome.duration_ms < 2000 and time.monotonic() - started < 2


async def test_cancelling_a_call_cancels_its_tool() -> None:
    running, cancelled = asyncio.Event(), asyncio.Event()

    async def waits(arguments, context):
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    box = Toolbox([tool("waits", waits)])
    task = asyncio.ensure_future(call("waits", {}, box, timeout_s=30))
    await asyncio.wait_for(running.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_a_toolbox_call_costs_little(capsys: pytest.CaptureFixture) -> None:
    """(Printed: the server's CPU for one call, beside the target of 5 ms for a tool round.)"""
    rounds = 200
    started = time.process_time()
    for _ in range(rounds):
        outcome = await call("calculator", '{"expression": "(2 + 3) * 7 / 4"}')
    per_call_ms = (time.process_time() - started) * 1000 / rounds
    assert outcome.status == "ok"
    with capsys.disabled():
        print(f"\ncalculator call through the toolbox: {per_call_ms:.3f} ms of CPU")
    assert per_call_ms < 50


# -- tools of other packages ------------------------------------------------------------------


def test_without_entry_points_the_toolbox_has_the_demo_tools() -> None:
    assert load_toolbox(entry_points=False).names == ("calculator", "current_time", "save_note")
    assert TOOLS_ENTRY_POINT_GROUP == "burr_streaming_chatbot.tools"


def write_distribution(site: Path, name: str, module: str, source: str, entries: str) -> None:
    """A distribution as pip leaves it: a module and its ``.dist-info`` with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{TOOLS_ENTRY_POINT_GROUP}]\n{entries}")


async def test_entry_points_add_tools_and_broken_ones_are_logged_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_distribution(
        tmp_path,
        "more-tools",
        "more_tools_for_test",
        """
        from burr_streaming_chatbot.tools import Tool

        async def echo(arguments, context):
            return arguments

        def make(name, approval=False):
            return Tool(name=name, description=name, parameters={"type": "object"}, run=echo,
                        needs_approval=approval)

        one = make("echo_one")
        several = [make("echo_two"), make("echo_three", approval=True)]
        def factory():
            return (make("echo_four"),)
        clash = [make("echo_five"), make("current_time")]
        not_a_tool = {"name": "dict_tool"}
        def fails():
            raise RuntimeError("cannot make tools")
        """,
        "one = more_tools_for_test:one\n"
        "several = more_tools_for_test:several\n"
        "factory = more_tools_for_test:factory\n"
        "clash = more_tools_for_test:clash\n"
        "not_a_tool = more_tools_for_test:not_a_tool\n"
        "fails = more_tools_for_test:fails\n"
        "missing = no_such_module_for_tools:tool\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR, logger="burr_streaming_chatbot.tools"):
        box = load_toolbox()
    names = set(box.names)
    assert {"calculator", "current_time", "save_note"} <= names
    assert {"echo_one", "echo_two", "echo_three", "echo_four"} <= names
    assert "echo_five" not in names  # its entry point names a tool already taken: all skipped
    assert "dict_tool" not in names
    assert box.needs_approval("echo_three") and not box.needs_approval("echo_two")
    assert box.get("current_time") is DEMO_TOOLS[1]  # (not replaced by the clashing one)
    for skipped in ("clash", "not_a_tool", "fails", "missing"):
        assert f"Skipping tools {skipped!r}" in caplog.text
    outcome = await call("echo_one", '{"a": 1}', box)
    assert (outcome.status, outcome.content) == ("ok", '{"a": 1}')


@pytest.fixture
def fixture_tools_site(tmp_path: Path) -> Path:
    """The fixture package (``tests/fixture_tool_package``) installed with pip into a folder of
    its own (no network: no build isolation, no dependencies); the test venv is not changed."""
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(FIXTURE_TOOLS),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert list(site.glob("burr_fixture_tools-1.0.dist-info/entry_points.txt"))
    return site


@pytest.mark.e2e  # (runs pip)
async def test_an_installed_distribution_registers_tools(
    fixture_tools_site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The fixture package, installed, adds its tools through the entry point group."""
    monkeypatch.syspath_prepend(str(fixture_tools_site))
    with caplog.at_level(logging.ERROR, logger="burr_streaming_chatbot.tools"):
        box = load_toolbox()
    assert box.names[:3] == ("calculator", "current_time", "save_note")
    assert {"shout", "km_to_miles"} <= set(box.names)
    assert "Skipping tools 'missing'" in caplog.text and "Skipping tools 'clash'" in caplog.text
    assert (await call("shout", {"text": "hi"}, box)).content == "HI!"
    assert json.loads((await call("km_to_miles", {"km": 42.195}, box)).content) == {"miles": 26.219}
    refused = await call("km_to_miles", {"km": -1}, box)
    assert (refused.status, refused.content) == ("error", "A distance is not negative.")
    wrong = await call("km_to_miles", {"km": "far"}, box)
    assert wrong.status == "error" and "Invalid arguments for km_to_miles" in wrong.content
