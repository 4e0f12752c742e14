"""Installs the fixture demo (``tests/fixture_demo_package``) with pip into a folder of its own.

``pip install --target`` writes the package and its ``.dist-info`` (with the ``burr.demos``
entry point) there; a server process sees it through ``PYTHONPATH``, an in-process test through
``sys.path``. The test venv is never changed.
"""

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent / "fixture_demo_package"
API = "/api/v0/fixture_demo"


def install_fixture_demo(target: Path) -> Path:
    """Install the fixture demo into ``target`` (no network: no build isolation, no deps)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(PACKAGE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "fixture_demo" / "ui" / "index.html").is_file()
    return target
