extends HTTPRequest
# One JSON request to the daemon's API (protocols/web.md), then it frees itself. Every outcome
# becomes the daemon's reply shape, so callers handle one thing: {ok: true, ...} or
# {ok: false, code, error}.

signal replied(reply: Dictionary)

var _base := ""


func send(
	base: String, token: String, method: HTTPClient.Method, path: String, body = null
) -> void:
	_base = base
	timeout = 10.0  # seconds: a daemon that accepts and never answers is as good as none
	var headers := PackedStringArray(["Content-Type: application/json"])
	if token != "":
		headers.append("Authorization: Bearer " + token)
	request_completed.connect(_on_completed)
	var data := "" if body == null else JSON.stringify(body)
	var err := request(base + path, headers, method, data)
	if err != OK:
		# Emitted on the next frame: the caller is already waiting for the signal by then.
		var why := "cannot send a request to %s (Godot error %d)" % [base, err]
		_finish.call_deferred({"ok": false, "code": "unreachable", "error": why})


func _on_completed(
	result: int, status: int, _headers: PackedStringArray, body: PackedByteArray
) -> void:
	if result != RESULT_SUCCESS:
		var why := "no daemon answers at %s (is `tha4bridge serve --http` running there?)" % _base
		_finish({"ok": false, "code": "unreachable", "error": why})
		return
	var parsed = JSON.parse_string(body.get_string_from_utf8())
	if typeof(parsed) != TYPE_DICTIONARY or not parsed.has("ok"):
		var why := "%s answered HTTP %d without the daemon's JSON reply" % [_base, status]
		_finish({"ok": false, "code": "bad_reply", "error": why})
		return
	parsed["http_status"] = status
	_finish(parsed)


func _finish(reply: Dictionary) -> void:
	replied.emit(reply)
	queue_free()
