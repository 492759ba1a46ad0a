"""The local chat page shows the /stats chart inline: headless Chromium, the admin sends 统计 in the 1:1 chat
and the picture is loaded under the text. Skipped without Chromium unless CI is set, like the other browser tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from tests.test_dashboard_browser import (
    ARTIFACTS,
    browser_or_skip,
    full_page_screenshot,
    served_chat,
    start_chrome,
)

pytestmark = pytest.mark.slow


def drive(chromium: str, chromedriver: str, base: str, work: Path) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser = start_chrome(chromium, chromedriver, work)
    wait = WebDriverWait(browser, 15)
    loaded = "return [...document.querySelectorAll('#log img.chart')].map(i => [i.naturalWidth, i.closest('.bubble').innerText])"
    try:
        browser.set_page_load_timeout(15)
        browser.get(f"{base}/chat")
        wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#who option")) >= 12)
        select = Select(browser.find_element(By.ID, "who"))
        select.select_by_value(next(o.get_attribute("value") for o in select.options if o.text.startswith("郑华")))
        wait.until(lambda _: any(li.text.startswith("与党建助手单聊") for li in browser.find_elements(By.CSS_SELECTOR, "#convs li")))
        next(li for li in browser.find_elements(By.CSS_SELECTOR, "#convs li") if li.text.startswith("与党建助手单聊")).click()
        browser.find_element(By.ID, "text").send_keys("统计")
        browser.find_element(By.CSS_SELECTOR, "#send button").click()
        wait.until(lambda _: any(width > 0 for width, _ in browser.execute_script(loaded)))
        bubbles = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#log li .bubble")]
        ARTIFACTS.mkdir(exist_ok=True)
        full_page_screenshot(browser, ARTIFACTS / "chat-stats-chart.png")
        return {"images": browser.execute_script(loaded), "bubbles": bubbles}
    finally:
        browser.quit()


async def test_chat_page_shows_the_stats_chart(settings_factory: Any, clock: FakeClock, tmp_path: Path) -> None:
    chromium, chromedriver = browser_or_skip()
    async with served_chat(settings_factory, clock) as client:
        pay = {"conversation_id": "group:第一党支部", "sender_id": "13800000003", "text": "党费 50"}  # 张三
        assert (await client.post("/api/local/messages", json=pay)).status == 200
        base = str(client.make_url("")).rstrip("/")
        result = await asyncio.to_thread(drive, chromium, chromedriver, base, tmp_path)
    [(width, caption)] = result["images"]
    assert width == 720 and caption.strip() == ""  # the picture alone, the "[图片] name" mark hidden
    assert any("附图：各支部完成率" in b for b in result["bubbles"])
