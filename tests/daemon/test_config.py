"""`serve`'s options (daemon/config.py): every refusal of `DaemonConfig.check` is one sentence naming the option,
before any socket or model; `region_of` per stream; `breathing_rate` from --breathing-period."""
from __future__ import annotations

import math

import pytest

from tha4bridge.daemon.config import DaemonConfig
from tha4bridge.region import Region

REFUSALS = [
    (dict(backend="tensorflow"), "--backend must be torch or onnxruntime, got 'tensorflow'"),
    (dict(transport="tcp"), "--transport must be shm or inline, got 'tcp'"),
    (dict(alpha="linear"), "--alpha must be straight or premultiplied, got 'linear'"),
    (dict(stream_alpha={"face": "linear"}), "--alpha must be straight or premultiplied, got 'linear'"),
    (dict(http="localhost:http"), "--http must be [HOST:]PORT with a port from 0 to 65535, got 'localhost:http'"),
    (dict(http="70000"), "--http must be [HOST:]PORT with a port from 0 to 65535, got '70000'"),
    (dict(region="0,0,64"), "--region must be four whole numbers x,y,w,h (pixels), got '0,0,64'"),
    (dict(stream_region={"face": "a,b,c,d"}),
     "--region face= must be four whole numbers x,y,w,h (pixels), got 'a,b,c,d'"),
    (dict(region="0,0,0,64"), "--region 0,0,0,64: width and height must be at least 1 pixel"),
    (dict(region="480,0,64,64"), "--region 480,0,64,64 does not fit inside the 512x512 frame "
                                 "(x + w <= 512, y + h <= 512, x, y >= 0)"),
    (dict(stream_region={"face": "-1,0,64,64"}), "--region face= -1,0,64,64 does not fit inside the 512x512 frame"),
    (dict(breathing_period=-1.0), "--breathing-period must be a number of seconds >= 0 (0 = off), got -1.0"),
    (dict(breathing_period=math.nan), "--breathing-period must be a number of seconds >= 0 (0 = off), got nan"),
    (dict(breathing_period=math.inf), "--breathing-period must be a number of seconds >= 0 (0 = off), got inf"),
]


@pytest.mark.parametrize("options, sentence", REFUSALS, ids=[str(o) for o, _ in REFUSALS])
def test_each_refusal_is_one_sentence(options, sentence):
    with pytest.raises(ValueError) as info:
        DaemonConfig(**options).check()
    text = str(info.value)
    assert text.startswith(sentence) and "\n" not in text, text


def test_ort_web_without_onnxruntime_web_is_refused(tmp_path):
    with pytest.raises(ValueError) as info:
        DaemonConfig(ort_web=str(tmp_path)).check()
    assert str(info.value).startswith(f"--ort-web {tmp_path}: no ort.min.js there")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "ort.min.js").write_text("")
    DaemonConfig(ort_web=str(tmp_path)).check()  # DIR/dist is found


def test_the_defaults_and_good_options_pass():
    DaemonConfig().check()
    DaemonConfig(backend="onnxruntime", transport="inline", alpha="premultiplied", stream_alpha={"a": "straight"},
                 http="[::1]:0", region="0,0,512,512", stream_region={"face": "128, 64, 256, 256"},
                 breathing_period=0.0).check()


def test_region_of_each_stream():
    c = DaemonConfig()
    assert c.region_of(None) is None and c.region_of("face") is None  # whole frames
    c = DaemonConfig(region="0,0,256,256", stream_region={"face": "128,64,256,256"})
    assert c.region_of("face") == Region(128, 64, 256, 256)  # its own
    assert c.region_of("body") == Region(0, 0, 256, 256) == c.region_of(None)  # the one for all
    assert DaemonConfig(stream_region={"face": "1,2,3,4"}).region_of("body") is None


def test_breathing_rate():
    assert DaemonConfig().breathing_rate(20.0) == 20.0  # the tracker settings' rate
    assert DaemonConfig(breathing_period=3.0).breathing_rate(12.0) == 20.0
    assert DaemonConfig(breathing_period=0.0).breathing_rate(20.0) == 0.0  # off
