"""A real browser (Debian's headless chromium, driven by Selenium through chromium-driver) on the viewer and
panel pages. Skipped with a reason where no browser is installed."""
from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from tha4bridge.client import FrameSubscriber
from tha4bridge.pose import INDEX

from .browser_runtime import chromium, wait
from .util import WebServed, http

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no chromium + chromium-driver here "
                                "(apt-get install chromium chromium-driver; .ci/run does)")
SIZE = 512


@pytest.fixture(scope="module")
def browser():
    driver = chromium()  # the same headless Chromium as the browser-runtime tests
    # A 512x512 CSS-pixel viewport at scale 1, and a transparent page background (as OBS composites it).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": SIZE, "height": SIZE, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride", {"color": {"r": 0, "g": 0, "b": 0, "a": 0}})
    yield driver
    driver.quit()


def _wait(driver, script: str):
    return wait(driver, script, timeout=30.0)  # the browser-runtime tests' poll, with these pages' time-out


def test_viewer_screenshot_has_the_frames_alpha_and_colours(served, browser):
    frames = {}
    with FrameSubscriber(served.frames, "demo") as sub:
        browser.get(f"{served.base}/view/demo?fit=none")
        _wait(browser, "return window.tha4.frames > 0")
        for _ in range(10):  # until a screenshot falls between two frames
            end = time.monotonic() + 3
            while time.monotonic() < end and (f := sub.recv(timeout=0.05)) is not None:
                frames[f.seq] = f.pixels
            before = browser.execute_script("return window.tha4.last.seq")
            shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGBA"))
            after = browser.execute_script("return window.tha4.last.seq")
            while (f := sub.recv(timeout=0.2)) is not None:
                frames[f.seq] = f.pixels
            if before == after and before in frames:
                break
        else:
            pytest.fail("no screenshot could be matched to one frame")
    frame = frames[before]
    assert shot.shape == frame.shape
    alpha_s, alpha_f = shot[..., 3].astype(int), frame[..., 3].astype(int)
    assert frame[0, 0, 3] == 0 and (shot[:8, :8, 3] == 0).all() and (shot[-8:, -8:, 3] == 0).all(), "corners"
    assert np.abs(alpha_s - alpha_f).max() <= 2, "alpha differs"
    opaque = alpha_f == 255
    assert opaque.sum() > 10000, "the demo character has an opaque body"
    diff = np.abs(shot[..., :3].astype(int) - frame[..., :3].astype(int))[opaque]
    assert diff.max() <= 3, f"colours differ by up to {diff.max()}"
    # half-transparent edges: straight colours survive (no dark fringe from a premultiplied mix-up)
    edge = (alpha_f >= 128) & (alpha_f < 255)
    if edge.any():
        assert np.abs(shot[..., :3].astype(int) - frame[..., :3].astype(int))[edge].mean() <= 4


def test_panel_slider_changes_the_next_frame(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    mouth = INDEX["mouth_aaa"]
    assert http(served.base, "POST", "/api/pose/demo?hold=0", {"mouth_aaa": 0.0})[0] == 200
    browser.get(f"{served.base}/panel/demo")
    slider = _wait(browser, "return document.getElementById('p-mouth_aaa')")
    assert float(slider.get_attribute("value")) == 0.0  # the panel starts from the pose shown
    with FrameSubscriber(served.frames, "demo") as sub:
        before = None
        while before is None or before.header["pose"][mouth] != 0.0:
            before = sub.recv(timeout=5)
        browser.find_element(By.ID, "p-mouth_aaa").send_keys(Keys.END)  # the keyboard's way to the maximum
        end = time.monotonic() + 20
        while time.monotonic() < end:
            f = sub.recv(timeout=1)
            if f is not None and f.header["pose"][mouth] == 1.0:
                assert f.header["pose_source"] == "control"
                assert not np.array_equal(f.pixels, before.pixels), "the mouth moved"
                break
        else:
            pytest.fail("no frame with mouth_aaa = 1 after moving the slider")
    browser.find_element(By.ID, "release").click()
    # the animator's commands exist in this daemon: one button per expression, plus talk / stop talking
    expressions = http(served.base, "POST", "/api/command", {"cmd": "expressions"})[1]["expressions"]
    buttons = browser.find_elements(By.CSS_SELECTOR, "#expressions button")
    assert [b.text for b in buttons] == ["talk", "stop talking", *expressions]


@pytest.mark.parametrize("query, width", [("scale=0.5", 256), ("fit=contain", SIZE), ("fit=none", SIZE)])
def test_viewer_scaling(served, browser, query, width):
    browser.get(f"{served.base}/view/demo?{query}")
    _wait(browser, "return window.tha4.frames > 0")
    assert browser.execute_script("return document.getElementById('frame').getBoundingClientRect().width") == width


def test_viewer_reconnects_when_the_daemon_restarts(browser, tmp_path):
    first = WebServed(log_dir=tmp_path)
    try:
        browser.get(f"{first.base}/view/demo")
        _wait(browser, "return window.tha4.frames > 0")
    finally:
        first.stop()
    _wait(browser, "return !window.tha4.connected")
    second = WebServed(log_dir=tmp_path, port=first.port)
    try:
        drawn = browser.execute_script("return window.tha4.frames")
        _wait(browser, f"return window.tha4.connected && window.tha4.frames > {drawn}")
    finally:
        second.stop()


def test_panel_fits_a_phone(served, browser):
    phone = {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        browser.get(f"{served.base}/panel/demo")
        _wait(browser, "return document.getElementById('p-head_x')")
        page, slider = browser.execute_script(
            "return [document.documentElement.scrollWidth, "
            "document.getElementById('p-head_x').getBoundingClientRect().width]")
        assert page <= 360, f"the panel scrolls sideways on a phone ({page} px wide)"
        assert slider >= 250, f"a slider is only {slider} px wide on a phone"
    finally:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": SIZE, "height": SIZE, "deviceScaleFactor": 1, "mobile": False})
