extends SceneTree
# Saves the next frame of a stream as a PNG (straight alpha) and exits 0; or prints one line saying
# why not and exits 1 (2 for a bad command line).
#   godot --headless --path PROJECT -s res://addons/tha4bridge/tools/snapshot.gd -- \
#       url=ws://HOST:PORT/ws/frames/NAME out=/path/frame.png [token=...] [timeout=10] \
#       [format=auto|rgba|png|webp]

const Args = preload("args.gd")
const FrameClient = preload("../frame_client.gd")
const FrameMessage = preload("../frame_message.gd")

var _client: FrameClient = null
var _out := ""
var _deadline := 0
var _timeout := 10.0


func _initialize() -> void:
	var args := Args.parse(["url", "out", "token", "timeout", "format"])
	var given: Dictionary = args.values
	if args.error == "" and not (given.has("url") and given.has("out")):
		args.error = "snapshot needs url=ws://HOST:PORT/ws/frames/NAME and out=FILE.png"
	if args.error == "" and given.has("timeout"):
		var t := Args.number(given.timeout, "timeout")
		args.error = t.error
		_timeout = t.value
	if args.error != "":
		print(args.error)
		quit(2)
		return
	_out = given.out
	_deadline = Time.get_ticks_msec() + int(_timeout * 1000)
	_client = FrameClient.new()
	_client.url = given.url
	_client.token = given.get("token", "")
	_client.format = given.get("format", "auto")
	_client.frame_received.connect(_on_frame)
	_client.state_changed.connect(_on_state)
	root.add_child(_client)


func _process(_delta: float) -> bool:
	if _client != null and Time.get_ticks_msec() > _deadline:
		_fail("no frame arrived within %s s from %s" % [_timeout, _client.feed_url()])
	return false


func _on_state(state: String, why: String) -> void:
	# A tool does not wait out an outage: the first reason given is the answer.
	if state == "waiting" and why.begins_with("cannot connect"):
		return  # the diagnosis that names the real reason follows within a moment
	if state in ["waiting", "stopped"] and why != "":
		_fail(why)


func _on_frame(header: Dictionary) -> void:
	var image := _client.image.duplicate() as Image
	if str(header.get("alpha", "straight")) == "premultiplied":
		FrameMessage.to_straight(image)
	var err := image.save_png(_out)
	if err != OK:
		_fail("cannot write %s (Godot error %d)" % [_out, err])
		return
	var size := "%dx%d" % [image.get_width(), image.get_height()]
	var seq := int(header.get("seq", -1))
	print("saved frame %d (%s, %s) to %s" % [seq, size, header.get("encoding", "?"), _out])
	_end(0)


func _fail(why: String) -> void:
	print(why)
	_end(1)


func _end(code: int) -> void:
	if _client != null:
		_client.stop()
		_client = null
	quit(code)
