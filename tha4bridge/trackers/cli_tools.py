"""What the tracker CLI commands do (cli.py stays a thin shell)."""
from __future__ import annotations

import time

from ..pose import INDEX


def calibrate_daemon(control: str, clear: bool, timeout: float = 5.0) -> int:
    """Ask a running daemon to capture (or clear) the neutral face; print what it stored."""
    from ..client import Control, ControlError

    try:
        with Control(control, timeout=timeout) as c:
            if clear:
                c.call("clear_calibration")
                print("calibration cleared")
                return 0
            reply = c.call("calibrate")
    except ControlError as e:
        print(f"calibrate: {e}")
        return 1
    doc = reply.get("calibration") or {}
    sources = doc.get("sources", {}) if isinstance(doc, dict) else {}
    for name, entry in sources.items():
        head = entry.get("head_deg", [0, 0, 0])
        face = entry.get("face", {})
        print(f"{name}: head pitch {head[0]:+.1f} yaw {head[1]:+.1f} roll {head[2]:+.1f} deg; "
              f"{len(face)} resting face values")
    if not sources:
        print("calibrated")
    return 0


_SHOW = ("eye_wink_left", "eye_wink_right", "mouth_aaa", "head_x", "head_y", "neck_z", "breathing")


def listen(seconds: float, vmc_port: int, ifm_port: int, ifm_phone: str | None, mapping_file: str | None,
           host: str, webcam=None) -> int:
    """Run the tracker hub alone and print a status line per second (a connectivity check). `webcam`: a
    webcam.WebcamConfig to track a camera or video too."""
    from .hub import TrackerConfig, TrackerHub

    try:
        if webcam is not None:
            webcam.check()
        hub = TrackerHub(TrackerConfig(vmc_port=vmc_port, ifm_port=ifm_port, ifm_phone=ifm_phone,
                                       osc_param_port=vmc_port, mapping_file=mapping_file, host=host,
                                       webcam=webcam))
        hub.start()
    except (OSError, ValueError) as e:
        print(f"trackers: {e}")
        return 1
    listening = [f"{k} UDP {host}:{v}" for k, v in hub.ports.items()]
    if webcam is not None:
        listening.append(f"webcam: {webcam.label()}")
    print("listening: " + ", ".join(listening) + "  (Ctrl-C to stop)")
    end = time.monotonic() + seconds if seconds > 0 else None
    said: set[str] = set()
    try:
        while end is None or time.monotonic() < end:
            time.sleep(1.0)
            st, tp = hub.stats(), hub.current()
            parts = []
            for name, r in st["receivers"].items():
                if name == "osc-params" and "vmc" in st["receivers"]:
                    continue
                if name == "webcam":
                    ms = f", {r['infer_ms']:.0f} ms/frame" if r["infer_ms"] is not None else ""
                    parts.append(f"webcam ({r['state']}): {r['packets']} frames, {r['accepted']} with a face{ms}")
                    continue
                drops = f" dropped {r['dropped']} {r['malformed']}" if r["dropped"] else ""
                parts.append(f"{name}: {r['packets']} packets{drops}")
            values = " ".join(f"{n}={tp.pose[INDEX[n]]:+.2f}" for n in _SHOW)
            silent = "" if any(r["packets"] for r in st["receivers"].values()) else \
                " | no packets yet: check the sender's target IP/port and the firewall (UDP)"
            print(f"[{tp.source}] " + "; ".join(parts) + f" | {values}{silent}", flush=True)
            for name, r in st["receivers"].items():
                for w in r.get("warnings", []):
                    if name == "webcam":
                        if w in said or w == r.get("trouble"):
                            continue  # said once: camera trouble by its log line, face hints here
                        said.add(w)
                    print(f"  {name}: {w}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0
