"""The pages in a real headless Chromium against the real app served by uvicorn on loopback."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from tests.web.sample_logs import gpu_oom_log, missing_field_log, nan_loss_log, script_log

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """The Chromium to drive; a missing one skips these tests, unless every test is required to run."""
    path = os.environ.get("TRAINWRECK_TEST_CHROMIUM") or shutil.which("chromium")
    if path:
        return path
    reason = "no Chromium: install Debian's `chromium` or set TRAINWRECK_TEST_CHROMIUM"
    if os.environ.get("TRAINWRECK_REQUIRE_ALL_TESTS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("browser-store"), auth="off", _env_file=None)  # type: ignore[call-arg]
    upgrade(settings.sqlalchemy_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    executable = chromium_path()
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser_context):  # type: ignore[no-untyped-def]
    tab = browser_context.new_page()
    yield tab
    tab.close()


def upload_through_the_page(page, server_url: str, log_file: Path, *, job_id: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server_url + "/")
    page.fill("#upload-team", "vision")
    page.fill("#upload-job", job_id)
    with page.expect_navigation(url=re.compile(r"/diagnoses/\d+$"), timeout=30_000):
        page.set_input_files("#upload-file", str(log_file))


def test_upload_find_open_filter_and_dashboard(page, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "train.log"
    log_file.write_bytes(gpu_oom_log(step=611))
    other = tmp_path / "data.log"
    other.write_bytes(missing_field_log())

    upload_through_the_page(page, server_url, log_file, job_id="sft-qwen-611")
    assert page.locator("h1").inner_text() == "The GPU ran out of memory"
    assert page.locator(".chart-progress").is_visible()
    upload_through_the_page(page, server_url, other, job_id="sft-data-broken")

    page.goto(server_url + "/")
    row = page.locator("tr", has_text="sft-qwen-611")
    assert row.is_visible()
    row.locator("td.title a").click()
    page.wait_for_url(re.compile(r"/diagnoses/\d+$"))
    assert page.get_by_role("heading", name="What to change").is_visible()

    page.goto(server_url + "/")
    page.select_option("#filter-category", "data_error")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"category=data_error"))
    assert page.locator("tr", has_text="sft-data-broken").is_visible()
    assert page.locator("tr", has_text="sft-qwen-611").count() == 0

    page.goto(server_url + "/dashboard")
    assert page.get_by_role("heading", name="By category").is_visible()
    assert page.locator("svg.chart-bars").first.is_visible()
    page.locator("svg.chart-bars a").first.click()
    page.wait_for_url(re.compile(r"category="))


def test_a_log_with_a_script_runs_nothing_and_shows_the_text(page, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_file = tmp_path / "hostile.log"
    log_file.write_bytes(script_log())

    upload_through_the_page(page, server_url, log_file, job_id="<script>alert(4)</script>")
    assert page.get_by_text("<script>alert(3)</script>", exact=False).first.is_visible()
    page.get_by_role("link", name="Open the full log").click()
    page.wait_for_url(re.compile(r"/log"))
    assert page.get_by_text("<script>alert(1)</script>").is_visible()
    assert page.get_by_text("<img src=x onerror=alert(2)>").is_visible()
    page.goto(server_url + "/")
    assert page.get_by_text("<script>alert(4)</script>").first.is_visible()
    page.wait_for_timeout(300)
    assert dialogs == []


def test_the_corrected_command_can_be_copied(page, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "nan.log"
    log_file.write_bytes(nan_loss_log())
    upload_through_the_page(page, server_url, log_file, job_id="nan-run")
    assert page.locator("svg.chart-loss").is_visible()
    button = page.locator("button[data-copy-target]")
    button.click()
    playwright_api.expect(button).to_have_text(re.compile(r"Copied|Selected"))


def test_the_pages_fit_a_phone_screen(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/", "/dashboard"):
        page.goto(server_url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, path


def test_keyboard_users_can_skip_to_the_content(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
