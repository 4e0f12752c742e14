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
