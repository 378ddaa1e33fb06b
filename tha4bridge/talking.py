"""A WAV file's loudness as a mouth timeline: the no-TTS-integration way to lip-sync (`speak --wav`).

The daemon does not play the audio; it opens the mouth on the file's envelope from a start time, so a program
that starts playback at the same moment sees the mouth follow the sound.
"""
from __future__ import annotations

import os
import stat
import wave
from pathlib import Path

import numpy as np

ENVELOPE_RATE = 30.0  # mouth values per second: about one per frame
MAX_SECONDS = 600.0  # a longer file is refused: the timeline travels in one control request


def wav_envelope(path: str | Path, rate: float = ENVELOPE_RATE) -> list[tuple[float, float]]:
    """[(t seconds, level 0–1)] at `rate`: the RMS of each window, scaled so the loud parts open fully.
    ValueError (one sentence) for anything that is not a readable PCM WAV file: a missing path, a directory,
    a FIFO or device (refused before opening: reading one could block or never end), a file we may not read."""
    p = Path(path)
    try:
        _regular(p, os.stat(p).st_mode)
        # O_NONBLOCK: were the path swapped for a FIFO after the check, opening it must not wait for a writer
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file") from None
    except PermissionError:
        raise ValueError(f"{p}: the daemon may not read this file") from None
    except OSError as e:
        raise ValueError(f"{p}: cannot be opened ({e.strerror or type(e).__name__})") from None
    try:
        with open(fd, "rb") as f:
            _regular(p, os.fstat(f.fileno()).st_mode)
            with wave.open(f, "rb") as w:
                width, channels, fps, n = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
                if n / max(fps, 1) > MAX_SECONDS:
                    raise ValueError(f"{p}: {n / fps:.0f} s of audio, over the {MAX_SECONDS:.0f} s a timeline holds")
                raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{p}: not a PCM WAV file ({e})") from None
    except OSError as e:
        raise ValueError(f"{p}: cannot be read ({e.strerror or type(e).__name__})") from None
    if channels < 1 or fps < 1:
        raise ValueError(f"{p}: not a PCM WAV file (no channels or no sample rate)")
    if width not in (1, 2, 4):
        raise ValueError(f"{p}: {8 * width}-bit samples; 8, 16 or 32-bit PCM is read")
    raw = raw[: len(raw) // (width * channels) * (width * channels)]  # a truncated file: whole samples only
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}[width]
    x = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    if width == 1:
        x -= 128.0  # 8-bit WAV is unsigned
    x = x.reshape(-1, channels).mean(axis=1) / float(2 ** (8 * width - 1))
    hop = max(int(fps / rate), 1)
    windows = x[: len(x) // hop * hop].reshape(-1, hop)
    if len(windows) == 0:
        return []
    rms = np.sqrt((windows ** 2).mean(axis=1))
    loud = float(np.percentile(rms, 95)) or 1.0
    # below ~5% of the loud level is breath and room noise: the mouth stays closed
    level = np.clip((rms / loud - 0.05) / 0.95, 0.0, 1.0)
    return [(round(i * hop / fps, 4), round(float(v), 3)) for i, v in enumerate(level)]


def _regular(p: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else \
            "not a regular file"
        raise ValueError(f"{p}: {kind}, not a WAV file")


def envelope_visemes(envelope: list[tuple[float, float]]) -> list[list]:
    """The envelope as a viseme timeline: an open "A" at each level, "closed" at the end."""
    items = [[t, "A", v] for t, v in envelope]
    if envelope:
        items.append([envelope[-1][0] + 1.0 / ENVELOPE_RATE, "closed", 1.0])
    return items
