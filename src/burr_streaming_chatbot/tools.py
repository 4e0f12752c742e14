"""Tools the model can call: a small interface, the three demo tools, and the entry point group
through which other installed packages add theirs.

A :class:`Tool` is a name, a description, the JSON schema of its arguments, whether a person
must approve each call (``needs_approval``) and an async function. A :class:`Toolbox` holds the
tools of a server: it describes them to the model (:meth:`Toolbox.openai_tools`) and runs a
call (:meth:`Toolbox.call`), which never raises: a call with an unknown name, arguments that
are not JSON or do not match the schema, a tool that fails or takes too long, each becomes a
:class:`ToolOutcome` with status ``"error"`` and a message for the model and the page.

Tools reach the store only through :class:`NoteBook` (the store implements it), so this module
stays below the storage layer. ``docs/tools.md`` shows how to add a tool.
"""

from __future__ import annotations

import ast
import asyncio
import decimal
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from importlib.metadata import entry_points as installed_entry_points
from typing import Any, Literal, Optional, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
from jsonschema.exceptions import best_match

logger = logging.getLogger(__name__)

TOOLS_ENTRY_POINT_GROUP = "burr_streaming_chatbot.tools"
"""The entry point group where installed packages register tools (see :func:`load_toolbox`)."""

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What a tool's name may be (what OpenAI's API accepts for a function's name)."""

MESSAGE_CHARS = 500
"""The longest error message given to the model (a schema error may quote a long value)."""

CANCEL_GRACE_S = 1.0
"""How long a tool past its timeout is given to end once cancelled before it is left alone."""


class ToolError(Exception):
    """A tool's own failure: its message is given to the model and shown on the page."""


class NoteBook(Protocol):
    """Where :data:`save_note` keeps notes: the store implements it (``Store.add_note``)."""

    async def add_note(self, project_id: str, app_id: str, text: str) -> dict[str, Any]:
        """Store a note of conversation ``app_id``; ``{"id", "text", "app_id", "created_at"}``."""
        ...


@dataclass(frozen=True)
class ToolContext:
    """What a tool knows of the call: the conversation it was made in, and the notes."""

    project_id: str
    app_id: str
    notes: NoteBook


@dataclass(frozen=True)
class Tool:
    """A tool the model may call.

    ``run(arguments, context)`` gets the arguments already checked against ``parameters`` and
    returns a JSON-able value (given to the model as JSON text) or a string (given as is); it
    raises :class:`ToolError` for a failure the model should read.
    """

    name: str
    """``^[a-zA-Z0-9_-]{1,64}$``, unique in a toolbox."""
    description: str
    """What the tool does, for the model."""
    parameters: dict[str, Any]
    """The JSON schema of the arguments (an object)."""
    run: Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
    needs_approval: bool = False
    """True when a person must approve each call before it runs."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME.match(self.name):
            raise ValueError(f"a tool's name must match {NAME.pattern}, not {self.name!r}")
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"tool {self.name!r} needs a description")
        if not isinstance(self.parameters, dict) or self.parameters.get("type") != "object":
            raise ValueError(f"the parameters of tool {self.name!r} must be an object's schema")
        try:
            jsonschema.validators.validator_for(self.parameters).check_schema(self.parameters)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"the parameters of tool {self.name!r}: {exc.message}") from None
        if not callable(self.run):
            raise ValueError(f"tool {self.name!r} needs an async function to run")
        if not isinstance(self.needs_approval, bool):
            raise ValueError(f"needs_approval of tool {self.name!r} must be true or false")


@dataclass(frozen=True)
class ToolOutcome:
    """What one call gave: its status, the text given to the model, and how long it took."""

    status: Literal["ok", "error"]
    content: str
    """The result as JSON text (a string result as is), or the error message."""
    duration_ms: float


def _short(message: str) -> str:
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"


@dataclass(frozen=True)
class _Entry:
    tool: Tool
    validator: Any = field(compare=False)


class Toolbox:
    """The tools of a server, by name: described to the model, and called."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        """A toolbox of ``tools``; two with one name are a ``ValueError``."""
        self._entries: dict[str, _Entry] = {}
        for tool in tools:
            if not isinstance(tool, Tool):
                raise TypeError(f"not a Tool: {tool!r}")
            if tool.name in self._entries:
                raise ValueError(f"two tools are named {tool.name!r}")
            validator = jsonschema.validators.validator_for(tool.parameters)(tool.parameters)
            self._entries[tool.name] = _Entry(tool, validator)

    @property
    def names(self) -> tuple[str, ...]:
        """The tools' names, in the order they were given."""
        return tuple(self._entries)

    @property
    def tools(self) -> tuple[Tool, ...]:
        """The tools, in the order they were given (to build a toolbox with more)."""
        return tuple(entry.tool for entry in self._entries.values())

    def get(self, name: str) -> Optional[Tool]:
        """The tool named ``name``, if there is one."""
        entry = self._entries.get(name)
        return None if entry is None else entry.tool

    def needs_approval(self, name: str) -> bool:
        """True when calls to ``name`` wait for a person (False for an unknown name: such a
        call is an error at once, with nothing to approve)."""
        entry = self._entries.get(name)
        return entry is not None and entry.tool.needs_approval

    def openai_tools(self) -> list[dict[str, Any]]:
        """The tools as OpenAI's chat completions API takes them (its ``tools`` parameter)."""
        return [
            {
                "type": "function",
                "function": {
                    "name": entry.tool.name,
                    "description": entry.tool.description,
                    "parameters": entry.tool.parameters,
                },
            }
            for entry in self._entries.values()
        ]

    async def call(
        self, name: str, arguments: str, context: ToolContext, timeout_s: float
    ) -> ToolOutcome:
        """Run one call of tool ``name`` with ``arguments`` (JSON text, as the model sent them;
        empty text is ``{}``), giving it at most ``timeout_s`` seconds.

        Never raises, except ``CancelledError`` (the tool is then cancelled too): every failure
        is an outcome with status ``"error"``."""
        started = time.perf_counter()

        def outcome(status: Literal["ok", "error"], content: str) -> ToolOutcome:
            return ToolOutcome(status, content, (time.perf_counter() - started) * 1000)

        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self._entries) or "none"
            return outcome(
                "error", _short(f"There is no tool named {name!r} (the tools: {known}).")
            )
        parsed = _arguments(arguments)
        if isinstance(parsed, str):
            return outcome("error", parsed)
        error = best_match(entry.validator.iter_errors(parsed))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path)
            message, value = error.message, repr(error.instance)
            if len(value) > 60:  # (the message quotes the value: keep what it says of it)
                message = message.replace(value, value[:40] + "…")
            return outcome(
                "error",
                _short(f"Invalid arguments for {name}{f' at {where}' if where else ''}: {message}"),
            )
        try:
            result = await _run_bounded(entry.tool, parsed, context, timeout_s)
        except asyncio.CancelledError:
            raise
        except _TimedOut:
            return outcome(
                "error", f"The tool {name} took longer than {timeout_s:g} s and was stopped."
            )
        except ToolError as exc:
            return outcome("error", _short(str(exc) or f"The tool {name} failed."))
        except Exception as exc:
            logger.exception("Tool %s failed", name)
            return outcome("error", f"The tool {name} failed ({type(exc).__name__}).")
        if isinstance(result, str):
            return outcome("ok", result)
        try:
            return outcome("ok", json.dumps(result, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError):
            return outcome("error", f"The tool {name} returned a value that is not JSON.")


def _arguments(text: str) -> dict[str, Any] | str:
    """The arguments as an object, or the error message for the model."""
    if not isinstance(text, str):
        return "The arguments must be JSON text."
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        return _short(f"The arguments are not valid JSON ({exc}).")
    if not isinstance(value, dict):
        return "The arguments must be a JSON object."
    return value


class _TimedOut(Exception):
    pass


async def _run_bounded(
    tool: Tool, arguments: dict[str, Any], context: ToolContext, timeout_s: float
) -> Any:
    """The tool's result, or :class:`_TimedOut` past ``timeout_s`` (the tool's own
    ``TimeoutError`` stays its own failure). Cancelled, the tool is cancelled too."""
    task = asyncio.ensure_future(tool.run(arguments, context))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except BaseException:
        task.cancel()
        raise
    if done:
        if task.cancelled():  # (by itself: its caller was not cancelled, or this would not run)
            raise ToolError(f"The tool {tool.name} was cancelled.")
        return task.result()
    task.cancel()
    await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
    if not task.done():
        logger.warning("Tool %s ignored its cancellation; left running", tool.name)
    # (Its failure after the cancel is of no interest; retrieved so nothing logs it as lost.)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    raise _TimedOut


# -- the demo tools ---------------------------------------------------------------------------

MAX_EXPRESSION_CHARS = 500
MAX_DEPTH = 100
"""The deepest an expression's tree may be (the parser itself refuses 201 nested parentheses)."""
MAX_BITS = 10_000
"""The largest numerator or denominator a calculation may reach, in bits (about 3,000 digits)."""
MAX_LITERAL_EXPONENT = 4_000
"""The largest power of ten written in a number (``1e4000``)."""
DECIMAL_DIGITS = 20
"""Significant digits of the decimal shown beside a fraction."""

_OPERATORS: dict[type, Callable[[Fraction, Fraction], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}


def _bits(value: Fraction) -> int:
    return max(abs(value.numerator).bit_length(), value.denominator.bit_length())


def _checked(value: Fraction) -> Fraction:
    if _bits(value) > MAX_BITS:
        raise ToolError(f"The result is too large (over {MAX_BITS:,} bits).")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ToolError("Only whole-number exponents are supported (the result must be exact).")
    power = exponent.numerator
    # A lower bound of the result's size, known before computing it.
    if abs(base.numerator) > 1 or base.denominator > 1:
        if (_bits(base) - 1) * abs(power) > MAX_BITS:
            raise ToolError(f"The result is too large (over {MAX_BITS:,} bits).")
    return Fraction(base**power)


def _number(node: ast.Constant, source: str) -> Fraction:
    value = node.value
    if type(value) is int:
        return Fraction(value)
    if type(value) is float:  # read from the text, exactly (0.1 is 1/10, not a binary float)
        text = (ast.get_source_segment(source, node) or "").replace("_", "")
        exponent = re.search(r"[eE]([+-]?\d+)$", text)
        if exponent and abs(int(exponent.group(1))) > MAX_LITERAL_EXPONENT:
            raise ToolError(f"The number {text} is too large.")
        return Fraction(text)
    raise ToolError(f"Only numbers are allowed, not {ast.get_source_segment(source, node)!r}.")


def _evaluate(node: ast.AST, source: str, depth: int = 0) -> Fraction:
    if depth > MAX_DEPTH:
        raise ToolError(f"The expression is nested too deeply (over {MAX_DEPTH} levels).")
    if isinstance(node, ast.Constant):
        return _number(node, source)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _evaluate(node.operand, source, depth + 1)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, source, depth + 1)
        right = _evaluate(node.right, source, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        operator = _OPERATORS.get(type(node.op))
        if operator is not None:
            return _checked(Fraction(operator(left, right)))
    raise ToolError(
        "Only numbers, + - * / // % ** and parentheses are allowed, not "
        f"{ast.get_source_segment(source, node) or type(node).__name__!r}."
    )


def calculate(expression: str) -> dict[str, str]:
    """The exact value of an arithmetic expression: ``{"expression", "result"}``, the result an
    integer or a fraction ``"a/b"`` (then with ``"decimal"``, rounded). Raises
    :class:`ToolError` for anything else, and for results or inputs past the bounds above."""
    text = expression.strip()
    if not text:
        raise ToolError("The expression is empty.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"The expression is not valid arithmetic ({exc.msg}).") from None
    except (ValueError, RecursionError, MemoryError):
        raise ToolError("The expression is not valid arithmetic.") from None
    try:
        value = _evaluate(tree.body, text)
    except ZeroDivisionError:
        raise ToolError("Division by zero.") from None
    except RecursionError:
        raise ToolError("The expression is nested too deeply.") from None
    if value.denominator == 1:
        return {"expression": text, "result": str(value.numerator)}
    with decimal.localcontext() as exact:
        exact.prec = DECIMAL_DIGITS
        approximate = decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator)
    return {"expression": text, "result": str(value), "decimal": str(approximate)}


async def _calculator(arguments: dict[str, Any], context: ToolContext) -> dict[str, str]:
    return calculate(arguments["expression"])


async def _current_time(arguments: dict[str, Any], context: ToolContext) -> dict[str, str]:
    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(
            f"Unknown time zone {name!r}: use an IANA name such as 'Asia/Tokyo' or 'UTC'."
        ) from None
    now = datetime.now(zone)
    return {
        "timezone": name,
        "iso": now.isoformat(timespec="seconds"),
        "weekday": now.strftime("%A"),
    }


async def _save_note(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    text = arguments["text"].strip()
    if not text:
        raise ToolError("The note is empty.")
    note = await context.notes.add_note(context.project_id, context.app_id, text)
    return {"saved": True, "id": note["id"], "text": note["text"]}


calculator = Tool(
    name="calculator",
    description=(
        "Exact arithmetic on integers and decimals: + - * / // % ** and parentheses. "
        "Returns the exact result (a fraction when not whole, with a decimal)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The arithmetic expression, for example (2 + 3) * 7 / 4",
                "maxLength": MAX_EXPRESSION_CHARS,
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
    run=_calculator,
)

current_time = Tool(
    name="current_time",
    description="The current date and time in a time zone (UTC unless one is given).",
    parameters={
        "type": "object",
        "properties": {
            "timezone": {
                "type": ["string", "null"],
                "description": "An IANA time zone name, for example Asia/Tokyo; UTC when absent",
                "maxLength": 64,
            }
        },
        "additionalProperties": False,
    },
    run=_current_time,
)

save_note = Tool(
    name="save_note",
    description=(
        "Save a short note for the user, kept with this conversation's project. "
        "A person approves each note before it is saved."
    ),
    parameters={
        "type": "object",
        "properties": {
            "text": {
                "type": "string",
                "description": "The note",
                "minLength": 1,
                "maxLength": 2000,
            }
        },
        "required": ["text"],
        "additionalProperties": False,
    },
    run=_save_note,
    needs_approval=True,
)

DEMO_TOOLS: tuple[Tool, ...] = (calculator, current_time, save_note)
"""The tools every server has: they work offline and are safe to run."""


# -- tools of other packages ------------------------------------------------------------------


def _as_tools(loaded: Any) -> list[Tool]:
    """What an entry point loaded, as tools: a Tool, an iterable of Tools, or a zero-argument
    callable returning either."""
    if callable(loaded) and not isinstance(loaded, Tool):
        loaded = loaded()
    found = [loaded] if isinstance(loaded, Tool) else list(loaded)
    for tool in found:
        if not isinstance(tool, Tool):
            raise TypeError(f"not a Tool: {tool!r}")
    return found


def load_toolbox(entry_points: bool = True) -> Toolbox:
    """The demo tools and, with ``entry_points``, every tool registered under
    :data:`TOOLS_ENTRY_POINT_GROUP`. An entry point that fails to load, loads something else
    than tools, or names a tool already taken is logged and skipped as a whole."""
    tools = list(DEMO_TOOLS)
    if entry_points:
        for entry_point in installed_entry_points(group=TOOLS_ENTRY_POINT_GROUP):
            try:
                found = _as_tools(entry_point.load())
                taken = {tool.name for tool in tools}
                for tool in found:
                    if tool.name in taken:
                        raise ValueError(f"the name {tool.name!r} is already taken")
                    taken.add(tool.name)
            except Exception:
                logger.exception("Skipping tools %r from %s", entry_point.name, entry_point.value)
                continue
            tools.extend(found)
    return Toolbox(tools)
