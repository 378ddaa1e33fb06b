"""The HTTP/WebSocket part of the daemon (protocols/web.md): viewer and panel pages, the frame WebSocket,
and the JSON API over the control command table. `server.WebServer` is imported only when `--http` is on."""
from .address import parse_http

__all__ = ["parse_http"]
