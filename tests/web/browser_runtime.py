"""What the browser-runtime test and benchmark share: onnxruntime-web from the npm registry (installed once
into a cache outside the repository), headless Chromium, and the canvas read back as RGBA8."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from tha4bridge.web.ortweb import ENTRY, ORT_WEB_VERSION

# .ci/run installs into the same folder; the library's files never enter the repository.
NPM_CACHE = Path(os.environ.get("THA4BRIDGE_NPM_CACHE", Path.home() / ".cache" / "tha4bridge-tests" / "npm"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SIZE = 512


class Unavailable(RuntimeError):
    """Something this machine lacks (a browser, npm, the registry); str() says what, for a skip reason."""


def ort_web_dist() -> Path:
    """The pinned onnxruntime-web's dist/ folder, installed from the npm registry on first use."""
    dist = NPM_CACHE / "node_modules" / "onnxruntime-web" / "dist"

    def installed() -> bool:
        try:
            meta = json.loads((dist.parent / "package.json").read_text())
        except (OSError, ValueError):
            return False
        return meta.get("version") == ORT_WEB_VERSION and (dist / ENTRY).is_file()

    if installed():
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(f"npm is not installed, so onnxruntime-web@{ORT_WEB_VERSION} cannot be fetched")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(NPM_CACHE), "--no-audit", "--no-fund", "--no-save",
           f"onnxruntime-web@{ORT_WEB_VERSION}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm install onnxruntime-web@{ORT_WEB_VERSION} took over 300 s (no registry?)") from None
    if done.returncode != 0 or not installed():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"npm install onnxruntime-web@{ORT_WEB_VERSION} failed (no registry here?): {last}")
    return dist


def chromium(extra_args=(), performance_log: bool = False):
    """Headless Chromium (Debian's package, driven through chromium-driver), a 512x512 viewport. `extra_args`:
    more switches; `performance_log`: record the DevTools network events (driver.get_log("performance"))."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise Unavailable("selenium is not installed (pip install -e '.[test]')") from None
    if not (CHROMIUM and DRIVER):
        raise Unavailable("no chromium + chromium-driver here (apt-get install chromium chromium-driver; .ci/run does)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={SIZE},{SIZE}", "--hide-scrollbars", *extra_args):
        opts.add_argument(arg)
    if performance_log:
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_script_timeout(60)
    return driver


def wait(driver, script: str, timeout: float = 120.0):
    """Poll `script` until it returns something true; on time-out, say what the page said."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        if driver.execute_script("return window.tha4local && window.tha4local.error"):
            break
        time.sleep(0.1)
    state = driver.execute_script("return window.tha4local && Object.assign({}, window.tha4local, {ms: null})")
    status = driver.execute_script("const el = document.getElementById('status'); return el && el.textContent")
    raise AssertionError(f"timed out waiting for: {script} (page status: {status!r}, state: {state})")


def canvas_rgba8(driver) -> np.ndarray:
    """The page's canvas as uint8 [512, 512, 4], straight alpha (what getImageData returns)."""
    b64 = driver.execute_script("""
        const d = document.getElementById('frame').getContext('2d').getImageData(0, 0, 512, 512).data;
        let s = '';
        for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
        return btoa(s);""")
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(SIZE, SIZE, 4)


def premultiply(rgba8: np.ndarray) -> np.ndarray:
    """Straight RGBA8 → premultiplied RGBA8, rounded as imaging.to_rgba8(premultiplied=True) does."""
    x = rgba8.astype(np.int32)
    rgb = (x[..., :3] * x[..., 3:4] + 127) // 255
    return np.concatenate([rgb, x[..., 3:4]], axis=-1).astype(np.uint8)
