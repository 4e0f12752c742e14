"""The errors a turn can end with, in one place: each an ``error`` event's value (its ``code``,
a message for people, and whether sending the prompt again may work).

Errors of the model server keep the code :mod:`.llm` gave them (:func:`upstream`); a refused
request never gets this far (it is an HTTP answer, see :class:`.service.Refused`).
"""

from __future__ import annotations

from .llm import UpstreamError
from .wire import ErrorEvent, ErrorValue, TurnEvent

STOPPED = ErrorValue(code="stopped", message="The answer was stopped.", retryable=True)
"""The turn was stopped (a client asked, its last reader left, or the server shut down)."""
INTERNAL = ErrorValue(code="internal", message="The server failed; see its log.", retryable=True)
"""A bug: the server logged it."""
STORAGE_UNAVAILABLE = ErrorValue(
    code="storage_unavailable",
    message="The conversation store failed; what was saved before is kept. Try again soon.",
    retryable=True,
)
"""The store failed while the turn saved or read (what was saved before is kept)."""
LOST = ErrorValue(
    code="worker_lost",
    message="The server that was answering stopped before the answer ended; send the prompt again.",
    retryable=True,
)
"""The process running the turn died (its lease expired before the turn ended)."""
CONFLICT = ErrorValue(
    code="conflict",
    message="Another server wrote this conversation meanwhile; nothing of this turn was saved "
    "after that. Reload the conversation.",
    retryable=True,
)
"""Another process saved the conversation while this turn ran (optimistic concurrency)."""


def upstream(error: UpstreamError) -> ErrorValue:
    """The value of an error of the model server, as :mod:`.llm` named it."""
    return ErrorValue(code=error.code, message=error.message, retryable=error.retryable)


def stopped_upstream() -> UpstreamError:
    """:data:`STOPPED` as the answering step records it in a cut answer's result."""
    return UpstreamError(STOPPED.code, STOPPED.message, retryable=STOPPED.retryable)


def error_event(value: ErrorValue) -> TurnEvent:
    """The ``error`` event that ends a turn with ``value``."""
    return TurnEvent.of(ErrorEvent(value=value))
