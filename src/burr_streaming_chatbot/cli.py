"""``burr-streaming-chatbot``: Burr's tracking server with the registered demos mounted."""

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
import webbrowser
from collections.abc import Sequence
from typing import Optional

PAGE = "/demos/streaming-chatbot/"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="burr-streaming-chatbot",
        description="Run Burr's tracking server with the streaming chatbot at " + PAGE,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=7241, help="port to listen on (Burr's default)")
    parser.add_argument("--no-open", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--offline", action="store_true", help="use the offline demo model even if a key is set"
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the server (the default)")
    commands.add_parser("openapi", help="print the API's OpenAPI schema as JSON and exit")
    commands.add_parser(
        "demos", help="print the registered demos that load and the ones that fail (JSON), and exit"
    )
    args = parser.parse_args(argv)

    if args.offline:
        os.environ["BURR_CHATBOT_OFFLINE"] = "1"
    if args.command == "openapi":
        print(json.dumps(openapi_schema(), indent=2, sort_keys=True))
        return 0
    if args.command == "demos":
        listing = registered_demos()
        print(json.dumps(listing, indent=2))
        return 1 if listing["failed"] else 0
    serve(args.host, args.port, open_browser=not args.no_open)
    return 0


def openapi_schema() -> dict:
    """The OpenAPI schema of the chatbot's API, as the page's generated types see it."""
    from fastapi import FastAPI

    from .router import API_PREFIX, create_router
    from .settings import Settings

    app = FastAPI(title="burr-streaming-chatbot")
    app.include_router(create_router(Settings(offline=True)), prefix=API_PREFIX)
    return app.openapi()


def registered_demos() -> dict:
    """The ``burr.demos`` entry points that load, and the ones that fail with why (the shape of
    ``GET /api/v0/demos``, without the page URLs)."""
    from dataclasses import asdict

    from .plugins import load_demos

    demos, failures = load_demos()
    return {
        "demos": [
            {
                "name": d.name,
                "title": d.title,
                "description": d.description,
                "api_prefix": d.api_prefix,
            }
            for d in demos
        ],
        "failed": [asdict(failure) for failure in failures],
    }


SHUTDOWN_GRACE_S = 5
"""At a stop, how long uvicorn waits for open requests before it cancels them and runs the
shutdown (which saves the answers still streaming, marked interrupted): a page keeps its
``GET /events`` stream open, so without a limit the server would wait for every tab to close."""


def serve(host: str, port: int, open_browser: bool = True) -> None:
    """Serve Burr's UI app with every registered demo mounted; blocks until stopped."""
    import uvicorn
    from burr.tracking.server import run

    from .plugins import mount_demos

    os.environ.setdefault("BURR_CHATBOT_GC_FREEZE", "1")  # (this command owns the process)
    mount_demos(run.app)  # a no-op when the startup hook already did it
    if open_browser:
        url = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}"
        threading.Thread(target=_open_when_ready, args=(url,), daemon=True).start()
    uvicorn.run(run.app, host=host, port=port, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def _open_when_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2):
                webbrowser.open(url + PAGE)
                return
        except OSError:
            time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
