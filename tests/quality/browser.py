"""The system Chromium for tests: a local HTML file's DOM, or a Playwright browser (no browser download).

``dump_dom``/``page_text`` load a file with ``chromium --dump-dom``;
``playwright_chromium`` drives the same binary through Playwright, for pages
that need clicks and typing (the Airflow UI).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

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


def chromium_binary() -> str:
    """The system Chromium (Debian's, from scripts/system_packages.sh); fails the test when it is missing."""
    binary = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if binary is None:
        pytest.fail(f"Chromium is not installed ({CHROMIUM}): run `bash scripts/system_packages.sh` (make test does)")
    return binary


@contextmanager
def playwright_chromium() -> Iterator[Browser]:
    """A headless Playwright browser on the system Chromium (Playwright's own browsers are never downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_binary(), args=list(FLAGS[1:]))
        try:
            yield browser
        finally:
            browser.close()


def dump_dom(html_path: Path) -> str:
    """The DOM of ``html_path`` after Chromium loaded it (``--dump-dom``); fails the test if it cannot."""
    binary = chromium_binary()
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
