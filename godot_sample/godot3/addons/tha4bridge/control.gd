extends Node
class_name Tha4Control
# Drives the character through the daemon's JSON API (protocols/web.md, commands as in control.md).
# Every method sends one command and is a coroutine: `var reply = yield(control.get_pose(), "completed")`,
# or ignore what it returns and listen to the signals. A refusal arrives as `request_failed` with the
# daemon's code (bad_pose, unknown_stream, unauthorized, ...; `unreachable` when no daemon answers).

signal replied(command, reply)
signal request_failed(command, code, message)

const Address = preload("address.gd")
const ApiRequest = preload("api_request.gd")

export var url = "http://127.0.0.1:8080"  # the daemon's --http address; a stream or token in it counts
export var stream = "demo"  # "" = the daemon's only stream
export var token = ""  # needed when the daemon is bound beyond loopback (`serve` prints it)


func set_pose(values: Dictionary, hold: float = 5.0):
	# hold: seconds this pose overrides a tracker; 0 = until release()
	return command({"cmd": "set_pose", "pose": values, "hold": hold})


func set_expression(expression: String, fade: float = 0.3, intensity: float = 1.0):
	return command({"cmd": "set_expression", "name": expression, "fade": fade, "intensity": intensity})


func talk(on: bool):
	return command({"cmd": "talk", "on": on})


func mouth(level: float):
	return command({"cmd": "mouth", "level": level})


func inject(source: String, values: Dictionary, weight: float = 1.0, mode: String = "set",
		timeout: float = 1.0):
	return command({"cmd": "inject", "source": source, "params": values, "weight": weight, "mode": mode,
		"timeout": timeout})


func release(source: String = ""):
	# "" releases the set_pose hold and every injection; a name drops that source's injection only
	var body = {"cmd": "release"}
	if source != "":
		body["source"] = source
	return command(body)


func get_pose():
	return command({"cmd": "get_pose"})


func expressions():
	return command({"cmd": "expressions"})


func command(body: Dictionary):
	# Any control.md command; `stream` is added unless the body names one.
	var where = Address.parse(url)
	var cmd = str(body.get("cmd", ""))
	if where.error != "":
		yield(get_tree(), "idle_frame")  # still a coroutine, so callers may always yield on it
		return _answer(cmd, {"ok": false, "code": "bad_request", "error": where.error})
	var request = body.duplicate()
	var wanted = where.stream if where.stream != "" else stream  # a stream named in the URL wins
	if not request.has("stream") and wanted != "" and cmd != "expressions":
		request["stream"] = wanted
	var sender = ApiRequest.new()
	add_child(sender)
	sender.send(where.base, token if token != "" else where.token, HTTPClient.METHOD_POST, "/api/command",
		request)
	var reply = yield(sender, "replied")
	return _answer(cmd, reply)


func _answer(cmd: String, reply: Dictionary) -> Dictionary:
	if reply.get("ok", false):
		emit_signal("replied", cmd, reply)
	else:
		emit_signal("request_failed", cmd, str(reply.get("code", "internal")), str(reply.get("error", "")))
	return reply
