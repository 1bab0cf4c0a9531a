"""`relay --local console` in a real browser: Debian's headless Chromium, driven by Selenium through
the system's chromedriver, against a running local stack. With JavaScript off it finds a lead's
timeline, replays a dead letter with a click, which is then delivered, and shows Clay parked while it
is down, until it is back; with JavaScript on the overview refreshes itself. The screenshots of the
overview and of a lead's timeline are taken here (`make screenshots` keeps them in docs/images)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import E2E_CONFIG, ROOT, RunningStack, start_stack

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="no chromium and chromedriver on this machine: `make browser` installs Debian's chromium and "
        "chromium-driver (it needs root and apt-get)",
    ),
]
FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --window-size=1280,900"
).split()
DEADLINE = 60.0
HOT_LEAD = {"email": "grace.hopper@example.com", "first_name": "Grace", "company_name": "Compilers", "icp_score": "95"}


# Rows parked while Clay is down wait for it (no dead letter at the e2e default's 5 s horizon).
CONSOLE_CONFIG = copy.deepcopy(E2E_CONFIG)
CONSOLE_CONFIG["delivery"] = {**E2E_CONFIG["delivery"], "retry_horizon_seconds": 300}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    yield from start_stack(tmp_path_factory.mktemp("console-stack"), config=CONSOLE_CONFIG, workers=1)


@pytest.fixture(scope="module")
def console_url(stack) -> str:
    """`relay --local console --port 0`, as a person starts it: the address it printed."""
    command = [sys.executable, "-m", "relay_cli", "--local", "--state-file", str(stack.state_file)]
    command += ["console", "--port", "0", "--refresh", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # nosec B603
    try:
        line = process.stdout.readline()
        assert line.startswith("console: http://127.0.0.1:"), line
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=15)


def chromium(javascript: bool):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='console-chromium-')}"]:
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(DEADLINE)
    return driver


@pytest.fixture(scope="module")
def browser(console_url):
    """Chromium with JavaScript off, signed in with the printed address."""
    driver = chromium(javascript=False)
    driver.get(console_url)
    yield driver
    driver.quit()


def wait_until(predicate, what: str, timeout: float = DEADLINE):
    """Polls `predicate` until it is truthy; a page that reloads under it (the overview refreshing)
    is asked again, not taken for an answer."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def keep_screenshot(driver, name: str, folder: Path) -> Path:
    """The whole page as a PNG in `folder`, and in $CONSOLE_SCREENSHOTS when set (make screenshots).
    The page's pending timers (the overview's next refresh) are cleared first, so it holds still."""
    height = driver.execute_script(
        "let id = setTimeout(() => {}, 0); while (id--) { clearTimeout(id); }"
        "return document.documentElement.scrollHeight"
    )
    driver.set_window_size(1280, min(4000, max(700, height)))
    path = folder / name
    driver.save_screenshot(str(path))
    if target := os.environ.get("CONSOLE_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def test_with_javascript_off_the_lead_search_finds_a_leads_timeline(stack, browser, console_url):
    from selenium.webdriver.common.by import By

    answer = stack.post_directus(
        {"event": "leads.items.create", "collection": "leads", "key": 31, "payload": {"email": "ada@example.com"}}
    )
    assert answer.status_code == 202
    wait_until(lambda: stack.deliveries(destination="clay", body__email="ada@example.com"), "the Clay row")
    browser.get(console_url.split("?")[0] + "leads")
    field = browser.find_element(By.ID, "q")
    field.send_keys("ada@example.com")
    field.submit()
    wait_until(lambda: browser.find_elements(By.ID, "lead"), "the lead's timeline")
    stages = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".timeline li b")]
    assert stages[:2] == ["directus.accepted", "clay.delivered"]
    assert browser.find_element(By.ID, "lead").text == "a***@example.com"


def test_with_javascript_off_a_dead_letter_replayed_with_a_click_is_delivered(stack, browser, console_url):
    from selenium.webdriver.common.by import By

    stack.deliveries()  # the stack answers
    fault = {"destination": "slack", "status": 400, "times": 1}
    assert stack_post(stack, "/_local/faults", fault) == 201
    assert stack.post_lead(HOT_LEAD).status_code == 202
    wait_until(lambda: stack.deliveries(destination="slack", status=400), "Slack's refusal")

    def slack_letter():
        browser.get(console_url.split("?")[0] + "dead-letters")
        return [b for b in browser.find_elements(By.CSS_SELECTOR, "button[data-letter]") if _is_slack(b)]

    [button] = wait_until(slack_letter, "the Slack dead letter on the page")
    button.click()
    result = wait_until(lambda: browser.find_elements(By.ID, "replay-result"), "the replay's result")
    assert result[0].text.startswith("Replayed 1 (slack 1)")
    wait_until(lambda: stack.deliveries(destination="slack", status=200), "the replayed Slack message delivered")


def _is_slack(button) -> bool:
    from selenium.webdriver.common.by import By

    article = button.find_element(By.XPATH, "./ancestor::article")
    return article.find_element(By.TAG_NAME, "h2").text.startswith("slack")


def stack_post(stack: RunningStack, path: str, body: dict) -> int:
    return requests.post(stack.gateway + path, json=body, timeout=10).status_code


def test_with_javascript_on_the_overview_refreshes_itself_and_shows_the_day(stack, console_url, tmp_path):
    from selenium.webdriver.common.by import By

    driver = chromium(javascript=True)
    try:
        driver.get(console_url)
        first = wait_until(lambda: driver.find_element(By.CSS_SELECTOR, "p.meta").text, "the overview")
        assert "Overview" in driver.title
        wait_until(lambda: driver.find_element(By.CSS_SELECTOR, "p.meta").text != first, "the overview's refresh")
        # The day's deliveries reach the page (the local stack's metrics go to its CloudWatch).
        wait_until(
            lambda: (
                "delivered in the last 60 minutes" in driver.page_source
                and driver.find_elements(By.XPATH, "//section[@id='activity']//tr[td[1]='slack']/td[3][.!='0']")
            ),
            "Slack's deliveries on the overview",
        )
        assert driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        keep_screenshot(driver, "console-overview.png", tmp_path)
        driver.get(console_url.split("?")[0] + "leads?q=grace.hopper%40example.com")
        wait_until(lambda: driver.find_elements(By.ID, "lead"), "Grace's timeline")
        keep_screenshot(driver, "console-lead.png", tmp_path)
    finally:
        driver.quit()


def test_with_javascript_off_the_overview_shows_clay_parked_while_it_is_down_until_it_is_back(
    stack, browser, console_url
):
    from selenium.webdriver.common.by import By

    overview = console_url.split("?")[0]
    assert stack_post(stack, "/_local/faults", {"destination": "clay", "status": 503, "times": 100_000}) == 201
    emails = [f"parked-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(3)]
    for n, email in enumerate(emails):
        create = {"event": "leads.items.create", "collection": "leads", "key": 900 + n, "payload": {"email": email}}
        assert stack.post_directus(create).status_code == 202

    def clay_row() -> list[str]:
        browser.get(overview)
        rows = browser.find_elements(By.XPATH, "//section[@id='parked']//tr[td[1]='clay:default']")
        cells = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")] if rows else []
        return cells if cells and cells[1].startswith("down since") and cells[2] == "3" else []

    _, state, _, error = wait_until(clay_row, "Clay's lane down with its 3 rows parked on the overview")
    assert "HTTP 503" in error and re.fullmatch(r"down since \S+ \(\d+ (s|min)\)", state), state

    requests.delete(stack.gateway + "/_local/faults", timeout=10)
    for email in emails:
        wait_until(lambda e=email: stack.deliveries(destination="clay", status=200, body__email=e), f"{email}'s row")

    def nothing_parked() -> bool:
        browser.get(overview)
        return "None: no destination is down." in browser.find_element(By.ID, "parked").text

    wait_until(nothing_parked, "the overview to say nothing is parked any more")
