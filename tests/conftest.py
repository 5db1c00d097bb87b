"""Fixtures for every test folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chromium() -> Callable[[str, Path], str]:
    """`render(html, folder)`: the DOM headless Chromium builds from the page (`--dump-dom`),
    its profile kept in `folder`. Skips the test where Chromium is not installed (CI installs
    it)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")

    def render(html: str, folder: Path) -> str:
        page = folder / "page.html"
        page.write_text(html, encoding="utf-8")
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={folder / 'profile'}", "--dump-dom",
             page.as_uri()],
            capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    return render
