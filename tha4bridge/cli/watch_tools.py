"""What `watch`, `snapshot` and `record` do, over the client library (rich is imported only here: a library
user never pays for it)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..client import Control, ControlError, Frame, FrameSubscriber, save_frame_png
from ..defaults import CONTROL_ENDPOINT

def _fmt(p: dict | None) -> str:
    if not p or p.get("p50") is None:
        return "-"
    return f"{p['p50']:.1f}/{p['p99']:.1f}"


def stats_table(stats: dict):
    from rich.table import Table

    t = Table(title=f"tha4bridge  up {stats.get('uptime', 0):.0f} s  transport {stats.get('transport')}  "
                    f"subscribers {stats.get('publisher', {}).get('subscribers', 0)}")
    for col in ("stream", "fps", "frames", "render ms p50/p99", "latency ms p50/p99", "superseded", "source"):
        t.add_column(col)
    for name, s in stats.get("streams", {}).items():
        t.add_row(name, f"{s['fps']:.1f}", str(s["frames"]), _fmt(s["render_ms"]), _fmt(s["latency_ms"]),
                  str(s["poses_superseded"]), s.get("source", ""))
    hub = stats.get("receivers") or {}
    receivers = hub.get("receivers", {}) if isinstance(hub, dict) else {}
    if not receivers:
        return t
    from rich.console import Group

    r = Table(title=f"trackers  driving: {hub.get('live_source') or 'none (idle motion)'}")
    for col in ("receiver", "port", "live", "packets", "accepted", "dropped", "malformed", "last packet"):
        r.add_column(col)
    for name, v in receivers.items():
        malformed = v.get("malformed", 0)
        malformed = sum(malformed.values()) if isinstance(malformed, dict) else malformed
        age = v.get("last_packet_age")
        r.add_row(name, str(v.get("port", "")), "yes" if v.get("live") else "no", str(v.get("packets", "")),
                  str(v.get("accepted", "")), str(v.get("dropped", "")), str(malformed),
                  "-" if age is None else f"{age:.1f} s ago")
    return Group(t, r)


def watch_stats(endpoint: str, interval: float = 1.0, once: bool = False) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with Control(endpoint, timeout=3.0) as ctl:
        try:
            if once:
                console.print(stats_table(ctl.stats()))
                return 0
            with Live(stats_table(ctl.stats()), console=console, refresh_per_second=4) as live:
                while True:
                    time.sleep(interval)
                    live.update(stats_table(ctl.stats()))
        except ControlError as e:
            console.print(f"[red]{e}[/red]")
            return 1
        except KeyboardInterrupt:
            return 0


def missing_stream(control: str, stream: str | None) -> str | None:
    """A sentence when the daemon at `control` answers and has no stream `stream` (listing those it has);
    None when the stream exists, none was asked for, or the control socket does not answer (then the frame
    wait says what it can)."""
    if stream is None:
        return None
    try:  # a daemon answers in milliseconds; a second is plenty and costs little when none listens there
        with Control(control, timeout=1.0) as ctl:
            names = [s["name"] for s in ctl.streams()]
    except ControlError:
        return None
    if stream in names:
        return None
    return (f"the daemon at {control} has no stream {stream!r}; its streams: "
            f"{', '.join(names) if names else '(none)'}")


def snapshot(endpoint: str, out: str | Path, stream: str | None = None, timeout: float = 10.0,
             control: str = CONTROL_ENDPOINT) -> int:
    if (problem := missing_stream(control, stream)) is not None:
        print(problem)
        return 1
    with FrameSubscriber(endpoint, streams=stream) as sub:
        frame = sub.recv(timeout=timeout)
    if frame is None:
        print(f"no frame from {endpoint} within {timeout:g} s (is `tha4bridge serve` running?)")
        return 1
    save_frame_png(frame, out)
    print(f"saved {frame.stream} seq {frame.seq} ({frame.header['width']}x{frame.header['height']}) to {out}")
    return 0


def record(endpoint: str, out: str | Path, seconds: float, stream: str | None = None,
           control: str = CONTROL_ENDPOINT) -> int:
    """Frames are kept in memory while recording and written afterwards, so PNG encoding never drops frames."""
    if (problem := missing_stream(control, stream)) is not None:
        print(problem)
        return 1
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames: list[Frame] = []
    with FrameSubscriber(endpoint, streams=stream, rcvhwm=64) as sub:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            f = sub.recv(timeout=left)
            if f is not None:
                frames.append(f)
        stats = sub.stats
    headers = []
    for i, f in enumerate(frames):
        name = f"frame_{i:06d}.png" if stream else f"{f.stream}_{i:06d}.png"
        save_frame_png(f, out / name)
        headers.append({"file": name, **f.header})
    (out / "headers.json").write_text(json.dumps({"frames": headers, "torn": stats.torn, "dropped": stats.dropped},
                                                 indent=1))
    print(f"recorded {len(frames)} frames to {out} (torn {stats.torn}, dropped {stats.dropped})")
    return 0 if frames else 1
