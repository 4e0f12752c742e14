"""Build hook: builds the React page (``ui_bundle/``, with npm) into the package before packing.

The build is skipped when ``src/burr_streaming_chatbot/ui/index.html`` is newer than every
source of the page (as in an sdist, which ships the built page). Set
``BURR_CHATBOT_SKIP_UI_BUILD=1`` to pack without building (the page then reports it is missing).
"""

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

UI_SOURCES = (
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "tsconfig.app.json",
)


class UIBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        bundle = root / "ui_bundle"
        built = root / "src" / "burr_streaming_chatbot" / "ui" / "index.html"
        if os.environ.get("BURR_CHATBOT_SKIP_UI_BUILD") == "1" or not bundle.is_dir():
            return
        if built.is_file() and built.stat().st_mtime >= _newest_source(bundle):
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "Building burr-streaming-chatbot needs npm (Node.js 20+) to build its page from "
                "ui_bundle/; install Node.js, or set BURR_CHATBOT_SKIP_UI_BUILD=1 to skip the page."
            )
        if not (bundle / "node_modules").is_dir():
            self.app.display_info("Installing the page's npm packages (npm ci)")
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=bundle, check=True)
        self.app.display_info("Building the page (npm run build)")
        subprocess.run([npm, "run", "build"], cwd=bundle, check=True)


def _newest_source(bundle: Path) -> float:
    newest = 0.0
    for name in UI_SOURCES:
        path = bundle / name
        paths = path.rglob("*") if path.is_dir() else [path]
        for item in paths:
            if item.is_file():
                newest = max(newest, item.stat().st_mtime)
    return newest
