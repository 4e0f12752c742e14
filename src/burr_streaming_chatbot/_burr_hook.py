"""Imported by this package's ``.pth`` line in every Python process; does nothing until
``burr.tracking.server.run`` (the module the ``burr`` command serves) is imported, then mounts
the registered demos into its ``app``.

Costs one small import at interpreter start, never raises, and is switched off with
``BURR_DEMOS_AUTOLOAD=0`` (read by the ``.pth`` line itself).
"""

import sys

# Nothing but ``sys`` is imported here: importlib.abc alone would pull in typing (~30 ms).
# The path-based finder is already on sys.meta_path; it finds Burr's module the normal way.

TARGET = "burr.tracking.server.run"


class _BurrServerFinder:
    """Finds Burr's server module the normal way, then wraps its loader."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname != TARGET:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        try:
            spec = None
            for finder in sys.meta_path:
                if getattr(finder, "__name__", "") == "PathFinder":
                    spec = finder.find_spec(fullname, path, target)
                    break
            if spec is not None and spec.loader is not None:
                spec.loader = _MountingLoader(spec.loader)
            return spec
        except Exception:
            return None


class _MountingLoader:
    def __init__(self, loader) -> None:  # type: ignore[no-untyped-def]
        self.loader = loader

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        self.loader.exec_module(module)  # Burr's own errors propagate unchanged
        try:
            from burr_streaming_chatbot.plugins import install_into_burr_server

            install_into_burr_server(module)
        except Exception:  # never break Burr's server because of a demo
            import logging

            logging.getLogger(__name__).exception("Could not mount the registered Burr demos")

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.loader, name)


def install() -> None:
    """Start watching for Burr's server module (once per process)."""
    if TARGET in sys.modules:
        return
    if not any(isinstance(finder, _BurrServerFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BurrServerFinder())


try:
    install()
except Exception:
    pass
