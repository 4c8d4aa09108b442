"""Fixtures of the browser tests: a real ``dialogllm serve`` of the graphs in
``app/`` on the real Redis (a key prefix per module) and a real Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright; the tests skip, saying why, only when
it is not installed and cannot be)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REDIS_URL, delete_prefix
from tests.integration.server.conftest import Server, start_server

UI_APP = Path(__file__).with_name("app") / "langgraph.json"
CHROMIUM = Path(os.environ.get("DIALOGLLM_TEST_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[3] / "docs" / "ui"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ui_prefix() -> Iterator[str]:
    """A key prefix for the module's server; deleted afterwards."""
    prefix = f"test-ui-{uuid.uuid4().hex[:10]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture(scope="module")
def ui_server(ui_prefix: str) -> Iterator[Server]:
    """``dialogllm serve`` of the test graphs, with its in-process worker; replies
    stream a token every 10 ms, the chat's turns take 0.1 s each."""
    env = {"UI_TEST_TOKEN_DELAY": "0.01", "UI_TEST_TURN_DELAY": "0.1"}
    started = start_server(ui_prefix, config=UI_APP, env=env)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (skipped, with the reason, where none is installed)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium "
            "(apt-get install chromium) when it runs as root or with sudo"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page (its own localStorage), desk-sized."""
    context = browser.new_context(
        viewport={"width": 1100, "height": 900}, accept_downloads=True
    )
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot of ``page`` as docs/ui/NAME.png (the docs show these)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)
