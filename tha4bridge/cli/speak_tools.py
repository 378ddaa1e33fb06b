"""The work of `speak`: a WAV's envelope as a viseme timeline, sent once with start = now."""
from __future__ import annotations

import time

from ..client import Control, ControlError
from ..talking import envelope_visemes, wav_envelope


def speak_wav(control: str, wav: str, stream: str | None, wait: bool) -> int:
    try:
        items = envelope_visemes(wav_envelope(wav))
    except ValueError as e:
        print(f"error: {e}")
        return 2
    if not items:
        print(f"error: {wav}: no audio samples")
        return 2
    with Control(control) as ctl:
        try:
            reply = ctl.visemes([tuple(it) for it in items], start="now", stream=stream)
        except ControlError as e:
            print(f"error: {e}")
            return 1
    seconds = items[-1][0]
    print(f"speaking {seconds:.2f} s from {wav} on {', '.join(reply['stream'])}, "
          f"starting at {reply['start']:.3f} (the daemon's clock)")
    if wait:
        time.sleep(seconds)
    return 0
