"""``gc.freeze()`` is a change to the whole process: the router does it only when told
(``BURR_CHATBOT_GC_FREEZE``), which the commands that own the process do."""

import gc

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from burr_streaming_chatbot.router import API_PREFIX, create_router
from burr_streaming_chatbot.settings import Settings


def frozen_after_startup(tmp_path, **settings) -> int:  # type: ignore[no-untyped-def]
    gc.unfreeze()
    app = FastAPI()
    app.include_router(
        create_router(Settings(offline=True, storage_dir=tmp_path, **settings)), prefix=API_PREFIX
    )
    with TestClient(app):
        count = gc.get_freeze_count()
    gc.unfreeze()
    return count


def test_an_app_that_includes_the_router_is_not_frozen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert frozen_after_startup(tmp_path) == 0


def test_the_setting_freezes_what_was_loaded_at_startup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert frozen_after_startup(tmp_path, gc_freeze=True) > 10_000


@pytest.mark.e2e
def test_the_command_that_owns_the_process_turns_it_on(chatbot_server) -> None:  # type: ignore[no-untyped-def]
    """``burr-streaming-chatbot`` (the suite's shared server) freezes; ``burr``'s startup hook
    does the same (``_burr_hook``), checked on ``burr`` in test_burr_cli."""
    status = chatbot_server.client.get(f"{API_PREFIX}/status").json()
    assert status["frozen_objects"] > 10_000
