"""Headless Chromium for the tests that check a page as a browser renders it (the Debian
package `chromium`, installed by .ci/run; the tests skip where there is none)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def browser() -> str | None:
    """The first Chromium-like browser on PATH."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


NO_BROWSER = ("no headless Chromium on this machine (Debian package `chromium`); the "
              "html.parser tests still run")


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM Chromium renders for ``page``, loaded offline (AssertionError on failure)."""
    path = browser()
    assert path is not None
    argv = [path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
