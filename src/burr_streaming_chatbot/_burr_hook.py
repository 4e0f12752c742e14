"""The startup hook. The package's ``.pth`` line puts a finder on ``sys.meta_path`` that
imports nothing and does nothing until ``burr.tracking.server.run`` (the module the ``burr``
command serves) is imported; then it calls :func:`find_spec` here, which lets Burr's module
load normally and mounts the registered demos into its ``app``.

It never raises into Burr, and ``BURR_DEMOS_AUTOLOAD=0`` (read by the ``.pth`` line) turns it
off.
"""

import sys

FINDER_NAME = "BurrDemosFinder"
"""The class name of the finder the ``.pth`` line installs."""


def find_spec(name, path=None, target=None):  # type: ignore[no-untyped-def]
    """Find Burr's server module the normal way and wrap its loader; ``None`` on any trouble."""
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != FINDER_NAME]
    try:
        for finder in sys.meta_path:
            if getattr(finder, "__name__", "") == "PathFinder":
                spec = finder.find_spec(name, path, target)
                if spec is not None and spec.loader is not None:
                    spec.loader = _MountingLoader(spec.loader)
                return spec
    except Exception:
        pass
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
            from burr_streaming_chatbot.plugins import install_into_burr_server

            install_into_burr_server(module)
        except Exception:  # never break Burr's server because of a demo
            import logging

            logging.getLogger(__name__).exception("Could not mount the registered Burr demos")

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.loader, name)
