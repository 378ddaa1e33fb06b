"""The browser runtime's routes (protocols/web.md, "Since 1.2: the browser runtime"): the page's start-up
info, the stream's student as ONNX, a local onnxruntime-web, and the pose WebSocket. The student runs in the
browser; only poses travel. The server owns the sockets, the feed and the command thread; this only answers,
through the server's public methods (`stream`, `watch`, `command`).
"""
from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from ..defaults import DEMO
from ..pose import LOWER, PARAMETER_NAMES, UPPER
from .feed import pose_message
from .models import ModelExports
from .ortweb import CDN, ENTRY, ORT_WEB_VERSION, TYPES, WASM_FILES, ort_web_dir, resolve_inside
from .replies import error_response as _error, json_response as _json

# The /local/ page with a local onnxruntime-web: cross-origin isolated, so WASM may run threads (every
# resource it loads is then from this server). With the CDN the page stays unisolated and single-threaded.
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class BrowserRuntime:
    def __init__(self, server, ort_web: str | None):
        """`ort_web`: `serve --ort-web DIR`, a local onnxruntime-web (None: the page loads it from the CDN)."""
        self.server = server
        self.ort_web = ort_web_dir(ort_web)
        self.models = ModelExports()

    def routes(self, r, page) -> None:
        r.add_get("/local/{stream}", page("local.html", headers=ISOLATION if self.ort_web is not None else {}))
        r.add_get("/api/local/{stream}", self.info)
        r.add_get("/models/{stream}.onnx", self.model)
        r.add_get("/ort-web/{path:.*}", self.ort_web_file)
        r.add_get("/ws/poses/{stream}", self.poses)

    async def info(self, request: web.Request) -> web.Response:
        """What the page needs to start: where the model and onnxruntime-web are, the parameter ranges."""
        name = request.match_info["stream"]
        if self.server.stream(name) is None:
            return _error("unknown_stream", f"no stream named {name!r}")
        return _json({"ok": True, "stream": name, "model": f"/models/{quote(name)}.onnx",
                      "ort_web": "/ort-web/" if self.ort_web else CDN, "ort_entry": ENTRY, "ort_files": WASM_FILES,
                      "ort_version": ORT_WEB_VERSION, "local_ort": self.ort_web is not None,
                      "names": list(PARAMETER_NAMES), "lower": LOWER.tolist(), "upper": UPPER.tolist()})

    async def model(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["stream"]
        stream = self.server.stream(name)
        if stream is None:
            return _error("unknown_stream", f"no stream named {name!r}")
        try:  # a look-up, or the start of a background export: never slow
            state = self.models.lookup(stream.spec, stream.poser)
        except ValueError as e:
            code = "not_found" if stream.spec == DEMO else "unavailable"
            return _error(code, f"stream {name!r}: {e}")
        if state is None:
            response = _error("unavailable", f"stream {name!r} is being exported to ONNX for the browser (once; "
                                             "it takes up to a minute): ask again shortly")
            response.headers["Retry-After"] = "2"
            return response
        if state.error:
            return _error("load_failed", state.error)
        return web.FileResponse(state.path, headers={"Cache-Control": "no-cache",
                                                     "Content-Type": "application/octet-stream"})

    async def ort_web_file(self, request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        if self.ort_web is None:
            return _error("not_found", f"this server has no local onnxruntime-web (serve --ort-web DIR); the "
                                       f"page loads it from {CDN}")
        path = resolve_inside(self.ort_web, relative)
        if path is None:
            return _error("not_found", f"no file {relative!r} in the --ort-web folder")
        headers = {"Cache-Control": "no-cache", **ISOLATION}
        if path.suffix in TYPES:
            headers["Content-Type"] = TYPES[path.suffix]
        return web.FileResponse(path, headers=headers)

    async def poses(self, request: web.Request) -> web.StreamResponse:
        """The pose of every frame the daemon renders, newest only (protocols/web.md, "Pose WebSocket")."""
        name = request.match_info["stream"]
        if self.server.stream(name) is None:
            return _error("unknown_stream", f"no stream named {name!r}")
        sent = None

        async def first(ws: web.WebSocketResponse) -> None:
            nonlocal sent
            current = await self._current_pose(name)
            if current is not None:  # the pose shown now: an unchanged pose may not render again for a while
                sent = current["seq"]
                await self.server.send(ws, pose_message(current))

        async def send(ws: web.WebSocketResponse) -> None:
            nonlocal sent
            frame = self.server.feed.newest(name)
            if frame is None or frame.header["seq"] == sent:
                return
            sent = frame.header["seq"]
            await self.server.send(ws, pose_message(frame.header))  # newer frames replace `frame` meanwhile: newest only

        return await self.server.watch(request, name, send, pixels=False, first=first)

    async def _current_pose(self, name: str) -> dict | None:
        """The header of the stream's last frame; before the feed has seen one (frames published before the
        web server started), `get_pose`'s answer in the same shape, with `seq` null."""
        header = self.server.feed.last_header(name)
        if header is not None:
            return header
        reply = await self.server.command({"cmd": "get_pose", "stream": name})
        if not reply.get("ok"):  # unloaded meanwhile
            return None
        return {"stream": name, "seq": None, "t_pose": reply["received_at"], "t_render_end": None,
                "t_published": None, "pose_source": reply["source"],
                "pose": [float(reply["pose"][k]) for k in PARAMETER_NAMES]}
