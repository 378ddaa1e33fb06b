extends Control
# The character on a transparent background, a few sliders, the daemon's expressions as buttons
# and the connection state. Start the daemon first: `tha4bridge serve --http 8080`.

const SLIDERS = [
	"head_x", "head_y", "eye_wink_left", "mouth_aaa", "eyebrow_happy_left", "iris_rotation_x"
]
const BOTH_WAYS = ["head_x", "head_y", "iris_rotation_x"]  # -1..1; the rest is 0..1

var _pose := {}

@onready var frames: Tha4FrameClient = $FrameClient
@onready var control: Tha4Control = $Control
@onready var status: Label = $Panel/Box/Status
@onready var buttons: GridContainer = $Panel/Box/Expressions
@onready var box: VBoxContainer = $Panel/Box


func _ready() -> void:
	get_viewport().transparent_bg = true
	frames.state_changed.connect(_on_state)
	frames.frame_received.connect(_on_frame)
	control.request_failed.connect(_on_refused)
	for parameter in SLIDERS:
		_add_slider(parameter)
	var talk := CheckButton.new()
	talk.text = "talk"
	talk.toggled.connect(_on_talk)
	box.add_child(talk)
	_add_button(box, "release", _on_release)
	_on_state(frames.state, frames.reason)


func _add_slider(parameter: String) -> void:
	var label := Label.new()
	label.text = parameter
	box.add_child(label)
	var slider := HSlider.new()
	slider.min_value = -1.0 if parameter in BOTH_WAYS else 0.0  # `tha4bridge params` lists all
	slider.max_value = 1.0
	slider.step = 0.01
	slider.value_changed.connect(_on_slider.bind(parameter))
	box.add_child(slider)


func _add_button(parent: Node, text: String, pressed: Callable) -> void:
	var button := Button.new()
	button.text = text
	button.pressed.connect(pressed)
	parent.add_child(button)


func _on_state(state: String, why: String) -> void:
	status.text = state if why == "" else "%s: %s" % [state, why]
	if state == "connected" and buttons.get_child_count() == 0:
		var reply := await control.expressions()
		if reply.get("ok", false) and buttons.get_child_count() == 0:
			var names: Array = reply.get("expressions", {}).keys()
			names.sort()
			for expression in names:
				_add_button(buttons, expression, _on_expression.bind(expression))


func _on_frame(header: Dictionary) -> void:
	var seq := int(header.get("seq", 0))
	status.text = "frame %d (%s, %.1f ms)" % [seq, header.get("encoding", ""), frames.decode_ms]


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
