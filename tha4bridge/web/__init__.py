"""The HTTP/WebSocket part of the daemon (protocols/web.md): viewer and panel pages, the frame WebSocket,
and the JSON API over the control command table. `server.WebServer` is imported only when `--http` is on;
what it needs from the daemon arrives as a `DaemonLink`."""
from .address import parse_http
from .link import DaemonLink

__all__ = ["DaemonLink", "parse_http"]
