"""Web feed benchmark: frames/s and latency (render done → drawn in a real page) for raw RGBA, PNG and WebP,
with 1 and 4 viewers, and what the viewers cost the render loop (fps with and without them, same run).

    python benchmarks/bench_web.py                      # demo character, ~1 min; needs chromium + chromedriver
    python benchmarks/bench_web.py --seconds 5 --student ../shared/fixtures/tha4/students/lambda_00

A real daemon subprocess with --http; a thread changes the pose every 20 ms (as a tracker would), and a
ZeroMQ subscriber keeps the render loop at its full rate in the baseline too. Viewers are tabs of one
headless Debian chromium; each page records, per frame drawn, the header's t_render_end and its own clock
(performance.timeOrigin + performance.now(), the same wall clock on this machine).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ run from the checkout
from benchmarks.bench_transport import free_port, start_daemon, stop_daemon  # noqa: E402
from tha4bridge.client import Control, FrameSubscriber  # noqa: E402


def pusher(control: str, stop: threading.Event) -> None:
    ctl, i = Control(control, timeout=5.0), 0
    while not stop.wait(0.02):
        i += 1
        ctl.request("set_pose", stream="demo", pose={"mouth_aaa": (i % 10) / 10, "head_x": (i % 7) / 7 - 0.5},
                    hold=0)
    ctl.close()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=512,512", "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))


def daemon_frames(ctl: Control) -> int:
    return ctl.request("stats")["streams"]["demo"]["frames"]


def measure(driver, ctl: Control, url: str | None, viewers: int, seconds: float) -> dict:
    """Open `viewers` tabs on `url`, then count frames drawn and the daemon's frames for `seconds`."""
    handles = []
    for _ in range(viewers):
        driver.switch_to.new_window("tab")
        driver.get(url)
        handles.append(driver.current_window_handle)
    for h in handles:
        driver.switch_to.window(h)
        end = time.monotonic() + 20
        while not driver.execute_script("return window.tha4 && window.tha4.frames > 0"):
            if time.monotonic() > end:
                raise RuntimeError(f"{url}: no frame drawn")
            time.sleep(0.05)
    time.sleep(0.5)
    for h in handles:
        driver.switch_to.window(h)
        driver.execute_script("window.tha4.drawn = []")
    f0, t0 = daemon_frames(ctl), time.monotonic()
    time.sleep(seconds)
    f1, t1 = daemon_frames(ctl), time.monotonic()
    drawn = []
    for h in handles:
        driver.switch_to.window(h)
        drawn.append(driver.execute_script("return window.tha4.drawn"))
        driver.close()
    driver.switch_to.window(driver.window_handles[0])
    latency = [(d[3] - d[1]) * 1000 for rows in drawn for d in rows]
    return {"render_fps": (f1 - f0) / (t1 - t0),
            "page_fps": np.mean([len(rows) for rows in drawn]) / (t1 - t0) if drawn else 0.0,
            "p50": float(np.percentile(latency, 50)) if latency else float("nan"),
            "p99": float(np.percentile(latency, 99)) if latency else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="demo")
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        sys.exit("bench_web needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    port = free_port()
    proc, ctl, frames, hello = start_daemon(args.student, "--http", str(port))
    stop = threading.Event()
    threading.Thread(target=pusher, args=(hello["control"], stop), daemon=True).start()
    driver = browser()
    try:
        with FrameSubscriber(frames, "demo"):  # the baseline's render loop runs at full rate too
            time.sleep(1.0)
            base = measure(driver, ctl, None, 0, args.seconds)
            rows = []
            for fmt in ("rgba", "webp", "png"):
                for n in (1, 4):
                    url = f"http://127.0.0.1:{port}/view/demo?fit=none&format={fmt}"
                    rows.append((fmt, n, measure(driver, ctl, url, n, args.seconds)))
            again = measure(driver, ctl, None, 0, args.seconds)
    finally:
        stop.set()
        driver.quit()
        stop_daemon(proc, ctl)
    base_fps = (base["render_fps"] + again["render_fps"]) / 2
    print(f"render loop without viewers: {base['render_fps']:.1f} fps before, {again['render_fps']:.1f} after "
          f"({args.student}, {args.seconds:.0f} s each)")
    print(f"{'format':7} {'viewers':>7} {'render fps':>10} {'vs none':>8} {'page fps':>9} {'latency p50':>12} {'p99':>8}")
    for fmt, n, r in rows:
        print(f"{fmt:7} {n:7d} {r['render_fps']:10.1f} {r['render_fps'] / base_fps:7.2f}x {r['page_fps']:9.1f} "
              f"{r['p50']:9.1f} ms {r['p99']:5.1f} ms")


if __name__ == "__main__":
    main()
