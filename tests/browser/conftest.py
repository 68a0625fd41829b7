"""Playwright fixtures: Debian's Chromium against the live test server and the stub model server.

Screenshots of every step go to `test-artifacts/browser/<test>/`; with `DOCS_SCREENSHOTS=1` the
two pictures the README shows are written to `docs/screenshots/` as well.
"""

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Locator, Page, expect, sync_playwright

from testing.llm_server import Behaviour, StubModelServer
from testing.quiet_http import QuietHTTPServer
from tests.multiserver.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API keeps its event loop running in this thread (in a greenlet) while it is
    # started, so Django's async guard would refuse every ORM call of these tests, fixtures
    # included. Nothing here shares a connection with that loop; lift the guard for this package.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class PageWatch:
    """What a page did that a test must see: dialogs opened, script errors, CSP refusals."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)  # 4xx answers are expected; anything else is not


class Shots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, name: str):
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    def take(self, page: Page, step: str, *, docs_name: str | None = None, full_page: bool = False) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=path, full_page=full_page)
        if docs_name and os.environ.get("DOCS_SCREENSHOTS"):
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / docs_name)
        return path


@pytest.fixture
def shots(request) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def chat_server(live_server, model_server, settings):
    """The live server with its model calls going to the stub, which streams in visible steps.

    pytest-django's live server is WSGI: it serves a stream whole once it has ended. The tests that
    watch a reply arrive piece by piece use `production_server` instead.
    """
    model_server.behaviour.chunks = 8
    model_server.behaviour.chunk_delay = 0.08
    settings.INPUT_PATTERN_POLICY = "refuse"
    return live_server


@pytest.fixture(scope="module")
def production_server(django_db_setup, django_db_blocker) -> Iterator[ServerProcess]:
    """The production server (gunicorn's ASGI worker) on the test database, its model the stub."""
    with StubModelServer(behaviour=Behaviour(chunks=8, chunk_delay=0.08)) as model, django_db_blocker.unblock():
        env = {"LLM_MODEL": "openai/stub-model", "LLM_API_BASE": model.api_base, "LLM_API_KEY": "stub-key"}
        server = ServerProcess(env, name="browser")
        try:
            yield server.wait_ready()
        finally:
            server.stop()


class HostSite:
    """Another web site (another origin) whose one page embeds the widget."""

    def __init__(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.html = ""
        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, html: str) -> None:
        self.html = html


@pytest.fixture
def host_site() -> Iterator[HostSite]:
    site = HostSite()
    thread = threading.Thread(target=site.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield site
    site.httpd.shutdown()
    site.httpd.server_close()


def open_page(browser: Browser, *, viewport: dict | None = None) -> tuple[Page, PageWatch]:
    context = browser.new_context(viewport=viewport or {"width": 1100, "height": 820})
    page = context.new_page()
    watch = PageWatch()
    page.on("dialog", watch.on_dialog)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    return page, watch


@pytest.fixture
def visitor_page(browser) -> Iterator[tuple[Page, PageWatch]]:
    page, watch = open_page(browser)
    yield page, watch
    page.context.close()


class Widget:
    """The chat widget on a page, driven the way a visitor does: by labels and keys."""

    def __init__(self, page: Page):
        self.page = page
        self.log = page.locator(".cw-log")
        self.visitor_messages = page.locator(".cw-log .cw-visitor .cw-text")
        self.replies = page.locator(".cw-log .cw-assistant .cw-text")
        self.status = page.get_by_role("status")
        self.remaining = page.locator(".cw-remaining")

    @property
    def message_box(self) -> Locator:
        return self.page.get_by_label("Your message")

    def start(self, email: str) -> None:
        self.page.get_by_label("Email address").fill(email)
        self.page.get_by_role("button", name="Start chat").click()
        expect(self.message_box).to_be_visible()

    def send(self, text: str) -> None:
        self.message_box.fill(text)
        self.message_box.press("Enter")

    def wait_for_reply(self, number: int, text: str | re.Pattern) -> None:
        """Reply `number` (from 1) is complete and reads exactly `text`."""
        reply = self.page.locator(".cw-log .cw-assistant").nth(number - 1)
        expect(reply).not_to_have_attribute("aria-busy", "true", timeout=15_000)
        expect(reply.locator(".cw-text")).to_have_text(text)

    def see_streaming(self, number: int) -> str:
        """Reply `number` (from 1) shows part of its text while still arriving; returns that part."""
        partial = self.page.wait_for_function(
            """index => {
                const reply = document.querySelector(".chat-widget").shadowRoot
                    .querySelectorAll(".cw-log .cw-assistant")[index];
                const text = reply && reply.querySelector(".cw-text").textContent;
                return reply && reply.getAttribute("aria-busy") === "true" && text.trim() ? text : false;
            }""",
            arg=number - 1,
            timeout=10_000,
        ).json_value()
        reply = self.page.locator(".cw-log .cw-assistant").nth(number - 1)
        expect(reply).not_to_have_attribute("aria-busy", "true", timeout=15_000)
        return partial
