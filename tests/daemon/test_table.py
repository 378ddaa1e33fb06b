"""The control command table (daemon/table.py, commands.py): every `Args` refusal is one sentence naming its
field, with the code the protocol gives it; `dispatch` checks the version and the command name; every command
in `COMMANDS` is reachable through `dispatch` on the real services (tests/daemon/inproc.py)."""
from __future__ import annotations

import math
import threading
import wave

import pytest

from tha4bridge.daemon import commands
from tha4bridge.daemon.commands import COMMANDS
from tha4bridge.daemon.table import MAX_VISEMES, Args, CommandTable
from tha4bridge.pose import PARAMETER_NAMES
from tha4bridge.transport.control import DEFERRED, RequestError
from tha4bridge.transport.publisher import PROTO_MAJOR, PROTO_MINOR

from .inproc import one_torch_thread, rig  # noqa: F401 (fixtures)

INF, NAN = math.inf, math.nan


def refusal(call) -> RequestError:
    with pytest.raises(RequestError) as info:
        call()
    e = info.value
    assert "\n" not in str(e) and str(e).strip(), f"not one sentence: {str(e)!r}"
    return e


# (getter call on Args, body, code, words the sentence must contain — the field first)
REFUSALS = [
    (lambda a: a.string("path"), {}, "bad_request", ["'path'", "must be a string"]),
    (lambda a: a.string("path"), {"path": ""}, "bad_request", ["'path'"]),
    (lambda a: a.string("path", what="a WAV file"), {"path": 3}, "bad_request", ["'path'", "a WAV file"]),
    (lambda a: a.string("source", None), {"source": []}, "bad_request", ["'source'"]),
    (lambda a: a.seconds("hold", 5.0, "0 = until release"), {"hold": -1}, "bad_request",
     ["'hold'", "seconds >= 0", "0 = until release"]),
    (lambda a: a.seconds("hold", 5.0, "x"), {"hold": True}, "bad_request", ["'hold'"]),
    (lambda a: a.seconds("hold", 5.0, "x"), {"hold": INF}, "bad_request", ["'hold'"]),
    (lambda a: a.seconds("hold", 5.0, "x"), {"hold": "1"}, "bad_request", ["'hold'"]),
    (lambda a: a.region("region"), {"region": [0, 0, 64]}, "bad_request", ["'region'", "[x, y, w, h]"]),
    (lambda a: a.region("region"), {"region": "a,b,c,d"}, "bad_request", ["'region'", "four whole numbers"]),
    (lambda a: a.region("region"), {"region": [0, 0, 1.5, 2]}, "bad_request", ["'region'"]),
    (lambda a: a.choice("alpha", ("straight", "premultiplied"), None), {"alpha": "pre"}, "bad_request",
     ["'alpha'", '"straight" or "premultiplied"']),
    (lambda a: a.number("intensity", 1.0, 0.0, 1.0), {"intensity": 1.5}, "bad_request",
     ["'intensity'", "a number in [0, 1]"]),
    (lambda a: a.number("intensity", 1.0, 0.0, 1.0), {"intensity": NAN}, "bad_request", ["'intensity'"]),
    (lambda a: a.number("intensity", 1.0, 0.0, 1.0), {"intensity": False}, "bad_request", ["'intensity'"]),
    (lambda a: a.number("level", lo=0.0, hi=1.0), {}, "bad_request", ["'level'"]),
    (lambda a: a.boolean("on"), {}, "bad_request", ["'on'", "true or false"]),
    (lambda a: a.boolean("on"), {"on": 1}, "bad_request", ["'on'"]),
    (lambda a: a.pose_values("pose"), {"pose": [1, 2]}, "bad_request", ["'pose'", "map of parameter name"]),
    (lambda a: a.pose_values("pose"), {"pose": {"mouth_aa": 1}}, "bad_pose", ["unknown pose parameter", "mouth_aa"]),
    (lambda a: a.pose_values("pose"), {"pose": {"mouth_aaa": "1"}}, "bad_pose", ["must be numbers", "mouth_aaa"]),
    (lambda a: a.pose_values("pose"), {"pose": {"mouth_aaa": True}}, "bad_pose", ["mouth_aaa"]),
    (lambda a: a.injected_values("params"), {"params": {"head_x": INF}}, "bad_pose", ["finite", "head_x"]),
    (lambda a: a.injected_values("params"), {"params": {"breathing": 0.5}}, "bad_pose", ["'breathing'"]),
    (lambda a: a.injected_values("params"), {"params": 3}, "bad_request", ["'params'"]),
    (lambda a: a.visemes("items"), {"items": []}, "bad_request", ["'items'", f"1-{MAX_VISEMES}"]),
    (lambda a: a.visemes("items"), {"items": "A"}, "bad_request", ["'items'"]),
    (lambda a: a.visemes("items"), {"items": [[0, "A", 1]] * (MAX_VISEMES + 1)}, "bad_request", ["'items'"]),
    (lambda a: a.visemes("items"), {"items": [[0, "A", 1], [0.1, "Q", 1]]}, "bad_request",
     ["'items' item 1", "A/I/U/E/O/closed", "got [0.1, 'Q', 1]"]),
    (lambda a: a.visemes("items"), {"items": [[-1, "A", 1]]}, "bad_request", ["'items' item 0", "t >= 0"]),
    (lambda a: a.visemes("items"), {"items": [[0, "A", 2]]}, "bad_request", ["'items' item 0", "weight 0-1"]),
    (lambda a: a.visemes("items"), {"items": [[0, "A", NAN]]}, "bad_request", ["'items' item 0"]),
    (lambda a: a.visemes("items"), {"items": [[True, "A", 1]]}, "bad_request", ["'items' item 0"]),
    (lambda a: a.visemes("items"), {"items": [[0, "A"]]}, "bad_request", ["'items' item 0"]),
]


@pytest.mark.parametrize("getter, body, code, words", REFUSALS)
def test_each_args_refusal_is_one_sentence_naming_its_field(getter, body, code, words):
    e = refusal(lambda: getter(Args(body)))
    assert e.code == code, f"{e.code!r} for {body}: {e}"
    for w in words:
        assert w in str(e), f"{w!r} not in {str(e)!r}"


def test_args_accept_what_they_should():
    a = Args({"path": "x", "hold": 0, "region": "0,0,8,8", "alpha": "premultiplied", "n": 1, "on": False,
              "pose": {"mouth_aaa": 1, "head_x": NAN}, "items": [[0.5, "closed", 0], [0, "A", 1]]})
    assert a.string("path") == "x" and a.string("missing", None) is None and a.seconds("hold", 5.0, "") == 0.0
    assert a.seconds("absent", 5.0, "") == 5.0 and a.region("region").w == 8 and a.region("absent") is None
    assert a.choice("alpha", ("straight", "premultiplied"), None) == "premultiplied" and a.boolean("on") is False
    assert a.number("n", lo=0, hi=1) == 1.0 and a.number("absent", 0.5) == 0.5
    values = a.pose_values("pose")
    assert values["mouth_aaa"] == 1.0 and math.isnan(values["head_x"])  # repaired at render, not refused
    assert a.visemes("items") == [(0.5, "closed", 0.0), (0.0, "A", 1.0)]


def test_a_command_table_registers_functions_by_name():
    table = CommandTable()

    @table.command
    def cmd_ping(svc, args, reply):
        return {"ok": True}

    assert list(table) == ["ping"] and table["ping"] is cmd_ping


# --- dispatch --------------------------------------------------------------------------------------------------
def test_dispatch_refuses_another_protocol_version(rig):  # noqa: F811
    reply = commands.dispatch(rig.services, {"cmd": "hello", "proto": PROTO_MAJOR + 1}, None)
    assert reply["ok"] is False and reply["code"] == "version"
    assert (reply["proto"], reply["proto_minor"]) == (PROTO_MAJOR, PROTO_MINOR)
    assert f"protocol {PROTO_MAJOR}.x" in reply["error"] and repr(PROTO_MAJOR + 1) in reply["error"]
    assert commands.dispatch(rig.services, {"cmd": "hello", "proto": PROTO_MAJOR}, None)["ok"]


@pytest.mark.parametrize("body", [{}, {"cmd": 3}, {"cmd": None}])
def test_dispatch_needs_a_string_cmd(rig, body):  # noqa: F811
    e = refusal(lambda: commands.dispatch(rig.services, body, None))
    assert e.code == "bad_request" and "'cmd'" in str(e)


def test_dispatch_names_the_commands_it_knows(rig):  # noqa: F811
    e = refusal(lambda: commands.dispatch(rig.services, {"cmd": "helo"}, None))
    assert e.code == "unknown_command" and "'helo'" in str(e) and ", ".join(sorted(COMMANDS)) in str(e)


def _wav(path) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * 32)  # about half a second of noise
    return str(path)


def test_every_command_is_reachable_through_dispatch(rig, tmp_path):  # noqa: F811
    rig.open()
    loaded, unloaded = threading.Event(), threading.Event()
    deferred: dict[str, dict] = {}

    def reply_for(cmd):
        def reply(answer):
            deferred[cmd] = answer
            (loaded if cmd == "load" else unloaded).set()
        return reply

    requests = {
        "hello": {"client": "pytest"}, "streams": {}, "get_pose": {}, "stats": {},
        "set_pose": {"pose": {"mouth_aaa": 0.5}, "hold": 0}, "release": {},
        "load": {"path": "demo", "name": "second"}, "unload": {"stream": "second"},
        "calibrate": {}, "clear_calibration": {}, "shutdown": {}, "expressions": {},
        "set_expression": {"name": "joy"}, "inject": {"source": "game", "params": {"head_x": 0.5}},
        "talk": {"on": True}, "mouth": {"level": 0.5}, "visemes": {"items": [[0, "A", 1]]},
        "speak": {"path": _wav(tmp_path / "hi.wav"), "stream": "demo"},
    }
    assert set(requests) == set(COMMANDS), "a command without a request here (add one)"
    answers = {}
    for cmd, body in requests.items():
        if cmd == "unload":
            assert loaded.wait(10.0), "the `load` reply did not come within 10 s"
            assert deferred["load"]["ok"], deferred["load"]
        try:
            answers[cmd] = commands.dispatch(rig.services, {"cmd": cmd, **body}, reply_for(cmd))
        except RequestError as e:
            answers[cmd] = e
    assert answers["load"] is DEFERRED and answers["unload"] is DEFERRED
    for cmd in ("calibrate", "clear_calibration"):  # no hub here: the Trackers service's one sentence
        assert isinstance(answers[cmd], RequestError) and answers[cmd].code == "unavailable", answers[cmd]
    for cmd, answer in answers.items():
        if cmd not in ("load", "unload", "calibrate", "clear_calibration"):
            assert isinstance(answer, dict) and answer["ok"] is True, f"{cmd}: {answer}"
    assert answers["hello"]["parameter_names"] == list(PARAMETER_NAMES) and answers["hello"]["transport"] == "inline"
    assert answers["hello"]["frames"] == rig.endpoint and answers["hello"]["shm_dir"] == ""
    assert answers["stats"]["uptime"] >= 0 and "demo" in answers["stats"]["streams"]
    assert "joy" in answers["expressions"]["expressions"] and answers["get_pose"]["stream"] == "demo"
    assert answers["speak"]["seconds"] > 0 and rig.stopped.is_set()  # shutdown asked the daemon to stop
    rig.step()  # the render thread's next pass answers the unload
    assert unloaded.is_set() and deferred["unload"] == {"ok": True, "stream": "second"}


def test_unload_needs_a_stream_named(rig):  # noqa: F811
    rig.open()
    e = refusal(lambda: commands.dispatch(rig.services, {"cmd": "unload"}, None))
    assert e.code == "bad_request" and "'stream'" in str(e)


def test_load_refusals(rig):  # noqa: F811
    for body, words in (({"path": "demo", "alpha": "x"}, "'alpha'"), ({}, "'path'"),
                        ({"path": "demo", "name": "a b"}, "stream name"),
                        ({"path": "demo", "region": [0, 0]}, "'region'")):
        e = refusal(lambda: commands.dispatch(rig.services, {"cmd": "load", **body}, None))
        assert e.code == "bad_request" and words in str(e), str(e)
