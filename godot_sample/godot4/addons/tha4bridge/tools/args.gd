# The tools' command line: `key=value` words after the script. Godot 4 hands words after `--` to
# the script only (get_cmdline_user_args); words before it arrive with Godot's own options, which
# have no '='. Both are read, so `-- url=...` and plain `url=...` work alike. A tool names the keys
# it needs; anything else is refused with one line.

static func parse(allowed: Array, any_other: bool = false) -> Dictionary:
	# {values: {key: value}, error: ""}; any_other: keys not in `allowed` are kept (pose.gd's names)
	var values := {}
	for word in OS.get_cmdline_args() + OS.get_cmdline_user_args():
		var eq: int = word.find("=")
		if eq <= 0 or word.begins_with("-"):
			continue
		var key: String = word.substr(0, eq)
		if not any_other and not key in allowed:
			var why := (
				"unknown argument '%s' (this tool takes %s)"
				% [key, ", ".join(PackedStringArray(allowed))]
			)
			return {"values": values, "error": why}
		values[key] = word.substr(eq + 1)
	return {"values": values, "error": ""}


static func number(text: String, what: String) -> Dictionary:
	# {value: float, error: ""}: a tool's number argument, refused in words when it is not one
	if not text.is_valid_float():
		return {"value": 0.0, "error": "%s must be a number, got '%s'" % [what, text]}
	return {"value": float(text), "error": ""}
