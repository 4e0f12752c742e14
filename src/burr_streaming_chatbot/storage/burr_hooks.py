"""Burr's hooks into the store and the tracking folder, so that neither grows with the square
of a conversation's length.

* :class:`SaveAfter` persists the state after the steps that matter, through the store's
  :meth:`~.interface.Store.save_state` (each message stored once, :mod:`.messages`).
* :class:`ChatTrackingClient` is Burr's ``LocalTrackingClient`` logging, after each step, the
  last few messages and the history's length instead of the whole history. Burr's UI still
  shows every step, its inputs, its result and the messages it added.
"""

import json
import os
import tempfile
from collections.abc import Collection
from typing import Any, Optional

from burr.core import Action, State
from burr.lifecycle import PostRunStepHookAsync
from burr.tracking import LocalTrackingClient
from burr.tracking.common.models import ApplicationMetadataModel, ApplicationModel, PointerModel
from pydantic import BaseModel

from .interface import Store
from .messages import HISTORY, LENGTH


class SaveAfter(PostRunStepHookAsync):
    """Persist the state after the named actions only (Burr's ``with_state_persister`` saves
    after every one). Saving after ``prompt`` and after each answer is all a turn needs: a
    conversation always resumes at ``prompt``, so the steps in between need not be durable,
    and the first delta waits for one write instead of three."""

    def __init__(
        self,
        store: Store,
        project_id: str,
        actions: Collection[str],
        expected_sequence_id: Optional[int] = None,
    ) -> None:
        self.store = store
        self.project_id = project_id
        self.actions = frozenset(actions)
        self.expected_sequence_id = expected_sequence_id
        """The sequence id the store must hold for a save to go ahead (optimistic concurrency:
        another process's save in between is a :class:`.interface.ConflictError`, not an
        overwrite)."""

    async def post_run_step(
        self,
        *,
        app_id: str,
        partition_key: Optional[str],
        sequence_id: int,
        state: State,
        action: Any,
        exception: Optional[Exception],
        **future_kwargs: Any,
    ) -> None:
        if exception is None and action.name in self.actions:
            await self.store.save_state(
                self.project_id,
                app_id,
                sequence_id,
                action.name,
                state,
                expected_sequence_id=self.expected_sequence_id,
            )
            self.expected_sequence_id = sequence_id


_GRAPHS: dict[tuple[int, ...], str] = {}
"""The tracker's ``graph.json`` per graph, serialized once per process."""


def _write_whole(path: str, text: str) -> None:
    """Write a file so that a reader (or a writer in another process) never sees half of it."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


_READY: set[str] = set()
"""The tracking folders this process has seen with their ``graph.json`` and metadata written
(an application is built per turn; checking the files again each time was a few system calls
per turn). A conversation's folder is removed only when it is deleted (:func:`forget_folder`)."""


def forget_folder(folder: "str | os.PathLike[str]") -> None:
    """Forget that a conversation's tracking folder was ready (it is being removed)."""
    _READY.discard(os.path.normpath(os.path.expanduser(folder)))


class ChatTrackingClient(LocalTrackingClient):
    """Burr's local tracker, logging the last ``recent_messages`` of the history after each step.

    Its lines are the ones Burr's tracker writes, in the same order, but kept in memory and
    appended to ``log.jsonl`` in one write when :meth:`flush` or :meth:`close` is called (a turn
    flushes before its last event and closes when it ends, also when it is stopped or the
    server shuts down), not opened, written and flushed line by line, about a dozen system
    calls per turn. A process killed outright loses the lines of the turn it was running; the
    state and the user's words are in the store, saved by :class:`SaveAfter` as before."""

    _log_path: Optional[str] = None
    """The conversation's ``log.jsonl`` (known once the application is created)."""

    def post_application_create(
        self, *, app_id: str, partition_key: Optional[str], **kwargs: Any
    ) -> None:
        """Write ``graph.json`` from a copy made once per process (Burr's tracker reads the
        source of every action again for each new conversation) and the metadata, once per
        folder; the log is opened only to append a turn's lines (:meth:`flush`)."""
        folder = os.path.join(self.storage_dir, app_id)
        self._log_path = os.path.join(folder, self.LOG_FILENAME)
        if os.path.normpath(folder) in _READY:
            return
        graph_path = os.path.join(folder, self.GRAPH_FILENAME)
        graph = kwargs.get("application_graph")
        self._ensure_dir_structure(app_id)
        if graph is not None and not os.path.exists(graph_path):
            key = tuple(id(action) for action in graph.actions)
            if key not in _GRAPHS:
                if len(_GRAPHS) >= 16:  # graphs are built once; this only guards the memory
                    _GRAPHS.clear()
                _GRAPHS[key] = json.dumps(
                    ApplicationModel.from_application_graph(graph).model_dump()
                )
            _write_whole(graph_path, _GRAPHS[key])
            metadata_path = os.path.join(folder, self.METADATA_FILENAME)
            if not os.path.exists(metadata_path):
                # (Burr's own method returns early once graph.json exists, so a fork's parent
                # pointer, and the parent's record of its child, are written here as it would.)
                parent = kwargs.get("parent_pointer")
                spawner = kwargs.get("spawning_parent_pointer")
                metadata = ApplicationMetadataModel(
                    partition_key=partition_key,
                    parent_pointer=PointerModel.from_pointer(parent),
                    spawning_parent_pointer=PointerModel.from_pointer(spawner),
                ).model_dump()
                _write_whole(metadata_path, json.dumps(metadata))  # (json.dump's encoder: a cycle)
                if parent is not None or spawner is not None:
                    self._log_child_relationships(parent, spawner, app_id, partition_key)
        with open(self._log_path, "a", encoding="utf-8"):
            pass  # (Burr's UI lists a conversation by its log, so there is one from the start)
        if len(_READY) >= 100_000:  # (only bounds the memory: a forgotten folder is checked again)
            _READY.clear()
        _READY.add(os.path.normpath(folder))

    def _append_write_line(self, model: BaseModel) -> None:
        """Keep the line (Burr's tracker writes and flushes it at once)."""
        self._lines.append(model.model_dump_json())

    def flush(self) -> None:
        """Append the lines kept so far to the log, in one write."""
        if not self._lines or self._log_path is None:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        try:
            with open(self._log_path, "a", encoding="utf-8", errors="replace") as log:
                log.write(text)
        except FileNotFoundError:  # the conversation was deleted meanwhile: nothing to keep
            forget_folder(os.path.dirname(self._log_path))

    def _ensure_dir_structure(self, app_id: str) -> None:
        """Burr's folder creation, safe when another process creates the same folder at once
        (Burr's checks and then creates, and the loser of that race got ``FileExistsError``)."""
        os.makedirs(os.path.join(self.storage_dir, app_id), exist_ok=True)

    def __init__(self, *args: Any, recent_messages: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recent_messages = recent_messages
        self._lines: list[str] = []

    def close(self) -> None:
        """Write the lines kept (the tracker may be used again: it opens nothing)."""
        self.flush()

    def post_run_step(
        self,
        state: State,
        action: Action,
        result: Optional[dict],
        sequence_id: int,
        exception: Exception,
        **kwargs: Any,
    ) -> None:
        """Log the step with the history cut to its last messages (and its full length)."""
        history = state.get(HISTORY)
        if isinstance(history, list) and len(history) > self.recent_messages:
            recent = history[-self.recent_messages :] if self.recent_messages else []
            state = state.merge(State({HISTORY: recent, LENGTH: len(history)}))  # shallow
        super().post_run_step(
            state=state,
            action=action,
            result=result,
            sequence_id=sequence_id,
            exception=exception,
            **kwargs,
        )
