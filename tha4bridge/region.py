"""A crop of the frame: the sub-rectangle a stream or a render shows (protocols/frames.md, "Since 1.2").

The student is a coordinate network, so a crop costs in proportion to its area (student/renderer.py);
other posers render the whole frame and cut the crop out of it. Pixels of a crop equal the same pixels of
the full frame.
"""
from __future__ import annotations

from dataclasses import dataclass

FRAME = 512  # THA4's frame is FRAME × FRAME pixels (protocols/tha4_model.md)


class RegionError(ValueError):
    """A crop that is not a rectangle inside the frame, in one sentence."""


@dataclass(frozen=True)
class Region:
    x: int  # left column in the full frame
    y: int  # top row
    w: int
    h: int

    @staticmethod
    def parse(text: str, what: str = "--region") -> "Region":
        """`x,y,w,h` in pixels of the full frame."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise RegionError(f"{what} must be four whole numbers x,y,w,h (pixels), got {text!r}") from None
        return Region(x, y, w, h)

    @staticmethod
    def from_value(value, what: str = "region") -> "Region":
        """A request's [x, y, w, h] list or "x,y,w,h" string."""
        if isinstance(value, str):
            return Region.parse(value, what)
        if (isinstance(value, (list, tuple)) and len(value) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            return Region(*value)
        raise RegionError(f"{what} must be [x, y, w, h], four whole numbers of pixels, got {value!r}")

    def check(self, width: int = FRAME, height: int = FRAME, what: str = "--region") -> "Region":
        """Itself, if it lies inside a width × height frame and is not empty."""
        if self.w <= 0 or self.h <= 0:
            raise RegionError(f"{what} {self}: width and height must be at least 1 pixel")
        if self.x < 0 or self.y < 0 or self.x + self.w > width or self.y + self.h > height:
            raise RegionError(f"{what} {self} does not fit inside the {width}x{height} frame "
                              f"(x + w <= {width}, y + h <= {height}, x, y >= 0)")
        return self

    def is_full(self, width: int, height: int) -> bool:
        return (self.x, self.y, self.w, self.h) == (0, 0, width, height)

    def cut(self, frames):
        """The crop of full frames [..., H, W] (a view)."""
        return frames[..., self.y:self.y + self.h, self.x:self.x + self.w]

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"
