"""The renderer's reused buffers: allocating hundreds of MB per frame costs more than the frame.

A *set* of buffers belongs to one use (a role — a whole frame, a body pass, a compose pass — with a batch size and
a region), so that a body pass on its own thread never shares a buffer with the render thread's compose passes.
Within a set, `tmp` hands out one tensor per name, reallocated only when the shape or dtype changes.
"""
from __future__ import annotations

import threading

import torch

KEEP = 4  # buffer sets kept: e.g. single frames, a crop of the same student, a batch, a body pass


class BufferSets:
    def __init__(self, image: torch.Tensor):
        """`image`: the character image [4, H, W]; every set starts with a copy per batch item (its face region is
        rewritten each frame)."""
        self.image = image
        self.sets: dict[tuple, dict[str, torch.Tensor]] = {}  # oldest first
        self._lock = threading.Lock()  # sets are taken from the body pass's thread and the render thread

    def get(self, key: tuple) -> dict[str, torch.Tensor]:
        """The buffer set of `key` = (role, batch size, region), made when new; the least recently used beyond
        KEEP are dropped."""
        with self._lock:
            b = self.sets.pop(key, None)
            if b is None:
                b = {"image": self.image[None].repeat(key[1], 1, 1, 1)}
            self.sets = {k: v for k, v in list(self.sets.items())[-(KEEP - 1):]}
            self.sets[key] = b
            return b

    def clear(self) -> None:
        with self._lock:
            self.sets.clear()


def tmp(buf: dict, key: str, shape, dtype=torch.float32, zero: bool = False, device="cpu") -> torch.Tensor:
    """A reused buffer of `buf`'s set; `zero`: zeroed when (re)allocated (rows some frames leave unwritten). A matrix
    with fewer rows than the buffer holds is its first rows (a band's last, short piece)."""
    t = buf.get(key)
    if (t is not None and len(shape) == 2 and t.dim() == 2 and t.shape[1] == shape[1] and t.dtype == dtype
            and shape[0] <= t.shape[0] and not zero):
        return t[:shape[0]]
    if t is None or t.shape != torch.Size(shape) or t.dtype != dtype:
        t = (torch.zeros if zero else torch.empty)(shape, dtype=dtype, device=device)
        buf[key] = t
    return t
