"""The pages in a real headless Chromium against the real app served by uvicorn on loopback."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from server_support import LiveServer
from sqlalchemy import update

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.signatures import load_signature_set
from app.main import create_app
from app.store.migrate import upgrade
from app.store.models import DiagnosisRecord
from app.store.types import utc_now
from tests.web.sample_logs import (
    MORE_FAILURES,
    crash_log,
    gpu_oom_log,
    missing_field_log,
    nan_loss_log,
    nccl_timeout_log,
    script_log,
)

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


@contextmanager
def served(data_dir: Path, diagnoser: Diagnoser) -> Iterator[tuple[str, FastAPI]]:
    """The real app on a fresh SQLite store in data_dir, served by uvicorn on a free loopback port."""
    settings = Settings.read(env_file=None, data_dir=data_dir, auth="off")
    upgrade(settings.sqlalchemy_url)
    app = create_app(settings, diagnoser=diagnoser)
    server = LiveServer(app)
    server.start()
    try:
        yield server.url, app
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory, diagnoser: Diagnoser) -> Iterator[str]:
    with served(tmp_path_factory.mktemp("browser-store"), diagnoser) as (url, _app):
        yield url


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
    button = page.locator('button[data-copy-target="corrected-command"]')
    button.click()
    playwright_api.expect(button).to_have_text(re.compile(r"Copied|Selected"))


def test_a_pasted_command_is_checked_and_its_fix_can_be_copied(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server_url + "/")
    page.get_by_role("link", name="Check a command").click()
    page.wait_for_url(re.compile(r"/check$"))
    page.fill("#command", "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct \\\n"
                          "  --deepspeed zero3 --device_map auto --dataset alpaca")
    page.fill("#gpu", "Tesla V100-SXM2-32GB")
    page.fill("#gpus", "8")
    page.get_by_role("button", name="Check").click()
    report = page.locator("#check-report")
    playwright_api.expect(report.locator('[data-rule="deepspeed-with-device-map"]')).to_be_visible()
    assert "--device_map" not in page.locator("#corrected-command").inner_text()
    assert "alpaca#10" in page.locator("#verification-command").inner_text()
    assert page.locator("#gpu").input_value() == "Tesla V100-SXM2-32GB"
    button = page.locator('button[data-copy-target="corrected-command"]')
    button.click()
    playwright_api.expect(button).to_have_text(re.compile(r"Copied|Selected"))


def test_the_api_docs_render_with_the_network_cut(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    outside: list[str] = []

    def only_this_server(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(server_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(server_url + "/docs")
    playwright_api.expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".swagger-ui .opblock-summary-path", has_text="/api/v1/checks").count() == 1
    assert outside == []


@pytest.mark.parametrize("width", [800, 390])
def test_the_list_and_a_diagnosis_fit_narrow_screens(page, server_url: str, tmp_path: Path, width: int) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "oom.log"
    log_file.write_bytes(gpu_oom_log(step=377))
    upload_through_the_page(page, server_url, log_file, job_id=f"narrow-{width}")
    diagnosis_url = page.url
    page.set_viewport_size({"width": width, "height": 900})
    for url in (server_url + "/", diagnosis_url):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (url, width)
        page.screenshot(path=str(tmp_path / f"{width}-{url.rsplit('/', 1)[-1] or 'list'}.png"), full_page=True)
    page.goto(server_url + "/")
    what_happened = page.get_by_role("link", name="The GPU ran out of memory").first
    box = what_happened.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1  # not cut off


def test_a_word_from_a_log_finds_it_and_links_to_its_line(page, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "model.log"
    log_file.write_bytes(b"[INFO:swift] args: model=acme/Walrus-13B-Chat\n" + gpu_oom_log(step=211))
    upload_through_the_page(page, server_url, log_file, job_id="walrus-run")
    page.goto(server_url + "/")
    page.fill("#filter-q", "walrus-13b")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"q=walrus-13b"))
    match = page.locator("a.log-match")
    playwright_api.expect(match).to_have_count(1)
    assert "line 1:" in match.inner_text() and "acme/Walrus-13B-Chat" in match.inner_text()
    match.click()
    page.wait_for_url(re.compile(r"/log\?around=1#L1$"))
    playwright_api.expect(page.locator("#L1")).to_contain_text("acme/Walrus-13B-Chat")


def test_feedback_given_on_the_page_is_shown_and_counted_on_the_dashboard(  # type: ignore[no-untyped-def]
    page, server_url: str, tmp_path: Path
) -> None:
    log_file = tmp_path / "wrong.log"
    log_file.write_bytes(nan_loss_log(nan_from=433))
    upload_through_the_page(page, server_url, log_file, job_id="feedback-run")
    signature = page.locator("span", has_text=re.compile("^signature ")).locator("code").inner_text()

    page.fill("#feedback-author", "Ana")
    page.select_option("#feedback-category", "config_error")
    page.fill("#feedback-parameter", "learning_rate")
    with page.expect_navigation(url=re.compile(r"/diagnoses/\d+#feedback-heading$")):
        page.get_by_role("button", name="Wrong").click()
    said = page.locator(".feedback-list li.feedback-wrong")
    playwright_api.expect(said).to_have_count(1)
    playwright_api.expect(said).to_contain_text("Ana said it was wrong: it was config_error, the fix was learning_rate")

    page.goto(server_url + "/dashboard")
    row = page.locator("table.precision tr", has=page.locator(f"code:text-is('{signature}')"))
    playwright_api.expect(row).to_have_class("corrected")
    assert int(row.locator("td").nth(1).inner_text()) >= 1  # wrong


def test_an_unknown_failure_becomes_a_signature_from_its_dashboard_skeleton(  # type: ignore[no-untyped-def]
    page, server_url: str, tmp_path: Path
) -> None:
    for shard in (7, 31):
        log_file = tmp_path / f"walrus-{shard}.log"
        error = f"WalrusError: the tusk scheduler dropped shard {shard} of 64"
        log_file.write_bytes(crash_log([error], step=120 + shard))
        upload_through_the_page(page, server_url, log_file, job_id=f"walrus-{shard}")
        playwright_api.expect(page.locator(".badge.category-unknown").first).to_be_visible()

    page.goto(server_url + "/dashboard")
    row = page.locator("table.unknown-clusters tbody tr", has_text="WalrusError")
    playwright_api.expect(row).to_have_count(1)
    playwright_api.expect(row.locator('td[data-label="Runs"]')).to_have_text("2")
    with page.expect_download() as download_info:
        row.get_by_role("link", name="skeleton (YAML)").click()
    folder = tmp_path / "team-signatures"
    folder.mkdir()
    skeleton = folder / download_info.value.suggested_filename
    download_info.value.save_as(skeleton)
    edited = skeleton.read_text().replace("category: unknown", "category: data_error")
    skeleton.write_text(edited)

    learned = Diagnoser(load_signature_set([folder]))  # loading checks the samples against the pattern
    diagnosis = learned.diagnose(crash_log(["WalrusError: the tusk scheduler dropped shard 12 of 64"], step=300))
    assert (diagnosis.category, diagnosis.signature) == ("data_error", skeleton.stem)


def test_the_pages_fit_a_phone_screen(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/", "/dashboard", "/check"):
        page.goto(server_url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, path


def test_keyboard_users_can_skip_to_the_content(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def seed_history(url: str, app: FastAPI) -> int:
    """About a month of a lab's crashed runs across three teams, sent through the API and spread over days."""
    history: list[tuple[str, str, bytes]] = []
    for index in range(14):
        step = 400 + 97 * index
        history.append(("vision", f"sft-qwen7b-{step}", gpu_oom_log(step=step, job=f"oom-{index}")))
    for index in range(6):
        history.append(("nlp", f"pretrain-1b-lr3e-4-{index}", nan_loss_log(nan_from=300 + 40 * index)))
    for index in range(5):
        history.append(("nlp", f"mn-llama-70b-{index}", nccl_timeout_log() + f"# rerun {index}\n".encode()))
    for index in range(7):
        history.append(("speech", f"asr-data-v{index}", missing_field_log() + f"# attempt {index}\n".encode()))
    failures = list(MORE_FAILURES.items())
    for index in range(18):
        name, lines = failures[index % len(failures)]
        team = ("vision", "nlp", "speech")[index % 3]
        step = None if name == "module_missing" else 60 + 83 * index
        history.append((team, f"{name.replace('_', '-')}-{index}", crash_log(lines, step=step, job=f"{name}-{index}")))
    ids = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for team, job_id, log in history:
            response = http.post(
                "/api/v1/diagnoses", files={"file": ("train.log", log)}, data={"team": team, "job_id": job_id}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    now = utc_now()
    with app.state.session_factory() as session, session.begin():
        for position, diagnosis_id in enumerate(ids):
            age = timedelta(days=(len(ids) - position) * 27 / len(ids), hours=(position * 7) % 11)
            session.execute(
                update(DiagnosisRecord).where(DiagnosisRecord.id == diagnosis_id).values(received_at=now - age)
            )
    return ids[-1]


def test_screenshots_of_the_three_pages(browser_context, tmp_path: Path, diagnoser: Diagnoser) -> None:  # type: ignore[no-untyped-def]
    """Screenshots for the README (written to TRAINWRECK_SCREENSHOT_DIR when it is set)."""
    target = Path(os.environ.get("TRAINWRECK_SCREENSHOT_DIR") or tmp_path)
    with served(tmp_path / "store", diagnoser) as (url, app):
        latest = seed_history(url, app)
        page = browser_context.new_page()
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto(url + "/")
        page.screenshot(path=str(target / "list.png"))
        oom = page.locator("tr", has_text="sft-qwen7b-1661").locator("td.title a")
        oom.click()
        page.wait_for_url(re.compile(r"/diagnoses/\d+$"))
        page.screenshot(path=str(target / "diagnosis.png"), full_page=True)
        page.goto(url + "/dashboard")
        page.screenshot(path=str(target / "dashboard.png"), full_page=True)
        page.close()
    assert latest > 0
    for name in ("list.png", "diagnosis.png", "dashboard.png"):
        assert (target / name).stat().st_size > 10_000
