"""The ``burr.demos`` entry point group: find registered demos and mount them into a Burr server.

A demo is a :class:`Demo` object registered under the ``burr.demos`` group::

    [project.entry-points."burr.demos"]
    my-demo = "my_package.demo:demo"

:func:`mount_demos` adds, for every registered demo, its API router at ``api_prefix`` and its
page at ``/demos/<name>/``, ahead of Burr's catch-all page route, and adds a small script to
Burr's own pages so that a click on ``/demos/<name>`` in Burr's sidebar loads the demo's page
instead of Burr's built-in one. This module knows nothing about any particular demo.
"""

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Optional, Union

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

try:
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "burr.demos"
"""The entry point group a package registers its demo in."""

BURR_PAGE_ROUTE = "/{rest_of_path:path}"
"""The path of Burr's catch-all route that serves its single-page app."""


@dataclass(frozen=True)
class Demo:
    """What a demo adds to a Burr server."""

    name: str
    """URL-safe name: the page is served at ``/demos/<name>/``."""
    title: str
    """Human-readable title."""
    api_prefix: str
    """Where the router is mounted, e.g. ``/api/v0/streaming_chatbot``."""
    create_router: Callable[[], APIRouter]
    """Builds the demo's API router; called once per server app."""
    ui_dir: Optional[Union[Path, Traversable]] = None
    """The built page (a folder with ``index.html``), usually ``importlib.resources.files(...)``."""


def discover_demos() -> list[Demo]:
    """The demos registered under :data:`ENTRY_POINT_GROUP`; broken ones are logged and skipped."""
    demos: list[Demo] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            demo = entry_point.load()
            if callable(demo) and not isinstance(demo, Demo):
                demo = demo()
            if not isinstance(demo, Demo):
                raise TypeError(f"expected a Demo, got {type(demo).__name__}")
        except Exception:
            logger.exception("Skipping demo %r from %s", entry_point.name, entry_point.value)
            continue
        demos.append(demo)
    return demos


def mount_demos(app: FastAPI, demos: Optional[Iterable[Demo]] = None) -> list[Demo]:
    """Mount demos (the registered ones unless given) into ``app``; returns those newly mounted.

    Safe to call more than once: a demo already mounted in ``app`` is skipped.
    """
    mounted: dict[str, Demo] = getattr(app.state, "burr_demos", None) or {}
    app.state.burr_demos = mounted
    new = [demo for demo in (discover_demos() if demos is None else demos) if demo.name not in mounted]
    for demo in new:
        before = list(app.router.routes)
        app.include_router(demo.create_router(), prefix=demo.api_prefix)
        routes = [route for route in app.router.routes if route not in before]
        routes += page_routes(demo)
        # Ahead of everything already there: Burr's own demo routers and its catch-all page.
        app.router.routes[:] = routes + before
        mounted[demo.name] = demo
        logger.info("Mounted demo %r at /demos/%s/ and %s", demo.name, demo.name, demo.api_prefix)
    if mounted:
        _inject_link_script(app, sorted(mounted))
    app.openapi_schema = None  # regenerate with the new routes
    return new


def page_routes(demo: Demo) -> list[BaseRoute]:
    """Routes that serve a demo's page: a redirect to the trailing slash, the page, its assets."""
    base = f"/demos/{demo.name}"
    directory = _as_directory(demo.ui_dir)

    async def redirect(request: Request) -> Response:
        url = request.scope.get("root_path", "") + base + "/"
        if request.url.query:
            url += "?" + request.url.query
        return RedirectResponse(url, status_code=307)

    async def index(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        config = {"apiBase": root + demo.api_prefix, "burrBase": root, "name": demo.name}
        page = directory / "index.html" if directory else None
        if page is None or not page.is_file():
            return HTMLResponse(_missing_page(demo), status_code=503)
        html = page.read_text(encoding="utf-8")
        script = f"<script>window.__BURR_DEMO__={_script_json(config)};</script>"
        html = html.replace("<head>", "<head>" + script, 1) if "<head>" in html else script + html
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    routes: list[BaseRoute] = [
        APIRoute(base, redirect, methods=["GET"], include_in_schema=False),
        APIRoute(base + "/", index, methods=["GET"], include_in_schema=False),
        APIRoute(base + "/index.html", index, methods=["GET"], include_in_schema=False),
    ]
    if directory is not None and directory.is_dir():
        routes.append(Mount(base, app=StaticFiles(directory=directory), name=f"demo-{demo.name}"))
    return routes


def _as_directory(ui_dir: Optional[Union[Path, Traversable]]) -> Optional[Path]:
    if ui_dir is None:
        return None
    # Installed packages are folders on disk; a zipped install would need extracting first.
    return Path(str(ui_dir))


def _script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _missing_page(demo: Demo) -> str:
    return (
        f"<!doctype html><title>{demo.title}</title><h1>{demo.title}</h1>"
        "<p>The page of this demo was not built. Build it with <code>npm ci && npm run build</code>"
        " in <code>ui_bundle/</code>, or install the package from a wheel.</p>"
        f"<p>The API is at <code>{demo.api_prefix}</code>.</p>"
    )


LINK_SCRIPT = """(function () {
  var names = %s;
  function demoUrl(href) {
    try {
      var url = new URL(href, location.href);
      if (url.origin !== location.origin) return null;
      var base = window.__BURR_BASE_PATH__ || "";
      var path = url.pathname.replace(/\\/+$/, "");
      for (var i = 0; i < names.length; i++) {
        var page = base + "/demos/" + names[i];
        if (path === page) return page + "/" + url.search + url.hash;
      }
    } catch (e) {}
    return null;
  }
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = event.target && event.target.closest && event.target.closest("a[href]");
    var target = link && demoUrl(link.href);
    if (!target) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    location.assign(target);
  }, true);
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function (state, title, url) {
      var target = url != null && demoUrl(String(url));
      if (target) { location.assign(target); return; }
      return original.apply(this, arguments);
    };
  });
})();"""
"""Added to Burr's pages: turns client-side navigations to a demo's path into page loads."""


def _inject_link_script(app: FastAPI, names: list[str]) -> None:
    """Wrap Burr's catch-all page route so its HTML carries :data:`LINK_SCRIPT`."""
    script = ("<script>" + LINK_SCRIPT % _script_json(names) + "</script></head>").encode()
    for position, route in enumerate(app.router.routes):
        if isinstance(route, APIRoute) and route.path == BURR_PAGE_ROUTE:
            original = getattr(route.endpoint, "__wrapped_burr_page__", route.endpoint)
            app.router.routes[position] = APIRoute(
                BURR_PAGE_ROUTE,
                _page_with_script(original, script),
                methods=["GET"],
                include_in_schema=route.include_in_schema,
            )
            return
    logger.info("No Burr page route in this app; sidebar links to demos stay client-side")


def _page_with_script(original: Callable[..., Any], script: bytes) -> Callable[..., Any]:
    """Burr's page endpoint, with ``script`` (ending in ``</head>``) put before ``</head>``."""

    async def burr_page(request: Request, rest_of_path: str) -> Response:
        response = await original(request, rest_of_path)
        body = getattr(response, "body", b"")
        if not isinstance(response, HTMLResponse) or b"</head>" not in body:
            return response
        return HTMLResponse(body.replace(b"</head>", script, 1))

    burr_page.__wrapped_burr_page__ = original  # type: ignore[attr-defined]
    return burr_page


def install_into_burr_server(module: Any) -> None:
    """Mount the registered demos into Burr's server module: its ``app``, and every app that
    its ``create_burr_ui_app`` builds later (so ``mount_burr_ui`` gets them too)."""
    create = getattr(module, "create_burr_ui_app", None)
    if callable(create) and not getattr(create, "__mounts_burr_demos__", False):

        def create_burr_ui_app(*args: Any, **kwargs: Any) -> FastAPI:
            ui_app = create(*args, **kwargs)
            mount_demos(ui_app)
            return ui_app

        create_burr_ui_app.__mounts_burr_demos__ = True  # type: ignore[attr-defined]
        create_burr_ui_app.__doc__ = create.__doc__
        module.create_burr_ui_app = create_burr_ui_app
    app = getattr(module, "app", None)
    if isinstance(app, FastAPI):
        mount_demos(app)
