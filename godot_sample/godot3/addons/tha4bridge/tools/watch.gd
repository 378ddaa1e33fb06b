extends SceneTree
# Watches a stream from a terminal: one JSON line per event on stdout, for people and for tests and the
# benchmark. {"event": "state", "state", "reason"}, {"event": "frame", "seq", "bytes", "decode_ms", "skipped"},
# and at the end {"event": "summary", "frames", "seconds", "fps", "decode_ms": {"p50", "p99"}, "skipped",
# "poll_ms" (time in poll() since the first frame)}.
#   godot --path PROJECT -s res://addons/tha4bridge/tools/watch.gd \
#       url=ws://HOST:PORT/ws/frames/NAME [token=...] [seconds=10] [frames=N] [format=auto|rgba|png|webp]
#       [buffer_mb=16]

const Args = preload("args.gd")
const FrameClient = preload("../frame_client.gd")

var _client = null
var _end_at = 0
var _first_at = 0
var _last_at = 0
var _max_frames = 0
var _decode = []
var _poll_ms = 0.0  # summed over every main-loop pass while connected


func _init() -> void:
	var args = Args.parse(["url", "token", "seconds", "frames", "format", "buffer_mb"])
	var given = args.values
	var seconds = 10.0
	if args.error == "" and not given.has("url"):
		args.error = "watch needs url=ws://HOST:PORT/ws/frames/NAME"
	var buffer_mb = 0.0
	for key in ["seconds", "frames", "buffer_mb"]:
		if args.error == "" and given.has(key):
			var n = Args.number(given[key], key)
			args.error = n.error
			if key == "seconds":
				seconds = n.value
			elif key == "frames":
				_max_frames = int(n.value)
			else:
				buffer_mb = n.value
	if args.error != "":
		print(args.error)
		quit(2)
		return
	_end_at = OS.get_ticks_msec() + int(seconds * 1000)
	_client = FrameClient.new()
	_client.url = given.url
	_client.token = given.get("token", "")
	_client.format = given.get("format", "auto")
	if buffer_mb > 0:
		_client.buffer_mb = buffer_mb  # tests show what Godot's default 64 KB (0.0625) does to 1 MiB frames
	_client.connect("frame_received", self, "_on_frame")
	_client.connect("state_changed", self, "_on_state")
	root.add_child(_client)


func _idle(_delta: float) -> bool:
	if _client != null and not _decode.empty():
		_poll_ms += _client.poll_ms
	if _client != null and OS.get_ticks_msec() >= _end_at:
		_summary()
	return false


func _on_state(state: String, why: String) -> void:
	print(to_json({"event": "state", "state": state, "reason": why}))


func _on_frame(header: Dictionary) -> void:
	var now = OS.get_ticks_usec()
	if _decode.empty():
		_first_at = now
	_last_at = now
	_decode.append(_client.decode_ms)
	print(to_json({"event": "frame", "seq": header.get("seq"), "encoding": header.get("encoding"),
		"bytes": header.get("payload_size"), "decode_ms": _client.decode_ms, "skipped": _client.skipped}))
	if _max_frames > 0 and _decode.size() >= _max_frames:
		_summary()


func _summary() -> void:
	var seconds = (_last_at - _first_at) / 1000000.0
	var sorted = _decode.duplicate()
	sorted.sort()
	var n = sorted.size()
	var skipped = _client.skipped
	_client.stop()
	_client = null
	print(to_json({"event": "summary", "frames": n, "seconds": seconds,
		"fps": (n - 1) / seconds if n > 1 and seconds > 0 else 0.0,
		"decode_ms": {"p50": sorted[n / 2] if n > 0 else null, "p99": sorted[min(n - 1, n * 99 / 100)] if n > 0 else null},
		"skipped": skipped, "poll_ms": _poll_ms}))
	quit(0)
