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
from benchmarks.bench_transport import start_daemon  # noqa: E402
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


def python_viewers(ctl: Control, url: str, viewers: int, seconds: float) -> dict:
    """The server's own cost without a browser's CPU: `viewers` aiohttp clients reading `url` for `seconds`."""
    import asyncio

    import aiohttp

    async def run():
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(url, max_msg_size=0) for _ in range(viewers)]
            for ws in sockets:
                await ws.receive()
            counts = [0] * viewers
            end = time.monotonic() + seconds

            async def read(i, ws):
                while time.monotonic() < end:
                    try:
                        await asyncio.wait_for(ws.receive(), max(end - time.monotonic(), 0.01))
                        counts[i] += 1
                    except asyncio.TimeoutError:
                        return

            f0, t0 = daemon_frames(ctl), time.monotonic()
            await asyncio.gather(*(read(i, ws) for i, ws in enumerate(sockets)))
            f1, t1 = daemon_frames(ctl), time.monotonic()
            for ws in sockets:
                await ws.close()
            return {"render_fps": (f1 - f0) / (t1 - t0), "client_fps": sum(counts) / viewers / (t1 - t0)}

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="demo")
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        sys.exit("bench_web needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    d = start_daemon(args.student, http=True)  # its web side on an OS-chosen port, read from its banner
    ctl, frames, port = d.ctl, d.frames, d.port
    stop = threading.Event()
    threading.Thread(target=pusher, args=(d.control, stop), daemon=True).start()
    driver = browser()
    try:
        with FrameSubscriber(frames, "demo"):  # the baseline's render loop runs at full rate too
            measure(driver, ctl, None, 0, 2.0)  # warm-up, discarded
            # Each row beside its own baseline (no viewers, measured just before): this machine's load drifts.
            rows = []
            for fmt in ("rgba", "webp", "png"):
                for n in (1, 4):
                    url = f"http://127.0.0.1:{port}/view/demo?fit=none&format={fmt}"
                    base = measure(driver, ctl, None, 0, args.seconds)["render_fps"]
                    rows.append((fmt, n, base, measure(driver, ctl, url, n, args.seconds)))
            py = []
            for fmt in ("rgba", "webp"):
                for n in (1, 4):
                    url = f"ws://127.0.0.1:{port}/ws/frames/demo?format={fmt}"
                    base = measure(driver, ctl, None, 0, args.seconds)["render_fps"]
                    py.append((fmt, n, base, python_viewers(ctl, url, n, args.seconds)))
    finally:
        stop.set()
        driver.quit()
        d.stop()
    print(f"{args.student}, {args.seconds:.0f} s per measurement; 'none' = render fps without viewers just before")
    print("chromium tabs (the browser shares this machine's cores with the renderer):")
    print(f"{'format':7} {'viewers':>7} {'none':>6} {'render fps':>10} {'ratio':>6} {'page fps':>9} "
          f"{'latency p50':>12} {'p99':>8}")
    for fmt, n, base, r in rows:
        print(f"{fmt:7} {n:7d} {base:6.1f} {r['render_fps']:10.1f} {r['render_fps'] / base:5.2f}x "
              f"{r['page_fps']:9.1f} {r['p50']:9.1f} ms {r['p99']:5.1f} ms")
    print("Python WebSocket readers (the server's own cost, no browser):")
    print(f"{'format':7} {'viewers':>7} {'none':>6} {'render fps':>10} {'ratio':>6} {'client fps':>10}")
    for fmt, n, base, r in py:
        print(f"{fmt:7} {n:7d} {base:6.1f} {r['render_fps']:10.1f} {r['render_fps'] / base:5.2f}x "
              f"{r['client_fps']:10.1f}")


if __name__ == "__main__":
    main()
