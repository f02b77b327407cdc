"""Headless Chromium (Debian's package) for page tests: the DOM after load, and screenshots.

The flags are those this machine's Chromium needs as root without a network: no sandbox, no
GPU, and none of its background connections; a fresh profile each run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("no chromium on PATH: install Debian's chromium package (.ci/run does)")
    return found


def run_chromium(*args: str, timeout: float = 60) -> str:
    """Chromium's stdout for ``args``, with a profile of its own; fails with its stderr."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        result = subprocess.run(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def dump_dom(page: Path, *extra: str) -> str:
    """The page's DOM once loaded (its scripts run), serialised."""
    return run_chromium("--virtual-time-budget=5000", *extra, "--dump-dom", page.as_uri())


def screenshot(page: Path, target: Path, width: int, height: int) -> Path:
    run_chromium(f"--window-size={width},{height}", f"--screenshot={target}", page.as_uri())
    assert target.is_file() and target.stat().st_size > 1000, f"no screenshot at {target}"
    return target
