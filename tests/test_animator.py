"""The animator, the one clock of time-driven motion: breathing at the configured rate, blinks at random
intervals, a slow sway; 0 breaths per minute switches breathing off; readable from several threads."""
import threading

import numpy as np
import pytest

from tha4bridge.animator import Animator, MotionConfig
from tha4bridge.pose import INDEX


def test_idle_pose_blinks_and_sways_and_breathing_is_the_clocks():
    m = Animator(MotionConfig(seed=1, blink_interval_min=1.0, blink_interval_max=2.0), t0=1000.0)
    ts = [1000.0 + k / 100 for k in range(1000)]  # 10 s at 100 Hz
    poses = [m.idle_pose(t) for t in ts]
    # breathing is added to every frame pose in one place (daemon/framepose.py), not to the idle pose
    assert all(p[INDEX["breathing"]] == 0.0 for p in poses)
    breathing = [m.breathing(t) for t in ts]
    assert min(breathing) < 0.01 and max(breathing) > 0.99  # a full 3 s cycle, never stuck at 0
    assert breathing[150] == pytest.approx(1.0, abs=1e-3)  # peak at half a period
    blinks = [p[INDEX["eye_wink_left"]] for p in poses]
    closed = sum(1 for a, b in zip(blinks, blinks[1:]) if a < 0.5 <= b)
    assert 4 <= closed <= 11  # every 1-2 s
    sway = [p[INDEX["head_y"]] for p in poses]
    assert 0.02 < max(sway) - min(sway) < 0.2


@pytest.mark.parametrize("rate,period", [(20.0, 3.0), (30.0, 2.0), (12.0, 5.0)])
def test_breathing_follows_the_configured_rate(rate, period):
    m = Animator(MotionConfig(breathing_rate=rate), t0=0.0)
    assert m.breathing(0.0) == pytest.approx(0.0) and m.breathing(period / 2) == pytest.approx(1.0)
    assert m.breathing(period) == pytest.approx(0.0, abs=1e-9) and m.breathing(7.25 * period) == pytest.approx(0.5)


def test_zero_rate_switches_breathing_off_and_bad_settings_are_refused():
    m = Animator(MotionConfig(breathing_rate=0.0), t0=0.0)
    assert all(m.breathing(t) == 0.0 for t in np.linspace(0, 10, 50))
    for bad in (MotionConfig(breathing_rate=-1.0), MotionConfig(breathing_rate=float("nan")),
                MotionConfig(blink_interval_min=3.0, blink_interval_max=2.0), MotionConfig(sway_period=0.0)):
        with pytest.raises(ValueError, match="idle"):
            bad.check()


def test_blinks_are_consistent_across_threads():
    m = Animator(MotionConfig(seed=5, blink_interval_min=0.5, blink_interval_max=0.6), t0=0.0)
    ts = np.linspace(0.0, 30.0, 3001)
    results = [None, None]

    def read(k):
        results[k] = [m.blink(t) for t in ts]

    threads = [threading.Thread(target=read, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Both readers walk the same schedule forward: the same time gives the same eyelid.
    assert results[0] == results[1] and max(results[0]) > 0.99
