"""Calibrating a renderer's two masks (fast mode): the face mask (face_mask.py), then the visibility mask (mask.py),
on one thread at the lowest priority, started by the first frame; until each is done, frames are computed whole.

The thread has its own buffers (the face's) and its own renderer (the visibility mask's whole frames), so it runs
beside the render thread. At interpreter exit a calibration in progress is asked to stop and joined (at most one
calibration frame): a daemon thread killed inside a torch kernel at shutdown aborts the process.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Callable

import torch

from .face_mask import face_calibration_poses
from .mask import calibration_poses

log = logging.getLogger("tha4bridge.student")


class MaskCalibration:
    def __init__(self, renderer, whole_frames: Callable[[], object]):
        """`renderer`: the SirenRenderer whose masks these are; `whole_frames()`: a renderer of its own (the same
        arrangement, no mask) for the visibility mask's calibration frames."""
        self.renderer, self.whole_frames = renderer, whole_frames
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()  # set at interpreter exit
        self._lock = threading.Lock()  # one visibility-mask calibration at a time (the thread, or a caller)

    def face_mask(self) -> None:
        """Calibrate the face mask from the faces of `face_calibration_poses()` (buffers of its own: this runs on
        the calibration thread beside `render`); masked faces start once it is done."""
        r = self.renderer
        fm = r.face_mask
        if fm is None or fm.calibrated:
            return
        poses = torch.from_numpy(face_calibration_poses()).to(r.device)
        buf: dict[str, torch.Tensor] = {}  # a buffer set of its own
        faces = []
        for k in range(0, poses.shape[0], 8):
            if self.stop.is_set():
                return
            faces.append(r.face(poses[k:k + 8], buf).permute(0, 3, 1, 2).clone())
        fm.calibrate(torch.cat(faces))
        log.info("face mask: %.0f %% of the face crop computed per face", 100 * fm.fraction())

    def visibility_mask(self) -> None:
        """Grow the visibility mask by the whole frames of `calibration_poses()`; masked frames start once it is
        done. Joins a calibration already under way."""
        mask = self.renderer.mask
        with self._lock:
            if mask is None or mask.calibrated:
                return
            helper = self.whole_frames()
            for p in torch.from_numpy(calibration_poses()).to(self.renderer.device):
                if self.stop.is_set():
                    return
                mask.grow(helper.render(p[None]))
            mask.calibrated = True

    def start(self) -> None:
        """Both calibrations on their thread (once)."""
        def run() -> None:
            try:  # lowest priority (Linux: per thread, inherited by its OpenMP workers): frames come first
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):
                pass
            try:
                self.face_mask()
                self.visibility_mask()
            except Exception:  # the masks stay uncalibrated: every frame is computed whole, as without them
                log.exception("visibility mask calibration failed; rendering whole frames")

        if self.thread is None:
            self.thread = threading.Thread(target=run, name="mask-calibration", daemon=True)
            self.thread.start()
            _RUNNING.add(self)


_RUNNING: "weakref.WeakSet[MaskCalibration]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for c in list(_RUNNING):
        c.stop.set()
    for c in list(_RUNNING):
        c.thread.join()
