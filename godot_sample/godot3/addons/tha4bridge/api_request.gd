extends HTTPRequest
# One JSON request to the daemon's API (protocols/web.md), then it frees itself. Every outcome becomes
# the daemon's reply shape, so callers handle one thing: {ok: true, ...} or {ok: false, code, error}.

signal replied(reply)

var _base = ""


func send(base: String, token: String, method: int, path: String, body = null) -> void:
	_base = base
	timeout = 10  # seconds: a daemon that accepts and never answers is as good as none
	var headers = ["Content-Type: application/json"]
	if token != "":
		headers.append("Authorization: Bearer " + token)
	connect("request_completed", self, "_on_completed")
	var data = "" if body == null else to_json(body)
	var err = request(base + path, headers, true, method, data)
	if err != OK:
		# Emitted on the next frame: the caller is already waiting for the signal by then.
		call_deferred("_finish", {"ok": false, "code": "unreachable",
			"error": "cannot send a request to %s (Godot error %d)" % [base, err]})


func _on_completed(result: int, status: int, _headers, body: PoolByteArray) -> void:
	if result != RESULT_SUCCESS:
		_finish({"ok": false, "code": "unreachable",
			"error": "no daemon answers at %s (is `tha4bridge serve --http` running there?)" % _base})
		return
	var parsed = JSON.parse(body.get_string_from_utf8())
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY or not parsed.result.has("ok"):
		_finish({"ok": false, "code": "bad_reply",
			"error": "%s answered HTTP %d without the daemon's JSON reply" % [_base, status]})
		return
	var reply = parsed.result
	reply["http_status"] = status
	_finish(reply)


func _finish(reply: Dictionary) -> void:
	emit_signal("replied", reply)
	queue_free()
