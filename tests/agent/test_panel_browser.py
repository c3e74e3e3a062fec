"""The panel in a real browser (headless Chromium driven by Selenium) against a running agent and
panel: log in, live values change, a trend, acknowledge an alarm and find it in the audit log,
open a capture, sign off a maintenance plan, an action refused without a login.

Needs Debian's chromium and chromium-driver (make sysdeps-browser) and selenium (dev extra).
PANEL_SCREENSHOTS=DIR also saves every page at tablet (1280x800) and desktop (1920x1080) size.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from panel_plant import PASSWORD, PanelPlant

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("chromedriver"), reason="chromium-driver not installed (make sysdeps-browser)"),
]
webdriver = pytest.importorskip("selenium.webdriver")
By = pytest.importorskip("selenium.webdriver.common.by").By
TABLET, DESKTOP = (1280, 800), (1920, 1080)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    o = Options()
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        o.add_argument(arg)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=o)
    d.set_window_size(*TABLET)
    try:
        yield d
    finally:
        d.quit()


def wait(what: str, pred: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = pred()
        except Exception:  # the page is re-rendering: the element went away; ask again
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def shoot(d: Any, name: str) -> None:
    where = os.environ.get("PANEL_SCREENSHOTS")
    if not where:
        return
    Path(where).mkdir(parents=True, exist_ok=True)
    time.sleep(0.5)
    for (w, h), tag in ((TABLET, "tablet"), (DESKTOP, "desktop")):
        metrics = {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False}
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(0.8)
        d.save_screenshot(str(Path(where) / f"{name}-{tag}.png"))
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def text(d: Any) -> str:
    return str(d.find_element(By.ID, "main").text)


def test_a_technician_in_a_browser(tmp_path: Path, broker: Any, browser: Any) -> None:
    plant = PanelPlant(tmp_path, broker)
    d = browser
    try:
        d.get(plant.url + "/#/")
        wait("the overview", lambda: "thermo-a" in text(d))
        # an action without a login is refused: the page asks for one
        d.get(plant.url + "/#/a/line1/alarms")
        try:
            wait("the bearing alarm", lambda: "bearing_nde" in text(d), 60)
        except AssertionError:
            raise AssertionError(text(d) + d.get_log("browser").__repr__()) from None
        wait("the alarm list", lambda: d.find_elements(By.CSS_SELECTOR, "[data-ack]"))
        refused = d.execute_async_script(
            "const done = arguments[0]; fetch('/api/agent/line1/ack', {method: 'POST', body: '{}',"
            " headers: {'Content-Type': 'application/json'}}).then(r => done(r.status));"
        )
        assert refused == 401
        d.find_elements(By.CSS_SELECTOR, "[data-ack]")[0].click()
        wait("the login dialog", lambda: d.find_element(By.ID, "login").get_attribute("open") is not None)
        shoot(d, "login")
        d.find_element(By.NAME, "user").send_keys("tech")
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait("logged in", lambda: "tech: log out" in d.find_element(By.ID, "who").text)
        # overview
        d.get(plant.url + "/#/")
        wait("the overview", lambda: "thermo-a" in text(d))
        card, main = d.find_element(By.CSS_SELECTOR, ".grid.agents .card"), d.find_element(By.ID, "main")
        assert card.size["width"] > 0.9 * main.size["width"], "one agent's card uses the width"
        shoot(d, "overview")
        # live values change without a reload, and a trend is drawn
        d.get(plant.url + "/#/a/line1/i/thermo-a")
        cell = "v-motor_de.temp_c"
        try:
            first = wait("a live value", lambda: d.find_element(By.ID, cell).text, 60)
        except AssertionError:
            raise AssertionError(text(d) + repr(d.get_log("browser"))) from None
        wait("the value to change", lambda: d.find_element(By.ID, cell).text != first, 30)
        d.find_element(By.CSS_SELECTOR, "tr[data-key='bearing_nde.temp_c']").click()
        note = wait("a trend", lambda: d.find_element(By.ID, "trend-note").text)
        assert "point" in note and not note.startswith("0 points"), note
        shoot(d, "instance")
        # acknowledge the alarm, then find it in the audit log
        d.get(plant.url + "/#/a/line1/alarms")
        wait("the alarm list", lambda: "bearing_nde" in text(d))
        shoot(d, "alarms")

        # the list is redrawn on every live update (the test plant's plan falls due every 4 s): find the
        # button and click it in one go, again if a redraw took it away in between
        def ack_bearing() -> bool:
            buttons = d.find_elements(By.CSS_SELECTOR, "[data-ack]")
            mine = [b for b in buttons if "bearing_nde" in (b.get_attribute("data-ack") or "")]
            if mine:
                mine[0].click()
            return bool(mine)

        try:
            wait("the bearing alarm's Acknowledge", ack_bearing)
        except AssertionError:
            raise AssertionError(text(d) + repr(d.get_log("browser"))) from None
        wait("the ack dialog", lambda: d.find_element(By.ID, "ask").get_attribute("open") is not None)
        d.find_element(By.CSS_SELECTOR, "#ask-fields textarea").send_keys("checking the grease")
        d.find_element(By.ID, "ask-ok").click()
        wait("acknowledged", lambda: "active ack" in text(d))
        d.get(plant.url + "/#/a/line1/audit")
        wait("the ack in the audit log", lambda: "checking the grease" in text(d) and "tech" in text(d))
        shoot(d, "audit")
        # open a capture (saved on the alarm)
        d.get(plant.url + "/#/a/line1/captures")
        link = wait("a capture", lambda: d.find_elements(By.CSS_SELECTOR, "#main a[href*='/capture/']"), 60)
        shoot(d, "captures")
        link[0].click()
        drawn = "return document.getElementById('cap-img').naturalWidth"
        wait("the capture drawn", lambda: d.execute_script(drawn) > 0, 120)
        shoot(d, "capture")
        # sign off a maintenance plan
        d.get(plant.url + "/#/a/line1/maintenance")
        button = wait("a plan", lambda: d.find_elements(By.CSS_SELECTOR, "[data-plan='regrease']"))
        due = wait(
            "its due date", lambda: "CET" in text(d) and any(w in text(d) for w in ("overdue by", "due now", " in "))
        )
        assert due, text(d)
        shoot(d, "maintenance")
        button[0].click()
        wait("the sign-off form", lambda: d.find_element(By.ID, "ask").get_attribute("open") is not None)
        d.find_element(By.CSS_SELECTOR, "#ask-fields textarea").send_keys("regreased DE and NDE")
        d.find_element(By.ID, "ask-ok").click()
        wait("signed off", lambda: "regreased DE and NDE" in text(d))
        # calibrate a channel (one point: an offset), then find its record when the page opens again
        d.get(plant.url + "/#/a/line1/calibration")
        try:
            wait("the calibration form", lambda: "Record of" in d.find_element(By.ID, "cal-title").text)
        except AssertionError:
            raise AssertionError(text(d) + repr(d.get_log("browser"))) from None
        channel = d.find_element(By.ID, "cal-ch")
        channel.clear()
        channel.send_keys("motor_de\t")
        wait("motor_de's record", lambda: "motor_de" in d.find_element(By.ID, "cal-title").text)
        d.find_element(By.ID, "cal-ref").send_keys("50")
        d.find_element(By.ID, "cal-point").click()
        wait("the point taken", lambda: "Points taken" in d.find_element(By.ID, "cal-out").text)
        d.find_element(By.ID, "cal-note").send_keys("dry block 4711")
        d.find_element(By.ID, "cal-apply").click()
        wait("applied", lambda: "As found" in d.find_element(By.ID, "cal-out").text)
        d.get(plant.url + "/#/")
        wait("the overview", lambda: "thermo-a" in text(d))
        d.get(plant.url + "/#/a/line1/calibration")
        wait("the calibration form", lambda: "Pick a channel" not in d.find_element(By.ID, "cal-out").text)
        channel = d.find_element(By.ID, "cal-ch")
        channel.clear()
        channel.send_keys("motor_de\t")
        record = wait("the record shown again", lambda: "dry block 4711" in d.find_element(By.ID, "cal-out").text)
        assert record and "by tech" in d.find_element(By.ID, "cal-out").text
        assert d.find_elements(By.CSS_SELECTOR, "tr[data-cal-ch='motor_de']"), "listed among the calibrated channels"
        shoot(d, "calibration")
        d.get(plant.url + "/#/a/line1/reports")
        wait("the reports page", lambda: "Shift reports" in text(d))
        shoot(d, "reports")
    finally:
        plant.close()
