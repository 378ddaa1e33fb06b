class_name Tha4Control
extends Node
# Drives the character through the daemon's JSON API (protocols/web.md, commands as in
# control.md). Every method sends one command and can be awaited:
# `var reply := await control.get_pose()`, or ignore what it returns and listen to the signals.
# A refusal arrives as `request_failed` with the daemon's code (bad_pose, unknown_stream,
# unauthorized, ...; `unreachable` when no daemon answers).

signal replied(command: String, reply: Dictionary)
signal request_failed(command: String, code: String, message: String)

const Address = preload("address.gd")
const ApiRequest = preload("api_request.gd")

## The daemon's --http address; a stream or token in it counts.
@export var url := "http://127.0.0.1:8080"
## "" = the daemon's only stream.
@export var stream := "demo"
## Needed when the daemon is bound beyond loopback (`serve` prints it).
@export var token := ""


func set_pose(values: Dictionary, hold: float = 5.0) -> Dictionary:
	# hold: seconds this pose overrides a tracker; 0 = until release()
	return await command({"cmd": "set_pose", "pose": values, "hold": hold})


func set_expression(expression: String, fade: float = 0.3, intensity: float = 1.0) -> Dictionary:
	var body := {"cmd": "set_expression", "name": expression, "fade": fade, "intensity": intensity}
	return await command(body)


func talk(on: bool) -> Dictionary:
	return await command({"cmd": "talk", "on": on})


func mouth(level: float) -> Dictionary:
	return await command({"cmd": "mouth", "level": level})


func inject(
	source: String,
	values: Dictionary,
	weight: float = 1.0,
	mode: String = "set",
	timeout: float = 1.0
) -> Dictionary:
	var body := {
		"cmd": "inject",
		"source": source,
		"params": values,
		"weight": weight,
		"mode": mode,
		"timeout": timeout,
	}
	return await command(body)


func release(source: String = "") -> Dictionary:
	# "" releases the set_pose hold and every injection; a name drops that source's injection only
	var body := {"cmd": "release"}
	if source != "":
		body["source"] = source
	return await command(body)


func get_pose() -> Dictionary:
	return await command({"cmd": "get_pose"})


func expressions() -> Dictionary:
	return await command({"cmd": "expressions"})


func command(body: Dictionary) -> Dictionary:
	# Any control.md command; `stream` is added unless the body names one.
	var where := Address.parse(url)
	var cmd := str(body.get("cmd", ""))
	if where.error != "":
		await get_tree().process_frame  # still a coroutine, so callers may always await it
		return _answer(cmd, {"ok": false, "code": "bad_request", "error": where.error})
	var request := body.duplicate()
	var wanted: String = where.stream if where.stream != "" else stream  # the URL's stream wins
	if not request.has("stream") and wanted != "" and cmd != "expressions":
		request["stream"] = wanted
	var sender := ApiRequest.new()
	add_child(sender)
	var key: String = token if token != "" else where.token
	sender.send(where.base, key, HTTPClient.METHOD_POST, "/api/command", request)
	var reply: Dictionary = await sender.replied
	return _answer(cmd, reply)


func _answer(cmd: String, reply: Dictionary) -> Dictionary:
	if reply.get("ok", false):
		replied.emit(cmd, reply)
	else:
		request_failed.emit(cmd, str(reply.get("code", "internal")), str(reply.get("error", "")))
	return reply
