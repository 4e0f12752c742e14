"""The startup hook. The package's ``.pth`` line calls :func:`install` (as setuptools'
``distutils-precedence.pth`` calls ``_distutils_hack.add_shim``), which puts a
:class:`BurrDemosFinder` on ``sys.meta_path``. The finder imports nothing and answers ``None``
for every module but ``burr.tracking.server.run`` (the module the ``burr`` command serves); for
that one it lets Burr's module load normally and then mounts the registered demos into it.

It never raises into Burr: what it could not do is logged (logger ``burr_streaming_chatbot
._burr_hook``), and Burr starts without the demos. ``BURR_DEMOS_AUTOLOAD=0`` turns it off.
"""

import os
import sys

TARGET = "burr.tracking.server.run"
"""The module whose loading the finder watches for."""

FINDER_NAME = "BurrDemosFinder"
"""The class name of the finder :func:`install` puts on ``sys.meta_path``."""


def _log_failure(message: str, *args: object) -> None:
    import logging  # only when something went wrong: the hook imports nothing at startup

    logging.getLogger(__name__).warning(message, *args, exc_info=True)


class BurrDemosFinder:
    """A meta path finder that only reacts to :data:`TARGET`."""

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name != TARGET:
            return None
        return find_spec(name, path, target)


def install(meta_path=None) -> bool:  # type: ignore[no-untyped-def]
    """Put a :class:`BurrDemosFinder` first on ``meta_path`` (``sys.meta_path`` by default)
    unless ``BURR_DEMOS_AUTOLOAD=0`` or one is there; returns whether the finder is on it."""
    if os.environ.get("BURR_DEMOS_AUTOLOAD", "1") == "0":
        return False
    meta_path = sys.meta_path if meta_path is None else meta_path
    if not any(type(finder).__name__ == FINDER_NAME for finder in meta_path):
        meta_path.insert(0, BurrDemosFinder())
    return True


def find_spec(name, path=None, target=None):  # type: ignore[no-untyped-def]
    """Find Burr's server module the normal way and wrap its loader; ``None`` on any trouble
    (then Python finds it without the hook, and the demos are not mounted: logged)."""
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != FINDER_NAME]
    try:
        for finder in sys.meta_path:
            if getattr(finder, "__name__", "") == "PathFinder":
                spec = finder.find_spec(name, path, target)
                if spec is not None and spec.loader is not None:
                    # (a Loader by duck typing: importing importlib.abc would slow every startup)
                    spec.loader = _MountingLoader(spec.loader)  # type: ignore[assignment]
                return spec
        raise LookupError("no PathFinder on sys.meta_path")
    except Exception:
        _log_failure(
            "Could not hook into %s: Burr's server starts without the registered demos", name
        )
    return None


class _MountingLoader:
    """Runs Burr's module, then mounts the demos into it."""

    def __init__(self, loader) -> None:  # type: ignore[no-untyped-def]
        self.loader = loader

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        self.loader.exec_module(module)  # Burr's own errors propagate unchanged
        try:
            # Burr's own server, started to serve the demos: this package owns the process.
            os.environ.setdefault("BURR_CHATBOT_GC_FREEZE", "1")
            from burr_streaming_chatbot.plugins import install_into_burr_server

            install_into_burr_server(module)
        except Exception:  # never break Burr's server because of a demo
            _log_failure("Could not mount the registered Burr demos into %s", module.__name__)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.loader, name)
