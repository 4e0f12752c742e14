"""The ``burr.demos`` entry point group: find registered demos and mount them into a Burr server.

The host contract needs nothing from this package. An entry point in the ``burr.demos`` group
names an object or a mapping with the fields ``name``, ``title``, ``api_prefix``,
``create_router``, ``ui_dir`` and optionally ``description`` (or a callable returning one)::

    [project.entry-points."burr.demos"]
    my-demo = "my_package.demo:demo"

:class:`Demo` is a convenience with those fields. :func:`mount_demos` adds, for every registered
demo, its API router at ``api_prefix`` and its page at ``/demos/<name>/``, ahead of Burr's
catch-all page route; ``GET /api/v0/demos`` listing the loaded demos and the ones that failed;
and a small script on Burr's own pages that adds an entry per demo under "Demos" in Burr's
sidebar and turns clicks on ``/demos/<name>`` into page loads of the demo's page. Each demo
router's lifespan runs exactly once, however the app is served (see :class:`_RunOnce`).
This module knows nothing about any particular demo.
"""

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Optional, Union

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from .guard import RequestGuard, WithHeaders, handle_validation_error, page_headers

try:
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "burr.demos"
"""The entry point group a package registers its demo in."""

BURR_PAGE_ROUTE = "/{rest_of_path:path}"
"""The path of Burr's catch-all route that serves its single-page app."""

DEMOS_API = "/api/v0/demos"
"""Lists the loaded demos and the ones that failed to load."""

BUILT_IN_DEMOS = ("counter", "chatbot", "email-assistant", "streaming-chatbot", "deep-researcher")
"""The demos Burr's own sidebar links to (apache-burr 0.42 and 0.43)."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Demo:
    """What a demo adds to a Burr server (any object or mapping with these fields will do)."""

    name: str
    """URL-safe name: the page is served at ``/demos/<name>/``."""
    title: str
    """Human-readable title: the text of its entry in Burr's sidebar."""
    api_prefix: str
    """Where the router is mounted, e.g. ``/api/v0/streaming_chatbot``."""
    create_router: Callable[[], APIRouter]
    """Builds the demo's API router; called once per server app."""
    ui_dir: Optional[Union[Path, Traversable]] = None
    """The built page (a folder with ``index.html``), usually ``importlib.resources.files(...)``."""
    description: Optional[str] = None
    """Optional one-line description (shown as the sidebar entry's tooltip)."""
    strict_csp: bool = False
    """The page runs only script files of its own (and the injected configuration): its page
    and assets are then sent with a strict Content-Security-Policy (:func:`.guard.page_headers`).
    Every page gets the framing, ``nosniff`` and referrer headers either way."""


@dataclass(frozen=True)
class DemoFailure:
    """A registered demo that could not be loaded or mounted, and why."""

    entry_point: str
    value: str
    distribution: Optional[str]
    error: str


def as_demo(obj: Any) -> Demo:
    """A :class:`Demo` from an object or mapping with the documented fields, or from a callable
    returning one; raises ``TypeError``/``ValueError`` saying what is wrong."""
    if isinstance(obj, Demo):
        return _validated(obj)
    if isinstance(obj, Mapping):
        fields = dict(obj)
    elif all(hasattr(obj, field) for field in ("name", "create_router")):
        fields = {f: getattr(obj, f) for f in Demo.__dataclass_fields__ if hasattr(obj, f)}
    elif callable(obj):
        made = obj()
        if callable(made) and not isinstance(made, (Demo, Mapping)) and not hasattr(made, "name"):
            raise TypeError(f"{obj!r} returned {type(made).__name__}, not a demo")
        return as_demo(made)
    else:
        raise TypeError(
            f"expected a demo (an object or mapping with name, title, api_prefix, "
            f"create_router), got {type(obj).__name__}"
        )
    unknown = sorted(set(fields) - set(Demo.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [f for f in ("name", "title", "api_prefix", "create_router") if f not in fields]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    return _validated(Demo(**fields))


def _validated(demo: Demo) -> Demo:
    if not isinstance(demo.name, str) or not NAME_PATTERN.match(demo.name):
        raise ValueError(f"name {demo.name!r} is not URL-safe (letters, digits, . _ -)")
    if not isinstance(demo.title, str) or not demo.title.strip():
        raise ValueError("title must be a non-empty string")
    prefix = demo.api_prefix
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"api_prefix {prefix!r} must start with '/' and not end with one")
    if not callable(demo.create_router):
        raise TypeError("create_router must be callable")
    if demo.description is not None and not isinstance(demo.description, str):
        raise TypeError("description must be a string")
    if not isinstance(demo.strict_csp, bool):
        raise TypeError("strict_csp must be true or false")
    return demo


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_demos() -> tuple[list[Demo], list[DemoFailure]]:
    """The demos registered under :data:`ENTRY_POINT_GROUP`, and the ones that failed (logged)."""
    demos: list[Demo] = []
    failures: list[DemoFailure] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(entry_point, "dist", None), "name", None)
        try:
            demo = as_demo(entry_point.load())
            taken = next((d for d in demos if d.name == demo.name), None)
            if taken is not None:
                raise ValueError(f"the name {demo.name!r} is already registered")
        except Exception as exc:
            logger.exception("Skipping demo %r from %s", entry_point.name, entry_point.value)
            failures.append(DemoFailure(entry_point.name, entry_point.value, dist, _reason(exc)))
            continue
        demos.append(demo)
    return demos, failures


def discover_demos() -> list[Demo]:
    """The demos registered under :data:`ENTRY_POINT_GROUP`; broken ones are logged and skipped."""
    return load_demos()[0]


Lifespan = Callable[[Any], Any]


class _RunOnce:
    """A demo router's lifespan, run at most once at a time per app, whichever way comes first:

    - *hosted*: merged into the lifespan of the app that serves the demo (``burr``,
      ``include_router``), or of the parent app (``mount_burr_ui`` with the startup hook on, or
      :func:`attach_lifespans`);
    - *lazily*: when a request reaches the demo before any hosted start (Starlette runs no
      lifespan of a mounted app), startup runs in a task of its own before that request is
      served, and shutdown when that task is cancelled as the event loop ends
      (``asyncio.run``, so uvicorn, cancels the tasks still running when it returns).
    """

    def __init__(self, name: str, lifespan: Lifespan) -> None:
        self.name = name
        self.lifespan = lifespan
        self.state = "idle"  # idle, starting, running, failed
        self.started: Optional[asyncio.Event] = None
        self.error: Optional[BaseException] = None
        self.task: Optional[asyncio.Task[None]] = None

    @asynccontextmanager
    async def hosted(self, app: Any) -> AsyncIterator[Any]:
        if self.state != "idle":  # already running (lazily, or hosted by another app)
            yield None
            return
        self.state = "running"
        try:
            async with self.lifespan(app) as state:
                yield state
        finally:
            self.state = "idle"

    async def ensure_started(self, app: Any) -> None:
        if self.state == "running":
            return
        if self.state == "failed":
            raise RuntimeError(f"the lifespan of demo {self.name!r} failed") from self.error
        if self.state == "idle":
            self.state = "starting"
            self.started = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._run(app))
        assert self.started is not None
        await self.started.wait()
        if self.state == "failed":
            raise RuntimeError(f"the lifespan of demo {self.name!r} failed") from self.error

    async def _run(self, app: Any) -> None:
        assert self.started is not None
        logger.info(
            "Starting the lifespan of demo %r on its first request (no app lifespan ran)", self.name
        )
        try:
            async with self.lifespan(app):
                self.state = "running"
                self.started.set()
                try:
                    await asyncio.Event().wait()  # until the loop ends and cancels this task
                except asyncio.CancelledError:
                    pass  # leave the context normally: the shutdown code runs
        except BaseException as exc:
            if self.state != "running":
                self.error = exc
                self.state = "failed"
                self.started.set()
                logger.exception("The lifespan of demo %r failed to start", self.name)
                return
            raise
        self.state = "idle"


def _starts_lifespan(run_once: _RunOnce, app: FastAPI) -> Any:
    """A dependency of every route of a demo's router: starts the demo's lifespan (if nothing
    has yet) before the route runs."""

    async def demo_lifespan_started() -> None:
        if run_once.state != "running":
            await run_once.ensure_started(app)

    return Depends(demo_lifespan_started)


def _chain(outer: Lifespan, inner: Lifespan) -> Lifespan:
    @asynccontextmanager
    async def chained(app: Any) -> AsyncIterator[Any]:
        async with outer(app) as outer_state:
            async with inner(app) as inner_state:
                merged = {**(outer_state or {}), **(inner_state or {})}
                yield merged or None

    return chained


def _noop_lifespan(app: Any) -> Any:
    @asynccontextmanager
    async def noop() -> AsyncIterator[None]:
        yield None

    return noop()


def mount_demos(app: FastAPI, demos: Optional[Iterable[Any]] = None) -> list[Demo]:
    """Mount demos (the registered ones unless given) into ``app``; returns those newly mounted.

    ``demos`` may hold :class:`Demo` objects or anything :func:`as_demo` accepts. Safe to call
    more than once: a demo already mounted in ``app`` is skipped.
    """
    mounted: dict[str, Demo] = getattr(app.state, "burr_demos", None) or {}
    app.state.burr_demos = mounted
    failures: list[DemoFailure] = getattr(app.state, "burr_demo_failures", None) or []
    app.state.burr_demo_failures = failures
    lifespans: list[_RunOnce] = getattr(app.state, "burr_demo_lifespans", None) or []
    app.state.burr_demo_lifespans = lifespans
    install_guard(app)
    if demos is None:
        candidates, failed = load_demos()
        known = {(f.entry_point, f.value) for f in failures}
        failures.extend(f for f in failed if (f.entry_point, f.value) not in known)
    else:
        candidates = [as_demo(demo) for demo in demos]
    new = []
    for demo in candidates:
        if demo.name in mounted:
            continue
        before = list(app.router.routes)
        try:
            router = demo.create_router()
            if not isinstance(router, APIRouter):
                raise TypeError(f"create_router returned {type(router).__name__}, not an APIRouter")
            run_once = _RunOnce(demo.name, router.lifespan_context)
            router.lifespan_context = _noop_lifespan  # run by run_once, not merged by FastAPI
            app.include_router(
                router, prefix=demo.api_prefix, dependencies=[_starts_lifespan(run_once, app)]
            )
        except Exception as exc:
            app.router.routes[:] = before
            logger.exception("Could not mount demo %r", demo.name)
            failures.append(DemoFailure(demo.name, demo.api_prefix, None, _reason(exc)))
            continue
        routes = [route for route in app.router.routes if route not in before]
        app.router.lifespan_context = _chain(app.router.lifespan_context, run_once.hosted)
        lifespans.append(run_once)
        routes += page_routes(demo)
        # Ahead of everything already there: Burr's own demo routers and its catch-all page.
        app.router.routes[:] = routes + before
        mounted[demo.name] = demo
        new.append(demo)
        logger.info("Mounted demo %r at /demos/%s/ and %s", demo.name, demo.name, demo.api_prefix)
    _add_demos_api(app)
    if mounted:
        _inject_link_script(app, list(mounted.values()))
    app.openapi_schema = None  # regenerate with the new routes
    return new


def install_guard(app: FastAPI) -> None:
    """Put :class:`~.guard.RequestGuard` in front of everything ``app`` serves (a foreign Host,
    a cross-site write and a form body are refused before any route runs), and answer its
    validation errors without echoing the input (unless the app has a handler of its own).
    Idempotent; on an app already serving, from its next request on."""
    if getattr(app.state, "burr_demos_guarded", False):
        return
    if app.middleware_stack is not None:  # already serving: Starlette rebuilds it on demand
        app.middleware_stack = None
    app.add_middleware(RequestGuard)
    current = app.exception_handlers.get(RequestValidationError)
    if current is None or current is request_validation_exception_handler:
        app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.state.burr_demos_guarded = True


def attach_lifespans(host: FastAPI, app: FastAPI) -> None:
    """Run the lifespans of the demos mounted in ``app`` with ``host``'s lifespan: for an
    ``app`` mounted into ``host`` (Starlette runs no lifespan of a mounted app). Idempotent."""
    attached: set[int] = getattr(host.state, "burr_demo_hosted", None) or set()
    host.state.burr_demo_hosted = attached
    for run_once in getattr(app.state, "burr_demo_lifespans", None) or []:
        if id(run_once) not in attached:
            attached.add(id(run_once))
            host.router.lifespan_context = _chain(host.router.lifespan_context, run_once.hosted)


def mount_burr_ui_with_demos(
    app: FastAPI,
    path: str = "/burr",
    demos: Optional[Iterable[Any]] = None,
    **burr_options: Any,
) -> FastAPI:
    """Mount Burr's UI into ``app`` at ``path`` with the demos (the registered ones unless
    given) and run the demos' lifespans with ``app``'s, whether the startup hook is on or off;
    returns Burr's UI app. ``burr_options`` go to Burr's ``mount_burr_ui`` (``name``,
    ``serve_static``).

    Burr's ``mount_burr_ui`` alone leaves the demos unmounted when the hook is off
    (``BURR_DEMOS_AUTOLOAD=0``), and Starlette runs no lifespan of a mounted app: the demos'
    shutdown, which saves the answers still streaming, would then never run.
    """
    from burr.tracking.server.run import mount_burr_ui

    ui_app = mount_burr_ui(app, path=path, **burr_options)
    mount_demos(ui_app, demos)  # (a no-op for the demos the hook already mounted)
    attach_lifespans(app, ui_app)
    return ui_app


def _add_demos_api(app: FastAPI) -> None:
    if getattr(app.state, "burr_demos_api", False):
        return
    app.state.burr_demos_api = True

    async def list_demos(request: Request) -> dict[str, Any]:
        root = request.scope.get("root_path", "")
        return {
            "demos": [
                {
                    "name": demo.name,
                    "title": demo.title,
                    "description": demo.description,
                    "api_prefix": demo.api_prefix,
                    "page": f"{root}/demos/{demo.name}/",
                }
                for demo in app.state.burr_demos.values()
            ],
            "failed": [asdict(failure) for failure in app.state.burr_demo_failures],
        }

    route = APIRoute(
        DEMOS_API,
        list_demos,
        methods=["GET"],
        tags=["demos"],
        summary="The demos loaded into this server, and the ones that failed",
    )
    app.router.routes.insert(0, route)


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
        source = f"window.__BURR_DEMO__={_script_json(config)};"
        script = f"<script>{source}</script>"
        html = html.replace("<head>", "<head>" + script, 1) if "<head>" in html else script + html
        headers = page_headers([source], strict=demo.strict_csp)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache", **headers})

    routes: list[BaseRoute] = [
        APIRoute(base, redirect, methods=["GET"], include_in_schema=False),
        APIRoute(base + "/", index, methods=["GET"], include_in_schema=False),
        APIRoute(base + "/index.html", index, methods=["GET"], include_in_schema=False),
    ]
    if directory is not None and directory.is_dir():
        assets = WithHeaders(StaticFiles(directory=directory), page_headers(strict=demo.strict_csp))
        routes.append(Mount(base, app=assets, name=f"demo-{demo.name}"))
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
  var demos = %s, builtIn = %s;
  var names = demos.map(function (d) { return d.name; });
  var base = window.__BURR_BASE_PATH__ || "";
  function demoUrl(href) {
    try {
      var url = new URL(href, location.href);
      if (url.origin !== location.origin) return null;
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
  // Burr's sidebar: its "Demos" group lists Burr's built-in demos. Add an entry (a plain link,
  // so a full page load and reachable with Tab) for every registered demo it does not list.
  function linkPath(a) {
    return new URL(a.getAttribute("href"), location.href).pathname.replace(/\\/+$/, "");
  }
  function demosList() {
    var links = document.querySelectorAll("a[href]");
    for (var i = 0; i < links.length; i++) {
      var path = linkPath(links[i]);
      for (var j = 0; j < builtIn.length; j++) {
        if (path === base + "/demos/" + builtIn[j]) {
          var list = links[i].closest("ul");
          if (list) return {list: list, sample: links[i]};
        }
      }
    }
    return null;
  }
  function addEntries() {
    var found = demosList();
    if (!found) return;
    var listed = {};
    found.list.querySelectorAll("a[href]").forEach(function (a) { listed[linkPath(a)] = true; });
    demos.forEach(function (demo) {
      var path = base + "/demos/" + demo.name;
      if (listed[path]) return;
      var item = document.createElement("li");
      item.setAttribute("data-burr-demo", demo.name);
      var link = document.createElement("a");
      link.href = path + "/";
      link.className = found.sample.className;
      link.textContent = demo.title;
      if (demo.description) link.title = demo.description;
      item.appendChild(link);
      found.list.appendChild(item);
    });
  }
  function watch() {
    addEntries();
    new MutationObserver(addEntries).observe(document.body, {childList: true, subtree: true});
  }
  if (document.body) watch(); else document.addEventListener("DOMContentLoaded", watch);
})();"""
"""Added to Burr's pages: adds an entry per registered demo under "Demos" in Burr's sidebar, and
turns client-side navigations to a demo's path into page loads."""


def _inject_link_script(app: FastAPI, demos: list[Demo]) -> None:
    """Wrap Burr's catch-all page route so its HTML carries :data:`LINK_SCRIPT`."""
    entries = [{"name": d.name, "title": d.title, "description": d.description} for d in demos]
    source = LINK_SCRIPT % (_script_json(entries), _script_json(list(BUILT_IN_DEMOS)))
    script = ("<script>" + source + "</script></head>").encode()
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
    its ``create_burr_ui_app`` builds later; its ``mount_burr_ui`` also runs the demos'
    lifespans with the parent app's."""
    create = getattr(module, "create_burr_ui_app", None)
    if callable(create) and not getattr(create, "__mounts_burr_demos__", False):

        def create_burr_ui_app(*args: Any, **kwargs: Any) -> FastAPI:
            ui_app = create(*args, **kwargs)
            mount_demos(ui_app)
            return ui_app

        create_burr_ui_app.__mounts_burr_demos__ = True  # type: ignore[attr-defined]
        create_burr_ui_app.__doc__ = create.__doc__
        module.create_burr_ui_app = create_burr_ui_app
    mount = getattr(module, "mount_burr_ui", None)
    if callable(mount) and not getattr(mount, "__mounts_burr_demos__", False):

        def mount_burr_ui(parent_app: FastAPI, *args: Any, **kwargs: Any) -> FastAPI:
            ui_app = mount(parent_app, *args, **kwargs)
            mount_demos(ui_app)
            attach_lifespans(parent_app, ui_app)  # Starlette runs no lifespan of ui_app
            return ui_app

        mount_burr_ui.__mounts_burr_demos__ = True  # type: ignore[attr-defined]
        mount_burr_ui.__doc__ = mount.__doc__
        module.mount_burr_ui = mount_burr_ui
    app = getattr(module, "app", None)
    if isinstance(app, FastAPI):
        mount_demos(app)
