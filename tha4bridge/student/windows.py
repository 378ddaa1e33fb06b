"""What each body level computes for a crop (renderer.py lever 6; the ONNX graph's crop export too)."""
from __future__ import annotations

from dataclasses import dataclass

from ..region import Region


@dataclass(frozen=True)
class Window:
    """The rectangle [x0, x1) × [y0, y1) a level computes, in that level's pixels."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    def cut_terms(self, terms):
        """The position tables (cols, rows) of the full level, cut to this window."""
        cols, rows = terms
        return cols[self.x0:self.x1], rows[self.y0:self.y1]


def level_windows(sizes: list[int], region: Region | None) -> list[Window]:
    """What each body level computes so that the last one yields `region` (None: everything).

    Upsampling ×2 (half-pixel centres) gives output column X from low-res columns ⌊X/2 − ¼⌋ and the one
    after, so a window [X0, X1) needs low-res columns from ⌊X0/2⌋ − 1 to ⌊(X1 − 1)/2⌋ + 1: then no output
    inside it reads a clamped neighbour unless the full frame's border does too."""
    if region is None:
        return [Window(0, 0, s, s) for s in sizes]
    wins = [Window(region.x, region.y, region.x + region.w, region.y + region.h)]
    for low in reversed(sizes[:-1]):
        hi = wins[0]
        wins.insert(0, Window(max(0, hi.x0 // 2 - 1), max(0, hi.y0 // 2 - 1),
                              min(low, (hi.x1 - 1) // 2 + 2), min(low, (hi.y1 - 1) // 2 + 2)))
    return wins
