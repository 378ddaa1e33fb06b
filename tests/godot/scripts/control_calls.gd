extends SceneTree
# Test script (Godot 3): every Tha4Control method in turn against the daemon at url=, one JSON line per
# reply or refusal, then quits 0. Run from tests/godot/test_control.py.

const ControlScript = preload("res://addons/tha4bridge/control.gd")

var control = null


func _init() -> void:
	control = ControlScript.new()
	for word in OS.get_cmdline_args():
		if word.begins_with("url="):
			control.url = word.substr(4, word.length() - 4)
	control.stream = "demo"
	control.connect("request_failed", self, "_on_failed")
	root.add_child(control)
	call_deferred("_run")


func _run() -> void:
	_print("set_pose", yield(control.set_pose({"mouth_aaa": 0.25, "eye_wink_left": 1.0}, 0), "completed"))
	_print("get_pose", yield(control.get_pose(), "completed"))
	_print("expressions", yield(control.expressions(), "completed"))
	_print("set_expression", yield(control.set_expression("joy", 0.0), "completed"))
	_print("inject", yield(control.inject("godot", {"head_x": 0.5}, 1.0, "set", 0), "completed"))
	_print("talk", yield(control.talk(true), "completed"))
	_print("mouth", yield(control.mouth(0.8), "completed"))
	_print("layers", yield(control.get_pose(), "completed"))
	_print("release_source", yield(control.release("godot"), "completed"))
	_print("bad_pose", yield(control.set_pose({"no_such_parameter": 1.0}), "completed"))
	_print("talk_off", yield(control.talk(false), "completed"))
	_print("release", yield(control.release(), "completed"))
	quit(0)


func _print(step: String, reply: Dictionary) -> void:
	print(to_json({"step": step, "reply": reply}))


func _on_failed(command: String, code: String, message: String) -> void:
	print(to_json({"step": "request_failed", "command": command, "code": code, "message": message}))
