"""The headless Chromium the browser tests and ``benchmarks/ui_budget.py`` drive (Debian's, with
the flags it needs in a sandboxed container: Playwright cannot download a browser here)."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
