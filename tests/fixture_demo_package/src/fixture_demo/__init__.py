"""A demo for Burr's server that knows nothing of burr_streaming_chatbot: a plain mapping.

Its router's lifespan appends ``startup <pid>`` and ``shutdown <pid>`` lines to the file named by
``FIXTURE_DEMO_LIFESPAN_LOG`` (when set), so tests can count how often each ran.
"""

import os
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import APIRouter

API_PREFIX = "/api/v0/fixture_demo"


def _record(event: str) -> None:
    path = os.environ.get("FIXTURE_DEMO_LIFESPAN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{event} {os.getpid()}\n")


def create_router() -> APIRouter:
    state = {"started": False}

    @asynccontextmanager
    async def lifespan(_app):
        _record("startup")
        state["started"] = True
        yield
        state["started"] = False
        _record("shutdown")

    router = APIRouter(lifespan=lifespan)

    @router.get("/model")
    def model() -> dict:
        return {"demo": "fixture-demo", "started": state["started"]}

    return router


demo = {
    "name": "fixture-demo",
    "title": "Fixture demo",
    "description": "A second demo, registered without importing burr_streaming_chatbot",
    "api_prefix": API_PREFIX,
    "create_router": create_router,
    "ui_dir": files(__name__) / "ui",
}
