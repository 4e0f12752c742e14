"""What the router does to the process it runs in."""

import gc
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from burr_streaming_chatbot.router import API_PREFIX, create_router
from burr_streaming_chatbot.settings import Settings


def test_startup_moves_the_loaded_objects_out_of_the_collectors_reach(tmp_path: Path) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = FastAPI()
    app.include_router(create_router(Settings(storage_dir=tmp_path, offline=True)), prefix=API_PREFIX)
    try:
        with TestClient(app) as client:  # runs the router's lifespan
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # the libraries loaded by now: Burr, FastAPI, pydantic, ...
            assert client.get(f"{API_PREFIX}/model").json()["offline"] is True
    finally:
        gc.unfreeze()


def test_turns_leave_nothing_for_the_cycle_collector(tmp_path: Path) -> None:
    """A finished turn is freed by reference counting alone: its Burr application, its
    listener's idle timer, its events. Whatever is left for the cycle collector makes the
    full collections that hold every stream longer (see benchmarks/RESULTS.md)."""
    app = FastAPI()
    app.include_router(create_router(Settings(storage_dir=tmp_path, offline=True)), prefix=API_PREFIX)
    try:
        with TestClient(app) as client:

            def turn(app_id: str) -> str:
                with client.stream(
                    "POST", f"{API_PREFIX}/response/p/{app_id}", json={"prompt": "Hello there"}
                ) as response:
                    assert response.status_code == 200
                    return response.read().decode()

            assert '"type":"message"' in turn("warm-up")
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            for number in range(3):
                assert '"type":"message"' in turn(f"c{number}")
                assert '"type":"message"' in turn(f"c{number}")  # a second turn, from the cache
            assert client.get(f"{API_PREFIX}/status").json()["cached_conversations"] == 4
            gc.collect()
            ours = [
                type(item).__qualname__
                for item in gc.garbage
                if type(item).__module__.split(".")[0] in ("burr", "burr_streaming_chatbot")
                or str(getattr(item, "__module__", "")).startswith("burr_streaming_chatbot")
            ]
            assert ours == []
            apps = [item for item in gc.get_objects() if type(item).__name__ == "Application"]
            assert apps == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        gc.unfreeze()
