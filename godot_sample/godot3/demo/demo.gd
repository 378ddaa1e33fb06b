extends Control
# The character on a transparent background, a few sliders, the daemon's expressions as buttons and the
# connection state. Start the daemon first: `tha4bridge serve --http 8080`.

const SLIDERS = ["head_x", "head_y", "eye_wink_left", "mouth_aaa", "eyebrow_happy_left", "iris_rotation_x"]

onready var frames = $FrameClient
onready var control = $Control
onready var status = $Panel/Box/Status
onready var buttons = $Panel/Box/Expressions

var _pose = {}


func _ready() -> void:
	get_tree().get_root().transparent_bg = true
	frames.connect("state_changed", self, "_on_state")
	frames.connect("frame_received", self, "_on_frame")
	control.connect("request_failed", self, "_on_refused")
	for parameter in SLIDERS:
		_add_slider(parameter)
	var talk = CheckButton.new()
	talk.text = "talk"
	talk.connect("toggled", self, "_on_talk")
	$Panel/Box.add_child(talk)
	_add_button($Panel/Box, "release", "_on_release", [])
	_on_state(frames.state, frames.reason)


func _add_slider(parameter: String) -> void:
	var label = Label.new()
	label.text = parameter
	$Panel/Box.add_child(label)
	var slider = HSlider.new()
	# the rotations go both ways (-1..1), the rest is 0..1 (`tha4bridge params` lists every range)
	slider.min_value = -1.0 if parameter in ["head_x", "head_y", "iris_rotation_x"] else 0.0
	slider.max_value = 1.0
	slider.step = 0.01
	slider.connect("value_changed", self, "_on_slider", [parameter])
	$Panel/Box.add_child(slider)


func _add_button(parent: Node, text: String, method: String, binds: Array) -> void:
	var button = Button.new()
	button.text = text
	button.connect("pressed", self, method, binds)
	parent.add_child(button)


func _on_state(state: String, why: String) -> void:
	status.text = state if why == "" else "%s: %s" % [state, why]
	if state == "connected" and buttons.get_child_count() == 0:
		var reply = yield(control.expressions(), "completed")
		if reply.get("ok", false) and buttons.get_child_count() == 0:
			var names = reply.get("expressions", {}).keys()
			names.sort()
			for expression in names:
				_add_button(buttons, expression, "_on_expression", [expression])


func _on_frame(header: Dictionary) -> void:
	status.text = "frame %d (%s, %.1f ms)" % [int(header.get("seq", 0)), header.get("encoding", ""),
		frames.decode_ms]


func _on_slider(value: float, parameter: String) -> void:
	_pose[parameter] = value
	control.set_pose(_pose, 0)  # held until "release"


func _on_expression(expression: String) -> void:
	control.set_expression(expression, 0.3)


func _on_talk(on: bool) -> void:
	control.talk(on)


func _on_release() -> void:
	_pose.clear()
	control.release()


func _on_refused(command: String, code: String, message: String) -> void:
	status.text = "%s refused (%s): %s" % [command, code, message]
