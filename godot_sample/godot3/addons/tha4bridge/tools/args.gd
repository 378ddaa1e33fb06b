# The tools' command line: `key=value` words after the script (Godot passes its own options too; they
# have no '='). A tool names the keys it needs; anything else is refused with one line.


static func parse(allowed: Array, any_other: bool = false) -> Dictionary:
	# {values: {key: value}, error: ""}; any_other: keys not in `allowed` are kept (pose.gd's names)
	var values = {}
	for word in OS.get_cmdline_args():
		var eq = word.find("=")
		if eq <= 0 or word.begins_with("-"):
			continue
		var key = word.substr(0, eq)
		if not any_other and not key in allowed:
			return {"values": values, "error": "unknown argument '%s' (this tool takes %s)" % [
				key, PoolStringArray(allowed).join(", ")]}
		values[key] = word.substr(eq + 1, word.length() - eq - 1)
	return {"values": values, "error": ""}


static func number(text: String, what: String) -> Dictionary:
	# {value: float, error: ""}: a tool's number argument, refused in words when it is not one
	if not text.is_valid_float():
		return {"value": 0.0, "error": "%s must be a number, got '%s'" % [what, text]}
	return {"value": float(text), "error": ""}
