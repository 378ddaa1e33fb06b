class_name Tha4FrameClient
extends Node
# Shows the daemon's newest frame: one WebSocket to /ws/frames/<stream> (protocols/web.md), one
# Image and one ImageTexture updated in place, handed to a target node (a TextureRect, Sprite2D,
# ...). Connects when it enters the tree (unless `autostart` is off) and comes back on its own
# when the daemon restarts.

## The frame header as a Dictionary (seq, pose, t_render_end, alpha, ...).
signal frame_received(header: Dictionary)
## "stopped", "connecting", "connected", "waiting" (+ why, in words).
signal state_changed(state: String, reason: String)

const Address = preload("address.gd")
const FrameMessage = preload("frame_message.gd")
const ApiRequest = preload("api_request.gd")
const FIRST_RETRY = 0.5  # seconds; doubled after each failed attempt, up to LAST_RETRY
const LAST_RETRY = 5.0

## The daemon's --http address; a stream or token in it counts.
@export var url := "ws://127.0.0.1:8080"
@export var stream := "demo"
## Needed when the daemon is bound beyond loopback (`serve` prints it).
@export var token := ""
## auto: raw RGBA from this machine (1 MiB a frame, nothing to decode), lossless WebP from another.
@export_enum("auto", "rgba", "png", "webp") var format := "auto"
## The node to show the texture on; its `material` is set too.
@export var target: NodePath
@export var autostart := true
## Inbound WebSocket buffer: Godot's 64 KB default cannot hold a 1 MiB frame.
@export var buffer_mb := 16.0

var texture := ImageTexture.new()
var image := Image.new()
var material := CanvasItemMaterial.new()  # the blend mode follows the frames' alpha
var header := {}  # the newest frame's header
var state := "stopped"
var reason := ""
var frames := 0  # frames shown
var skipped := 0  # frames received but replaced by a newer one before being shown
var decode_ms := 0.0  # the newest frame's decode and texture upload time
var poll_ms := 0.0  # the last poll: reading the socket and unpacking WebSocket messages

var _ws: WebSocketPeer = null
var _was_open := false
var _retry_in := FIRST_RETRY
var _retry_at := 0


func _ready() -> void:
	if autostart:
		start()


func _exit_tree() -> void:
	stop()


func start() -> void:
	stop()
	_open()


func stop() -> void:
	if _ws != null:
		_ws.close()
		_ws = null
	_set_state("stopped", "")


func feed_url() -> String:
	var where := Address.parse(url)
	var wanted: String = where.stream if where.stream != "" else stream
	var chosen := format
	if chosen == "auto":
		chosen = "rgba" if Address.is_loopback(where.host) else "webp"
	var key: String = token if token != "" else where.token
	return Address.frames_url(where.base, wanted, chosen, key)


func _open() -> void:
	var where := Address.parse(url)
	if where.error != "":
		_set_state("stopped", where.error)  # a typo does not get better by retrying
		return
	_ws = WebSocketPeer.new()
	# Set before connecting; the queue bound covers both directions (we send nothing).
	_ws.inbound_buffer_size = int(buffer_mb * 1024 * 1024)
	_ws.max_queued_packets = 64
	_was_open = false
	var err := _ws.connect_to_url(feed_url())
	if err != OK:
		_ws = null
		_wait("cannot open %s (Godot error %d)" % [feed_url(), err])
		return
	_set_state("connecting", "")


func _process(_delta: float) -> void:
	if _ws == null:
		if state == "waiting" and Time.get_ticks_msec() >= _retry_at:
			_open()
		return
	var polled := Time.get_ticks_usec()
	_ws.poll()
	poll_ms = (Time.get_ticks_usec() - polled) / 1000.0
	var ready_state := _ws.get_ready_state()
	if ready_state == WebSocketPeer.STATE_OPEN:
		if not _was_open:
			_was_open = true
			_set_state("connected", "")
		_drain()
	elif ready_state == WebSocketPeer.STATE_CLOSED:
		_ws = null
		if _was_open:
			_wait("the daemon closed the frame feed")
		else:
			_wait("cannot connect to %s" % feed_url())
			_diagnose()


func _drain() -> void:
	# Every packet waiting is read, only the newest is decoded: a slow frame never makes a backlog.
	var newest := PackedByteArray()
	var count := 0
	while _ws.get_available_packet_count() > 0:
		newest = _ws.get_packet()
		count += 1
	if count == 0:
		return
	skipped += count - 1
	var started := Time.get_ticks_usec()
	var message := FrameMessage.parse(newest)
	var problem: String = message.get("error", "")
	if problem == "":
		problem = FrameMessage.decode_into(image, message.header, message.payload)
	if problem != "":
		push_warning("tha4bridge: " + problem)
		return
	_show(message.header)
	decode_ms = (Time.get_ticks_usec() - started) / 1000.0
	frames += 1
	_retry_in = FIRST_RETRY  # a frame arrived: the next outage starts its backoff afresh
	frame_received.emit(header)


func _show(new_header: Dictionary) -> void:
	var size_changed := (
		image.get_width() != texture.get_width() or image.get_height() != texture.get_height()
	)
	if size_changed:
		texture.set_image(image)  # the same texture object, so targets keep showing it
	else:
		texture.update(image)
	header = new_header
	var premultiplied := str(header.get("alpha", "straight")) == "premultiplied"
	material.blend_mode = (
		CanvasItemMaterial.BLEND_MODE_PREMULT_ALPHA
		if premultiplied
		else CanvasItemMaterial.BLEND_MODE_MIX
	)
	var node: Node = get_node_or_null(target) if not target.is_empty() else null
	if node != null and node.get("texture") != texture:
		node.set("texture", texture)
		var item := node as CanvasItem
		if item != null:
			item.material = material


func _wait(why: String) -> void:
	_retry_at = Time.get_ticks_msec() + int(_retry_in * 1000)
	_retry_in = minf(_retry_in * 2.0, LAST_RETRY)
	_set_state("waiting", why)


func _diagnose() -> void:
	# A refused WebSocket says nothing about why; the JSON API does: no daemon, a token, or no
	# such stream.
	var where := Address.parse(url)
	var asker := ApiRequest.new()
	add_child(asker)
	var wanted: String = where.stream if where.stream != "" else stream
	asker.replied.connect(_on_diagnosis.bind(wanted))
	var key: String = token if token != "" else where.token
	asker.send(where.base, key, HTTPClient.METHOD_GET, "/api/streams")


func _on_diagnosis(reply: Dictionary, wanted: String) -> void:
	if state != "waiting":
		return  # connected meanwhile
	var why := ""
	if not reply.get("ok", false):
		why = str(reply.get("error", ""))
	else:
		var names := PackedStringArray()
		for s in reply.get("streams", []):
			names.append(str(s.get("name", "")))
		if not wanted in names:
			why = (
				"the daemon has no stream named '%s' (its streams: %s)" % [wanted, ", ".join(names)]
			)
	if why != "":
		_set_state("waiting", why)


func _set_state(new_state: String, why: String) -> void:
	if new_state == state and why == reason:
		return
	state = new_state
	reason = why
	state_changed.emit(state, reason)
