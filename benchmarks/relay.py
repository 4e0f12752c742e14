"""The bare relay: the least a server can do to serve this chatbot's wire format. No Burr.

One shared ``AsyncOpenAI`` client (the SDK's default transport, or its aiohttp one); per
prompt one routing call (non-streaming), then one streamed call whose text is relayed as
``data: {"type":"delta","value":...}`` events. No state, no history, no tracking, no
persistence: the floor the other servers are compared to. ``POST /create/...`` exists (and does
nothing) so every server gets the same requests.

    python benchmarks/servers.py relay --port 0
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.responses import StreamingResponse

ROUTER_INSTRUCTIONS = (
    "Reply with one mode: answer_question, generate_poem, generate_code or unknown."
)
ANSWER_INSTRUCTIONS = "Answer the user's question clearly and concisely. Use markdown."


class PromptInput(BaseModel):
    prompt: str


def create_router(model: str = "gpt-4o-mini", transport: str = "httpx") -> APIRouter:
    """``transport="aiohttp"`` puts the client on the SDK's aiohttp transport, as this project's
    server does by default, so the two can also be compared on the same transport."""
    # OPENAI_API_KEY and OPENAI_BASE_URL from the environment
    if transport == "aiohttp":
        client = openai.AsyncOpenAI(http_client=openai.DefaultAioHttpClient())
    else:
        client = openai.AsyncOpenAI()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.close()

    router = APIRouter(lifespan=lifespan)

    @router.post("/create/{project_id}/{app_id}")
    async def create(project_id: str, app_id: str) -> str:
        return app_id

    @router.post("/response/{project_id}/{app_id}")
    async def response(project_id: str, app_id: str, body: PromptInput) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            routed = await client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": ROUTER_INSTRUCTIONS},
                    {"role": "user", "content": body.prompt},
                ],
            )
            mode = routed.choices[0].message.content or "unknown"
            stream = await client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": ANSWER_INSTRUCTIONS if mode else ""},
                    {"role": "user", "content": body.prompt},
                ],
                stream=True,
            )
            async with stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        text = chunk.choices[0].delta.content
                        yield f"data: {json.dumps({'type': 'delta', 'value': text})}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return router
