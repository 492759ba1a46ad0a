"""The issue-2 walkthrough as a visitor does it: the local chat page in a real headless Chromium.

A member opens /chat, sees this month's dues announced in the branch group, replies `党费 50`, finds the
amount confirmed in the 1:1 chat (never in the group); the secretary sends `/stats` and sees 1 of 8 paid
and who is missing. Skipped without Chromium unless CI is set (then it fails), like the dashboard test.
"""

from __future__ import annotations

import asyncio
import time
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
    out: dict[str, Any] = {}

    from selenium.common.exceptions import StaleElementReferenceException

    def retry(action: Any) -> Any:
        # The page re-renders its chat list every poll: an element found a moment ago may be gone.
        for _ in range(20):
            try:
                return action()
            except StaleElementReferenceException:
                time.sleep(0.1)
        return action()

    def bubbles() -> list[str]:
        return list(retry(lambda: [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#log li .bubble")]))

    def wait_for(text: str) -> None:
        wait.until(lambda _: any(text in b for b in bubbles()))

    def be(name: str) -> None:
        select = Select(browser.find_element(By.ID, "who"))
        option = next(o for o in select.options if o.text.startswith(name))
        select.select_by_value(option.get_attribute("value"))
        time.sleep(0.3)  # the page re-renders its chat list

    def chat_items() -> list[Any]:
        return list(browser.find_elements(By.CSS_SELECTOR, "#convs li"))

    def open_chat(title: str) -> None:
        wait.until(lambda _: retry(lambda: any(li.text.startswith(title) for li in chat_items())))
        retry(lambda: next(li for li in chat_items() if li.text.startswith(title)).click())

    def send(text: str) -> None:
        box = browser.find_element(By.ID, "text")
        box.send_keys(text)
        browser.find_element(By.CSS_SELECTOR, "#send button").click()

    try:
        browser.set_page_load_timeout(15)
        browser.get(f"{base}/chat")
        wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#who option")) >= 12)
        be("张三")
        open_chat("第一党支部群")
        wait_for("11月党费收缴")  # the announcement is there without reloading
        send("党费 50")
        wait_for("详情已私信")
        out["group_after_member"] = bubbles()
        open_chat("与党建助手单聊")
        wait_for("50.00元")
        out["member_dm"] = bubbles()
        be("王建国")
        open_chat("第一党支部群")
        send("/stats")
        wait_for("已填报 1/8")
        out["group_after_stats"] = bubbles()
        ARTIFACTS.mkdir(exist_ok=True)
        full_page_screenshot(browser, ARTIFACTS / "chat-walkthrough.png")
    finally:
        browser.quit()
    return out


async def test_local_chat_walkthrough_in_chromium(settings_factory: Any, clock: FakeClock, tmp_path: Path) -> None:
    chromium, chromedriver = browser_or_skip()
    async with served_chat(settings_factory, clock) as client:
        base = str(client.make_url("")).rstrip("/")
        result = await asyncio.to_thread(drive, chromium, chromedriver, base, tmp_path)
    assert any("已登记" in b and "详情已私信" in b for b in result["group_after_member"])
    assert any("50.00元" in b for b in result["member_dm"])
    stats = next(b for b in result["group_after_stats"] if "已填报 1/8" in b)
    assert "未填报" in stats and "王建国" in stats and "张三" not in stats.split("未填报")[1]
    # Privacy: no amount in the group, even after the member's answer and the secretary's /stats.
    assert not any("50.00" in b or "元" in b for b in result["group_after_stats"] if "党费 50" not in b)
