"""A UDP socket drained by one thread, with the per-reason drop counters every receiver reports.

Receivers subclass `UdpReceiver` and implement `handle(data, addr, t)`; a bad datagram raises `Malformed(reason)`
and is counted, never fatal. Any other exception is counted as `internal:<Type>` and logged once per type,
so a bug can not kill the thread or flood the log with one stack trace per packet.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter

log = logging.getLogger("tha4bridge.trackers")

RECV_TIMEOUT = 0.1  # how often the thread looks at the stop flag and runs `on_silence` (stop() < 0.5 s)
# Larger datagrams are dropped (`oversize`): a VMC frame is kept near the path MTU (about 1.5 kB) and an
# iFacialMocap frame is about 1 kB, so 32 KiB is generous and bounds what one bad sender costs us.
MAX_DATAGRAM = 32768


class Malformed(Exception):
    """A datagram (or a part of one) that is dropped; `args[0]` is the reason counted in stats."""


class UdpReceiver:
    name = "udp"

    def __init__(self, host: str, port: int, max_datagram: int = MAX_DATAGRAM):
        self.host, self.requested_port, self.max_datagram = host, port, max_datagram
        self.port: int | None = None
        self.sock: socket.socket | None = None
        self.packets = 0  # datagrams received
        self.accepted = 0  # datagrams that changed the tracked state
        self.repeats = 0  # byte-identical repeats (a frozen sender)
        self.malformed: Counter[str] = Counter()
        self.last_packet: float | None = None  # time.time() of the last datagram of any kind
        self.last_fresh: float | None = None  # ... of the last one that was not a frozen repeat
        self.last_sender: tuple | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._logged: set[str] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def bind(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # ride out bursts while the GIL is busy
            s.bind((self.host, self.requested_port))
        except OSError as e:
            s.close()
            reason = e.strerror or str(e)
            raise OSError(f"{self.name}: cannot listen on UDP {self.host}:{self.requested_port}: {reason}") from None
        s.settimeout(RECV_TIMEOUT)
        self.sock, self.port = s, s.getsockname()[1]

    def start(self) -> None:
        if self.sock is None:
            self.bind()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"tha4bridge-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * RECV_TIMEOUT + 0.2)
            self._thread = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- the loop ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        sock, limit = self.sock, self.max_datagram
        recvfrom = sock.recvfrom
        now = time.time
        while not self._stopping.is_set():
            try:
                data, addr = recvfrom(limit + 1)
            except socket.timeout:
                self._guarded(self.on_silence, now())
                continue
            except OSError as e:  # closed under us, or e.g. ICMP port-unreachable echoes on some systems
                if self._stopping.is_set():
                    break
                self._count(f"socket:{e.errno}")
                continue
            t = now()
            self.packets += 1
            self.last_packet = t
            self.last_sender = addr
            if len(data) > limit:
                self._count("oversize")
                continue
            try:
                self.handle(data, addr, t)
            except Malformed as m:
                self._count(m.args[0] if m.args else "malformed")
            except Exception as e:  # a bug must not kill the receiver; count it and say it once
                self._count(f"internal:{type(e).__name__}", e)

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:
            self._count(f"internal:{type(e).__name__}", e)

    def _count(self, reason: str, exc: BaseException | None = None) -> None:
        self.malformed[reason] += 1
        if reason not in self._logged and len(self._logged) < 64:
            self._logged.add(reason)
            detail = f" ({exc})" if exc is not None else ""
            log.warning("%s: dropped a datagram: %s%s (counted in stats; further ones are not logged)",
                        self.name, reason, detail)

    # -- for subclasses ------------------------------------------------------------------------------------
    def handle(self, data: bytes, addr, t: float) -> None:
        raise NotImplementedError

    def on_silence(self, t: float) -> None:
        """Called when no datagram arrived for RECV_TIMEOUT seconds."""

    def stats(self) -> dict:
        age = None if self.last_packet is None else max(0.0, time.time() - self.last_packet)
        return {
            "port": self.port,
            "packets": self.packets,
            "accepted": self.accepted,
            "repeats": self.repeats,
            "dropped": int(sum(self.malformed.values())),
            "malformed": dict(self.malformed),
            "last_packet_age": age,
            "last_fresh_age": None if self.last_fresh is None else max(0.0, time.time() - self.last_fresh),
            "last_sender": None if self.last_sender is None else f"{self.last_sender[0]}:{self.last_sender[1]}",
        }
