"""What happens when tracking stops: the settings of the living idle and the tracking-lost envelope.

The envelope holds the last tracked pose for `lost_after` seconds, then eases to the idle pose over `ease_out`,
and eases back over `ease_in` when tracking returns. It is a pure function of the clock and of two facts the
hub records when data arrives (when tracking last started, and how idle it was then), so reading the pose has
no side effects and the render loop sees motion even when no datagram arrives. The idle motion itself
(breathing, blinks, sway) is `tha4bridge.animator`'s.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..animator import MotionConfig
from ..easing import smoothstep


@dataclass
class IdleConfig(MotionConfig):
    """The settings file's [idle] section: the animator's motion plus the tracking-lost timing."""

    lost_after: float = 0.5  # s without fresh data before tracking counts as lost (the hold)
    ease_out: float = 1.0  # s to ease from the held pose to idle
    ease_in: float = 0.3  # s to ease from idle back to the tracker

    def check(self) -> None:
        super().check()
        if self.lost_after < 0 or self.ease_out < 0 or self.ease_in < 0:
            raise ValueError("idle needs lost_after >= 0, ease_out >= 0 and ease_in >= 0")


class LostEnvelope:
    """Weight of the idle pose at a time: 0 while tracking, rising to 1 after the hold, eased both ways.

    `level` is linear in time (falling at 1/ease_in while tracked, rising at 1/ease_out after the hold); the
    weight is its smoothstep. Not thread-safe: the hub calls it under its lock.
    """

    def __init__(self, cfg: IdleConfig):
        self.cfg = cfg
        self.on_at: float | None = None  # when tracking last (re)started; None: never tracked (fully idle)
        self.on_level = 1.0  # the level at that moment

    def started(self, t: float, last_fresh: float | None) -> None:
        """Tracking (re)starts at `t`; `last_fresh` is when fresh data last came before it (None: never)."""
        self.on_level = self.level(t, last_fresh)
        self.on_at = t

    def level(self, now: float, last_fresh: float | None) -> float:
        if self.on_at is None or last_fresh is None:
            return 1.0
        c = self.cfg

        def falling(t: float) -> float:
            return max(0.0, self.on_level - (t - self.on_at) / c.ease_in) if c.ease_in > 0 else 0.0

        off_at = last_fresh + c.lost_after
        if now < off_at:
            return falling(now)
        rise = (now - off_at) / c.ease_out if c.ease_out > 0 else 1.0
        return min(1.0, falling(off_at) + rise)

    def weight(self, now: float, last_fresh: float | None) -> float:
        return smoothstep(self.level(now, last_fresh))
