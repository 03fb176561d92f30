"""The admin web console in a real headless Chromium (Debian's chromium and chromedriver,
driven by selenium) against `pos-edge serve`: a store manager logs in, sees only their
store's terminals, blocks a till, and the till's next request is refused. Set
POS_EDGE_SCREENSHOTS=<dir> to keep the pages as PNGs (the README's are made so)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from edge.standin import StandInServer
from tests.conftest import BASE, Gateway, start_gateway
from tests.routes.test_admin import BOSS_KEY, MANAGER_PASSWORD, admin_config
from tests.routes.test_erpnext import assert_problem


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "the console's tests need Debian's chromium and chromium-driver (.ci/run installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--host-resolver-rules=MAP * 127.0.0.1"):  # shop1.<base> reaches the gateway on loopback
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()


@pytest.fixture
def gw(tmp_path: Path, standin_server: StandInServer) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path, admin_config(tmp_path, standin_server.url, "sqlite"))
    yield gateway
    gateway.stop()


def shot(browser: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    """Save the page as a PNG (checked to be one); kept where POS_EDGE_SCREENSHOTS says."""
    path = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(path)) and path.read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("POS_EDGE_SCREENSHOTS")
    if keep:
        shutil.copyfile(path, Path(keep) / f"{name}.png")


def log_in(browser: webdriver.Chrome, name: str, secret: str, key: bool = False) -> None:
    for field, value in (("login-name", name), ("login-secret", secret)):
        element = browser.find_element(By.ID, field)
        element.clear()  # the page keeps the last login name
        element.send_keys(value)
    box = browser.find_element(By.ID, "login-is-key")
    if box.is_selected() != key:
        box.click()
    browser.find_element(By.ID, "login-submit").click()


def test_a_store_manager_blocks_a_stolen_till_from_the_browser(browser: webdriver.Chrome, gw: Gateway,
                                                              tmp_path: Path) -> None:
    mine, theirs = f"main-{uuid.uuid4().hex[:4]}", f"east-{uuid.uuid4().hex[:4]}"
    assert gw.register(mine, branch_id="main", device_name="Front till").status_code == 201
    assert gw.register(theirs, branch_id="east").status_code == 201
    till = gw.tokens[("shop1", mine)]
    wait = WebDriverWait(browser, 15)

    browser.get(f"http://shop1.{BASE}:{gw.port}/admin/")
    wait.until(ec.visibility_of_element_located((By.ID, "login-form")))
    shot(browser, tmp_path, "console-login")
    log_in(browser, "mgr", MANAGER_PASSWORD)
    wait.until(ec.presence_of_element_located((By.ID, f"terminal:{mine}")))
    rows = [r.get_attribute("id") for r in browser.find_elements(By.CSS_SELECTOR, "#terminals tr")]
    assert f"terminal:{mine}" in rows and f"terminal:{theirs}" not in rows  # only their store's terminals
    assert not browser.find_element(By.ID, "stores-view").is_displayed()  # stores: company admins only
    shot(browser, tmp_path, "console-terminals")

    browser.find_element(By.ID, f"block:{mine}").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"[id='terminal:{mine}'] .status-blocked"), "blocked"))
    assert_problem(gw.request("GET", "/erpnext/Item", token=till), 403, "device_blocked")  # the till's next request

    browser.find_element(By.ID, "logout").click()
    wait.until(ec.visibility_of_element_located((By.ID, "login-form")))
    log_in(browser, "boss", BOSS_KEY, key=True)
    wait.until(ec.text_to_be_present_in_element((By.ID, "audit"), mine))  # the company admin reads who blocked it
    audit = browser.find_element(By.ID, "audit").text
    assert "mgr (store_manager)" in audit and "block" in audit
    assert {"main", "east"} <= set(browser.find_element(By.ID, "stores").text.split())
    shot(browser, tmp_path, "console-company-admin")
    browser.find_element(By.ID, f"move:{theirs}").click()  # the company admin moves east's till to main
    prompt = wait.until(ec.alert_is_present())
    prompt.send_keys("main")
    prompt.accept()
    wait.until(ec.visibility_of_element_located((By.ID, "code")))
    assert browser.find_element(By.ID, "code-device").text == theirs and browser.find_element(By.ID, "code-value").text
    wait.until(ec.text_to_be_present_in_element((By.ID, f"terminal:{theirs}"), "main"))
    browser.find_element(By.ID, f"delete:{theirs}").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(ec.invisibility_of_element_located((By.ID, f"terminal:{theirs}")))
    assert gw.cli("devices", "list", "--tenant", "shop1").stdout.count(theirs) == 0
    browser.set_window_size(390, 844)  # a phone
    shot(browser, tmp_path, "console-phone")


def test_the_console_is_served_locked_down(gw: Gateway) -> None:
    page = gw.request("GET", "/admin/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "<script src=\"/admin/static/console.js\"" in page.text and "https://" not in page.text  # nothing remote
    js = gw.request("GET", "/admin/static/console.js")
    assert js.status_code == 200 and "innerHTML" not in js.text and "cookie" not in js.text.lower().replace(
        "no cookie is", "")
    assert_problem(gw.request("GET", "/admin/static/index.html"), 404, "not_found")  # only its two files
    assert_problem(gw.request("GET", "/admin/static/app.py"), 404, "not_found")
    assert gw.request("GET", "/admin", follow_redirects=False).headers["location"] == "/admin/"


