extends SceneTree
# Sends one set_pose from the command line and exits 0, or prints the daemon's refusal (or why no daemon
# answered) in one line and exits 1 (2 for a bad command line).
#   godot --path PROJECT -s res://addons/tha4bridge/tools/pose.gd \
#       url=http://HOST:PORT [stream=demo] [token=...] [hold=5] NAME=VALUE ...

const Args = preload("args.gd")
const ControlScript = preload("../control.gd")
const OPTIONS = ["url", "stream", "token", "hold"]


func _init() -> void:
	var args = Args.parse(OPTIONS, true)
	var given = args.values
	var pose = {}
	var hold = 5.0
	for key in given:
		if args.error != "":
			break
		if key == "hold" or not key in OPTIONS:
			var n = Args.number(given[key], key)
			args.error = n.error
			if key == "hold":
				hold = n.value
			else:
				pose[key] = n.value
	if args.error == "" and (not given.has("url") or pose.empty()):
		args.error = "pose needs url=http://HOST:PORT and at least one NAME=VALUE"
	if args.error != "":
		print(args.error)
		quit(2)
		return
	var control = ControlScript.new()
	control.url = given.url
	control.stream = given.get("stream", "")
	control.token = given.get("token", "")
	control.connect("replied", self, "_on_replied")
	control.connect("request_failed", self, "_on_failed")
	root.add_child(control)
	control.set_pose(pose, hold)


func _on_replied(_command: String, reply: Dictionary) -> void:
	print("set %d parameters on %s (hold %s s)" % [int(reply.get("applied", 0)),
		PoolStringArray(reply.get("stream", [])).join(", "), reply.get("hold", "?")])
	quit(0)


func _on_failed(_command: String, code: String, message: String) -> void:
	print("%s (%s)" % [message, code])
	quit(1)
