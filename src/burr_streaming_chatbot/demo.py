"""This package's entry in the ``burr.demos`` group."""

from importlib.resources import files

from .plugins import Demo
from .router import API_PREFIX, create_router

demo = Demo(
    name="streaming-chatbot",
    title="Streaming chatbot",
    api_prefix=API_PREFIX,
    create_router=create_router,
    ui_dir=files("burr_streaming_chatbot") / "ui",
    description="A streaming, agentic chatbot: Burr streaming actions, server-sent events, React",
    strict_csp=True,
)
"""Registered as ``streaming-chatbot``: the router at ``/api/v0/streaming_chatbot``, the page from
the package's ``ui`` folder."""
