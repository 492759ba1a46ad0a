"""The dashboard in a real headless Chromium (selenium + Debian chromium/chromium-driver).

The bot is served on a real 127.0.0.1 port (aiohttp TestServer); the browser logs in with the admin token,
the overview is saved to test-artifacts/dashboard-overview.png, then it opens a campaign, checks who is
missing and downloads that campaign's ledger, which is opened and read.

Skipped with a reason when Chromium, chromedriver or selenium is missing, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import BotApp
from bot.clock import FakeClock
from tests.conftest import stop_bot
from tests.test_dashboard import (
    LI_SI,
    TOKEN,
    ZHANG_SAN,
    current_dues,
    member_rows,
    paid_in,
    read_xlsx,
    seed_dues_history,
    start,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROME_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
)  # fmt: skip

pytestmark = pytest.mark.slow


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def browser_or_skip() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or skip (fail under CI) saying what is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, found in (("chromium", chromium), ("chromedriver", driver)) if not found]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = (
            f"browser test needs {', '.join(missing)}: apt-get install -y chromium chromium-driver "
            "fonts-noto-cjk; pip install -e '.[test]'"
        )
        if _under_ci():
            pytest.fail(f"{reason} (CI is set, so this test must run)")
        pytest.skip(reason)
    assert chromium is not None and driver is not None
    return chromium, driver


def full_page_screenshot(browser: Any, path: Path) -> None:
    """The whole page, not just the window (CDP captureBeyondViewport)."""
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def served_chat(settings_factory: Any, clock: FakeClock) -> AsyncIterator[TestClient]:
    """The bot on a real loopback port with its background dispatcher (the chat page polls for replies)."""
    settings = await settings_factory(**{"outbox.poll_seconds": 0.2})
    app = BotApp(settings, clock, scheduler=False, background_dispatch=True)
    client = TestClient(TestServer(await app.start()))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await app.stop()


def start_chrome(chromium: str, chromedriver: str, work: Path, prefs: dict[str, Any] | None = None) -> Any:
    """A headless Chromium (Debian's) with a profile under ``work``; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (*CHROME_ARGS, f"--user-data-dir={work / 'profile'}"):
        options.add_argument(arg)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def drive(chromium: str, chromedriver: str, base: str, campaign_id: int, work: Path) -> dict[str, Any]:
    """The browser session (blocking; run in a thread so the bot's event loop keeps serving)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    downloads = work / "downloads"
    downloads.mkdir()
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False,
             "safebrowsing.enabled": False}  # fmt: skip
    browser = start_chrome(chromium, chromedriver, work, prefs)
    out: dict[str, Any] = {}
    try:
        browser.set_page_load_timeout(15)
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        wait = WebDriverWait(browser, 10)

        # Not signed in: the dashboard sends the browser to the login form.
        browser.get(f"{base}/admin")
        wait.until(ec.presence_of_element_located((By.ID, "token")))
        assert "/admin/login" in browser.current_url
        browser.find_element(By.ID, "token").send_keys("wrong")
        browser.find_element(By.ID, "login").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "login").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg.chart")))
        assert browser.current_url == f"{base}/admin"
        out["overview_text"] = browser.find_element(By.TAG_NAME, "main").text
        out["charts"] = len(browser.find_elements(By.CSS_SELECTOR, "svg.chart"))

        ARTIFACTS.mkdir(exist_ok=True)
        full_page_screenshot(browser, ARTIFACTS / "dashboard-overview.png")

        browser.get(f"{base}/admin/compliance")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "main table")))
        full_page_screenshot(browser, ARTIFACTS / "dashboard-compliance.png")
        browser.back()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg.chart")))

        # Drill down from the branch table to the current dues campaign.
        browser.find_element(By.CSS_SELECTOR, f'td > a[href="/admin/campaigns/{campaign_id}"]').click()
        wait.until(ec.presence_of_element_located((By.ID, "missing")))
        out["missing"] = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#missing li")]
        out["campaign_title"] = browser.find_element(By.TAG_NAME, "h2").text
        full_page_screenshot(browser, ARTIFACTS / "dashboard-campaign.png")

        # Download its ledger and wait for the finished file.
        browser.find_element(By.ID, "export").click()
        deadline = time.monotonic() + 10
        files: list[Path] = []
        while time.monotonic() < deadline:
            files = [p for p in downloads.iterdir() if p.suffix in (".csv", ".xlsx")]
            if files and not any(p.suffix == ".crdownload" for p in downloads.iterdir()):
                break
            time.sleep(0.1)
        assert files, f"no download in {downloads}: {list(downloads.iterdir())}"
        out["download"] = files[0]
    finally:
        browser.quit()
    return out


async def test_dashboard_in_real_chromium(settings_factory: Any, clock: FakeClock, tmp_path: Path) -> None:
    chromium, chromedriver = browser_or_skip()
    running = await start(settings_factory, clock)
    try:
        await seed_dues_history(running)
        await running.say("group:第一党支部", ZHANG_SAN, "党费 45")
        await running.say("group:第一党支部", LI_SI, "党费 15")
        campaign = await current_dues(running, "第一党支部")
        base = str(running.client.make_url("")).rstrip("/")
        assert base.startswith("http://127.0.0.1:")
        result = await asyncio.to_thread(drive, chromium, chromedriver, base, campaign.id, tmp_path)
    finally:
        await stop_bot(running)

    assert "第一党支部" in result["overview_text"] and "第二党支部" in result["overview_text"]
    assert result["charts"] == 3
    assert result["campaign_title"] == "11月党费收缴"
    assert result["missing"] == ["王建国", "李红梅", "王五", "赵六", "陈七", "刘洋"]
    download: Path = result["download"]
    assert download.name == "第一党支部党费收缴登记表（2026年11月）.xlsx"
    sheets = read_xlsx(download.read_bytes())
    assert list(sheets) == ["第一党支部"]
    assert len(member_rows(sheets["第一党支部"])) == 8
    assert paid_in(sheets["第一党支部"]) == {"张三": 45, "李四": 15}
    assert (ARTIFACTS / "dashboard-overview.png").stat().st_size > 10_000
