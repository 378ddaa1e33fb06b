"""The layer commands (daemon/layer_commands.py) through `dispatch` on the real services: what each leaves in the
stream's Layers, that it marks the stream pending (and wakes the render thread), and the frame it then shows."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tha4bridge.daemon import commands
from tha4bridge.daemon.layer_commands import INJECT_TIMEOUT
from tha4bridge.pose import INDEX
from tha4bridge.transport.control import RequestError

from .inproc import LIBRARY, one_torch_thread, rig  # noqa: F401 (fixtures)

MOUTH = INDEX["mouth_aaa"]


@pytest.fixture
def shown(rig):  # noqa: F811
    """A rig with one stream whose first frame is out, so `pending` reads False until a command arrives."""
    s = rig.open()
    rig.step()
    assert not s.pending
    rig.scheduler.wake.clear()
    return rig, s


def send(rig, cmd: str, **body) -> dict:  # noqa: F811
    return commands.dispatch(rig.services, {"cmd": cmd, **body}, None)


def refused(rig, cmd: str, **body) -> RequestError:  # noqa: F811
    with pytest.raises(RequestError) as info:
        send(rig, cmd, **body)
    return info.value


def changed(rig, s) -> bool:  # noqa: F811
    """The stream was marked as having a new pose and the render thread was woken (then clear both)."""
    with rig.lock:
        was, s.pending = s.pending and rig.scheduler.wake.is_set(), False
    rig.scheduler.wake.clear()
    return was


def test_set_expression(shown):
    rig, s = shown
    reply = send(rig, "set_expression", name="joy", intensity=0.5, fade=0)
    assert reply["ok"] and (reply["name"], reply["intensity"], reply["fade"], reply["hold"]) == ("joy", 0.5, 0.0, None)
    assert changed(rig, s) and s.layers.expression.name(reply["at"]) == "joy"
    mask, amount = s.layers.expression.look(reply["at"])
    key = next(iter(LIBRARY["joy"]))
    assert mask[INDEX[key]] == 0.5 and amount[INDEX[key]] == pytest.approx(0.5 * LIBRARY["joy"][key])
    reply = send(rig, "set_expression", name="anger", hold=2, fade=0)
    assert s.layers.expression.name(reply["at"]) == "anger" and s.layers.expression.name(reply["at"] + 2) == "joy"
    assert changed(rig, s)
    e = refused(rig, "set_expression", name="gleeful")
    assert e.code == "bad_request" and "'gleeful'" in str(e)
    assert not changed(rig, s)  # a refused command changes nothing


def test_inject_then_release_by_source(shown):
    rig, s = shown
    reply = send(rig, "inject", source="game", params={"mouth_aaa": 0.75}, weight=1)
    assert reply["ok"] and reply["applied"] == 1 and reply["timeout"] == INJECT_TIMEOUT and changed(rig, s)
    inj = s.layers.sources["game"]
    assert inj.values == {MOUTH: 0.75} and (inj.weight, inj.mode) == (1.0, "set")
    assert inj.until == pytest.approx(inj.at + INJECT_TIMEOUT)
    first_at = inj.at
    send(rig, "inject", source="game", params={"mouth_aaa": 0.5}, mode="add", timeout=0)  # a re-send
    inj = s.layers.sources["game"]
    assert inj.at == first_at and math.isinf(inj.until) and inj.mode == "add"  # keeps its place in the order
    assert refused(rig, "inject", source="x" * 65, params={}).code == "bad_request"
    assert refused(rig, "inject", source="game", params={"breathing": 0.1}).code == "bad_pose"
    changed(rig, s)
    assert send(rig, "release", source="game")["released"] == ["game"] and changed(rig, s)
    assert s.layers.sources == {}


def test_talk_mouth_and_visemes(shown):
    rig, s = shown
    reply = send(rig, "talk", on=True)
    assert changed(rig, s) and s.layers.talking.on_since == reply["at"] and not s.layers.talking.over_tracker
    send(rig, "talk", on=False)
    assert changed(rig, s) and s.layers.talking.off_at >= reply["at"]
    reply = send(rig, "mouth", level=0.7, over_tracker=True)
    assert changed(rig, s) and (s.layers.talking.level, s.layers.talking.level_at) == (0.7, reply["at"])
    assert s.layers.talking.over_tracker
    reply = send(rig, "visemes", items=[[0, "A", 1], [0.5, "O", 0.5], [1, "closed", 0]], start=100.0)
    assert reply == {"ok": True, "stream": ["demo"], "start": 100.0, "items": 3} and changed(rig, s)
    assert s.layers.talking.mouth(100.6)[0] == "visemes"
    assert s.layers.talking.mouth(100.6)[1].tolist() == [0, 0, 0, 0, 0.5]  # O at 0.5
    assert not s.layers.talking.over_tracker  # each talking request says it again (default false)
    assert refused(rig, "mouth", level=2).code == "bad_request"
    assert refused(rig, "talk").code == "bad_request"
    assert refused(rig, "visemes", items=[[0, "A", 1]], start=-1).code == "bad_request"


def test_the_next_frame_shows_the_layers(shown):
    rig, s = shown
    send(rig, "mouth", level=0.75)
    with rig.lock:
        assert s.pending
    rig.step()  # changed layers: rendered at once
    header = rig.log.headers[-1]
    assert len(rig.log.frames) == 2 and header["pose"][MOUTH] == 0.75 and header["pose_source"] == "idle"
    assert not s.pending


def test_a_layer_command_on_every_stream(rig):  # noqa: F811
    a, b = rig.open("a"), rig.open("b")
    reply = send(rig, "inject", stream="*", source="game", params={"head_x": 0.5})
    assert reply["stream"] == ["a", "b"] and "game" in a.layers.sources and "game" in b.layers.sources
    assert np.all([a.pending, b.pending])
    e = refused(rig, "talk", on=True)  # two streams: say which
    assert e.code == "bad_request" and "'stream'" in str(e)
