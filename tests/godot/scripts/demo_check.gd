extends SceneTree
# Test script (Godot 3): opens the demo scene pointed at url=, waits for its first frame and its expression
# buttons, then prints one JSON line of what it shows and quits 0 (1 after 20 s without them).

var demo = null
var deadline = 0


func _init() -> void:
	demo = load("res://demo/demo.tscn").instance()
	for word in OS.get_cmdline_args():
		if word.begins_with("url="):
			var url = word.substr(4, word.length() - 4)
			demo.get_node("FrameClient").url = url
			demo.get_node("Control").url = url
	root.add_child(demo)
	deadline = OS.get_ticks_msec() + 20000


func _idle(_delta: float) -> bool:
	var character = demo.get_node("Character")
	var buttons = demo.get_node("Panel/Box/Expressions")
	var done = demo.get_node("FrameClient").frames > 0 and buttons.get_child_count() > 0
	if done or OS.get_ticks_msec() > deadline:
		var texture = character.texture
		var names = []
		for b in buttons.get_children():
			names.append(b.text)
		var header = demo.get_node("FrameClient").header
		print(to_json({"frames": demo.get_node("FrameClient").frames, "status": demo.get_node("Panel/Box/Status").text,
			"header": {"stream": header.get("stream"), "poses": header.get("pose", []).size(),
				"alpha": header.get("alpha"), "times": header.has("t_render_end") and header.has("t_published")},
			"texture": [texture.get_width(), texture.get_height()] if texture != null else null,
			"material_blend": character.material.blend_mode if character.material != null else null,
			"transparent": root.transparent_bg, "buttons": names}))
		quit(0 if done else 1)
	return false
