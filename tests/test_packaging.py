"""The wheel and the sdist carry the built page and the startup hook; git carries neither."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # builds the wheel and sdist in a subprocess

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("hatchling")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return out


def test_wheel_ships_the_page_the_hook_and_the_entry_point(dist: Path) -> None:
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        declared = archive.read(entry_points).decode()
        hook = archive.read("burr_streaming_chatbot_hook.pth").decode()
    assert "burr_streaming_chatbot/ui/index.html" in names
    assert any(
        n.startswith("burr_streaming_chatbot/ui/assets/") and n.endswith(".js") for n in names
    )
    assert "[burr.demos]\nstreaming-chatbot = burr_streaming_chatbot.demo:demo" in declared
    assert hook.startswith("import os, sys;") and "BURR_DEMOS_AUTOLOAD" in hook
    assert not any("node_modules" in n for n in names)


def test_sdist_ships_the_page_and_its_source(dist: Path) -> None:
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert "src/burr_streaming_chatbot/ui/index.html" in names
    assert "ui_bundle/package-lock.json" in names and "ui_bundle/src/App.tsx" in names
    assert not any("node_modules" in n for n in names)


def test_git_holds_no_build_output() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    assert not [p for p in tracked if p.startswith("src/burr_streaming_chatbot/ui/")]
    assert not [p for p in tracked if "node_modules" in p]
