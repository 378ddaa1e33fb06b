"""The browser runtime (/local/<stream>): the fixture student exported by the daemon, run by onnxruntime-web
(WASM) in headless Chromium, driven by poses over /ws/poses/; its canvas against our exact render. And the
routes around it: the model, the local onnxruntime-web folder, the pose WebSocket's messages.

onnxruntime-web comes from the npm registry into a cache outside the repository (browser_runtime.NPM_CACHE);
skipped with the reason where npm, the registry, a browser or the fixtures are missing.
"""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import numpy as np
import pytest
import torch

from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.imaging import psnr, to_rgba8
from tha4bridge.pose import INDEX
from tha4bridge.web.ortweb import ORT_WEB_VERSION, ort_web_dir, resolve_inside

from .browser_runtime import Unavailable, canvas_rgba8, chromium, ort_web_dist, premultiply, wait
from .util import WebServed, http

pytest.importorskip("onnx", reason="the model route exports with onnx (pip install -e '.[onnx]')")
STREAM = "lambda_00"
POSE_A = {"head_x": 0.4, "neck_z": -0.3, "mouth_aaa": 0.7, "eye_wink_left": 0.6, "iris_rotation_x": 0.3}
POSE_B = {"head_y": -0.6, "mouth_ooo": 0.9, "eyebrow_troubled_left": 0.8}


@pytest.fixture(scope="module")
def ort_web():
    try:
        return ort_web_dist()
    except Unavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def daemon(ort_web, tmp_path_factory):
    if not LAMBDA_00.is_dir():
        pytest.skip(needs_fixtures.kwargs["reason"])
    # No idle re-renders and no breathing: the pose changes only when the test sets it, so the daemon's CPU
    # renders (seconds each on a small machine) do not compete with the page's WASM runs.
    s = WebServed("--student", "demo", "--student", f"{STREAM}={LAMBDA_00}", "--ort-web", str(ort_web),
                  "--idle-fps", "0", "--breathing-period", "0", log_dir=tmp_path_factory.mktemp("local"))
    s.ctl.set_pose(STREAM, POSE_A, hold=0)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def page(daemon):
    try:
        driver = chromium()
    except Unavailable as e:
        pytest.skip(str(e))
    _on_local_page(daemon, driver)
    yield driver
    driver.quit()


def _on_local_page(daemon, driver) -> None:
    """The module's browser on this daemon's WASM page: other tests take it elsewhere (another backend, the
    index, another daemon), in whatever order the tests run."""
    url = f"{daemon.base}/local/{STREAM}?ep=wasm"
    if driver.current_url != url:
        driver.get(url)


def _log_tail(daemon, lines: int = 15) -> str:
    return "\n".join(daemon.log.read_text().splitlines()[-lines:])


def _shows(daemon, driver, pose: dict, timeout: float = 180.0) -> list[float]:
    """Wait until the page has drawn a frame of `pose` (the daemon's full 45 numbers); returns them."""
    _on_local_page(daemon, driver)
    checks = " && ".join(f"Math.abs(p[{INDEX[k]}] - {v}) < 1e-6" for k, v in pose.items())
    try:  # (window.tha4local is made by the page's module script: not there for the first moment of a load)
        return wait(driver, f"const p = window.tha4local && window.tha4local.lastPose; return p && {checks} && p",
                    timeout)
    except AssertionError as e:  # the page's side is in the message; the daemon's is in its log
        raise AssertionError(f"{e}\ndaemon log:\n{_log_tail(daemon)}") from None


@pytest.mark.slow  # Chromium runs the student in WASM: seconds a frame
def test_wasm_canvas_matches_the_exact_render(daemon, page):
    from tha4bridge.student import StudentPoser

    shown = _shows(daemon, page, POSE_A)
    state = page.execute_script("return window.tha4local")
    assert state["backend"] == "wasm" and state["ready"]
    assert state["threads"] >= 1
    canvas = canvas_rgba8(page)
    exact = StudentPoser(LAMBDA_00, device="cpu", mode="exact").render(torch.tensor(shown))
    ours = to_rgba8(exact)[0].numpy()
    # Compared premultiplied: a 2D canvas stores premultiplied pixels, so getImageData gives back straight
    # colours that are coarse where alpha is small (a colour under alpha 3 survives in 3 levels). What the
    # canvas shows, colour × alpha, is kept exactly; that is what both sides are reduced to.
    a, b = premultiply(canvas), premultiply(ours)
    db = psnr(a.astype(np.float64) / 127.5 - 1.0, b.astype(np.float64) / 127.5 - 1.0)
    print(f"browser WASM vs torch exact: {db:.1f} dB (premultiplied RGBA8), run {state['ms'][-1]:.0f} ms")
    assert (canvas[..., 3] > 0).mean() > 0.05, "the character is drawn"
    assert db >= 50.0, f"{db:.1f} dB"


@pytest.mark.slow  # Chromium runs the student in WASM: seconds a frame
def test_a_pose_sent_to_the_daemon_changes_the_canvas(daemon, page):
    _shows(daemon, page, POSE_A)
    before, frames = canvas_rgba8(page), page.execute_script("return window.tha4local.frames")
    daemon.ctl.set_pose(STREAM, POSE_B, hold=0, replace=True)
    _shows(daemon, page, POSE_B)
    state = page.execute_script("return window.tha4local")
    assert state["connected"] and state["frames"] == frames + 1 and state["lastSeq"] is not None
    after = canvas_rgba8(page)
    changed = (np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 8).mean()
    assert changed > 0.005, f"only {changed:.2%} of the pixels changed"
    daemon.ctl.set_pose(STREAM, POSE_A, hold=0, replace=True)  # as the module started


def test_pose_websocket_sends_the_current_pose_then_each_new_one(daemon):
    async def run():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{daemon.port}/ws/poses/demo") as ws:
                first = json.loads((await asyncio.wait_for(ws.receive(), 60)).data)
                daemon.ctl.set_pose("demo", {"mouth_aaa": 0.25}, hold=0)
                end = time.monotonic() + 60  # the render thread may be busy with lambda_00 (seconds a frame)
                while time.monotonic() < end:
                    msg = await asyncio.wait_for(ws.receive(), max(end - time.monotonic(), 0.1))
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg  # JSON text, never pixels
                    m = json.loads(msg.data)
                    if abs(m["pose"][INDEX["mouth_aaa"]] - 0.25) < 1e-6:
                        return first, m
                raise asyncio.TimeoutError

    try:
        first, m = asyncio.run(run())
    except asyncio.TimeoutError:
        raise AssertionError(f"no pose message in time; daemon log:\n{_log_tail(daemon)}") from None
    assert set(first) == {"stream", "seq", "t_pose", "t_render_end", "t_published", "pose_source", "pose"}
    assert first["stream"] == "demo" and len(first["pose"]) == 45
    assert m["pose_source"] == "control" and m["seq"] > (first["seq"] or 0)
    daemon.ctl.request("release", stream="demo")


def test_model_route(daemon):
    status, reply = http(daemon.base, "GET", "/models/demo.onnx")
    assert status == 404 and reply["code"] == "not_found" and "demo character" in reply["error"]
    status, reply = http(daemon.base, "GET", "/models/nobody.onnx")
    assert status == 404 and reply["code"] == "unknown_stream"
    import urllib.error
    import urllib.request

    end = time.monotonic() + 180  # the export runs once, in the background (503 with Retry-After until done;
    while True:                   # with the slow tests deselected nothing before this test waited for it)
        try:
            with urllib.request.urlopen(f"{daemon.base}/models/{STREAM}.onnx", timeout=120) as r:
                assert r.status == 200 and len(r.read()) > 1 << 20
            break
        except urllib.error.HTTPError as e:
            if e.code != 503 or not e.headers.get("Retry-After") or time.monotonic() > end:
                raise
            time.sleep(float(e.headers["Retry-After"]))
    status, reply = http(daemon.base, "GET", f"/api/local/{STREAM}")
    assert status == 200 and reply["ort_web"] == "/ort-web/" and reply["ort_version"] == ORT_WEB_VERSION


def test_ort_web_route_serves_only_inside_its_folder(daemon, ort_web):
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"{daemon.base}/ort-web/ort.min.js", timeout=30) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert (ort_web.parent / "package.json").is_file()  # one level up: must not be reachable
    for path in ("/ort-web/%2e%2e/package.json", "/ort-web/..%2fpackage.json", "/ort-web/%2fetc%2fpasswd",
                 "/ort-web/nothing.js"):
        status, reply = http(daemon.base, "GET", path)
        assert status == 404 and reply["code"] == "not_found", path
    # the server's guard covers these routes like the rest: a foreign Host (DNS rebinding) is refused
    status, _ = http(daemon.base, "GET", "/ort-web/ort.min.js", headers={"Host": "evil.example"})
    assert status == 403


def test_resolve_inside_and_the_ort_web_option(tmp_path):
    root = tmp_path / "dist"
    root.mkdir()
    (root / "ort.min.js").write_text("//")
    (tmp_path / "secret").write_text("x")
    (root / "link").symlink_to(tmp_path / "secret")
    assert resolve_inside(root, "ort.min.js") == root / "ort.min.js"
    for bad in ("../secret", "link", str(tmp_path / "secret"), "", "missing.js"):
        assert resolve_inside(root, bad) is None, bad
    assert ort_web_dir(tmp_path) == root  # the package folder works as well as its dist/
    with pytest.raises(ValueError, match="no ort.min.js"):
        ort_web_dir(tmp_path / "elsewhere")


def test_without_ort_web_the_page_is_pointed_at_the_cdn(served):
    """The session's daemon (demo only, no --ort-web): the CDN, no isolation headers, /ort-web/ says why."""
    import urllib.request

    from tha4bridge.web.ortweb import CDN

    status, reply = http(served.base, "GET", "/api/local/demo")
    assert status == 200 and reply["ort_web"] == CDN and not reply["local_ort"]
    assert CDN.startswith("https://cdn.jsdelivr.net/") and ORT_WEB_VERSION in CDN
    status, reply = http(served.base, "GET", "/ort-web/ort.min.js")
    assert status == 404 and "--ort-web" in reply["error"] and CDN in reply["error"]
    with urllib.request.urlopen(f"{served.base}/local/demo", timeout=30) as r:
        # from the CDN the page must not require CORP of every file it loads: not isolated, WASM on one thread
        assert r.status == 200 and "Cross-Origin-Embedder-Policy" not in r.headers
    status, reply = http(served.base, "GET", "/local/nobody")
    assert status == 404 and reply["code"] == "unknown_stream"


def test_a_bad_backend_name_is_one_clear_line_on_the_page(daemon, page):
    page.get(f"{daemon.base}/local/{STREAM}?ep=cuda")
    error = wait(page, "return window.tha4local && window.tha4local.error", 30)
    assert error == "?ep= must be wasm or webgpu, got cuda"


def test_banner_and_index_link_the_page_for_students_only(daemon, page):
    from selenium.webdriver.common.by import By

    log = daemon.log.read_text()
    assert f"/local/{STREAM}" in log and "/local/demo" not in log
    page.get(f"{daemon.base}/")
    wait(page, "return document.querySelectorAll('#streams li').length >= 2", 30)
    links = [a.get_attribute("href") for a in page.find_elements(By.CSS_SELECTOR, "#streams a")]
    assert f"{daemon.base}/local/{STREAM}" in links and f"{daemon.base}/local/demo" not in links


@pytest.mark.slow  # Chromium runs the student in WASM: seconds a frame
def test_beyond_loopback_with_the_token_and_its_own_sliders(ort_web, page, tmp_path):
    """A phone on the LAN: every request needs the token, including the library's own loads of its .mjs and
    .wasm (the page names them with the token); ?sliders=1 poses the page itself, without the daemon."""
    s = WebServed("--student", f"{STREAM}={LAMBDA_00}", "--ort-web", str(ort_web), "--idle-fps", "0",
                  "--breathing-period", "0", host="0.0.0.0", log_dir=tmp_path)
    try:
        assert s.token and http(s.base, "GET", f"/models/{STREAM}.onnx")[0] == 401
        page.get(f"{s.base}/local/{STREAM}?ep=wasm&sliders=1&token={s.token}")
        wait(page, "return window.tha4local && window.tha4local.frames >= 1")
        assert page.execute_script("return document.querySelectorAll('#sliders input[type=range]').length") == 45
        assert not page.execute_script("return window.tha4local.connected")  # the sliders drive it, no pose socket
    finally:
        s.stop()
