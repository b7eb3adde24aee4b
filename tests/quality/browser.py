"""Open a local HTML file in headless Chromium and return the text of its DOM (for report tests)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_SECONDS = 60
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_INVISIBLE = re.compile(r"<(style|script|head)\b.*?</\1>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def dump_dom(html_path: Path) -> str:
    """The DOM of ``html_path`` after Chromium loaded it (``--dump-dom``); fails the test if it cannot."""
    binary = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if binary is None:
        pytest.fail(f"Chromium is not installed ({CHROMIUM}): run `bash scripts/system_packages.sh` (make test does)")
    with tempfile.TemporaryDirectory(prefix="kiln-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", html_path.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Chromium did not load {html_path} within {TIMEOUT_SECONDS} s")
    if done.returncode != 0 or "<body" not in done.stdout:
        pytest.fail(f"Chromium could not load {html_path} (exit {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def page_text(html_path: Path) -> str:
    """The visible text of ``html_path`` as Chromium rendered its DOM: tags stripped, whitespace collapsed."""
    dom = _INVISIBLE.sub(" ", dump_dom(html_path))
    return " ".join(html.unescape(_TAG.sub(" ", dom)).split())
