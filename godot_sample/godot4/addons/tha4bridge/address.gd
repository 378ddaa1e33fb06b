# Where the daemon is. Users paste many forms of the same address (the banner's viewer URL,
# a ws:// feed URL, just HOST:PORT), so everything here starts from one parsed form: the HTTP
# base, the stream and the token the URL named, if any.

static func parse(url: String) -> Dictionary:
	# {base: "http://HOST:PORT", host, stream (or ""), token (or ""), error (or "")}
	var out := {"base": "", "host": "", "stream": "", "token": "", "error": ""}
	var rest := url.strip_edges()
	var query := ""
	var q := rest.find("?")
	if q >= 0:
		query = rest.substr(q + 1)
		rest = rest.substr(0, q)
	var scheme := "http"
	var sep := rest.find("://")
	if sep >= 0:
		scheme = rest.substr(0, sep).to_lower()
		rest = rest.substr(sep + 3)
	if not scheme in ["http", "https", "ws", "wss"]:
		out.error = (
			"the daemon's URL must start with http://, https://, ws:// or wss://, got %s" % url
		)
		return out
	var slash := rest.find("/")
	var authority := rest if slash < 0 else rest.substr(0, slash)
	var path := "" if slash < 0 else rest.substr(slash)
	if authority == "":
		out.error = "the daemon's URL names no host: %s" % url
		return out
	if authority.is_valid_int():
		authority = "127.0.0.1:" + authority  # a port alone, as `serve --http 8080` takes it
	out.host = host_name(authority)
	var secure: bool = scheme in ["https", "wss"]
	out.base = ("https://" if secure else "http://") + authority
	# The pages' paths name the stream last: /ws/frames/NAME, /view/NAME, /panel/NAME.
	for prefix in ["/ws/frames/", "/view/", "/panel/"]:
		if path.begins_with(prefix):
			out.stream = path.substr(prefix.length()).uri_decode()
	for pair in query.split("&", false):
		if pair.begins_with("token="):
			out.token = pair.substr(6).uri_decode()
	return out


static func host_name(authority: String) -> String:
	# "127.0.0.1:8080" -> "127.0.0.1", "[::1]:8080" -> "::1"
	if authority.begins_with("["):
		return authority.substr(1, authority.find("]") - 1)
	var colon := authority.rfind(":")
	return authority if colon < 0 else authority.substr(0, colon)


static func is_loopback(host: String) -> bool:
	# The same machine: raw frames cost nothing to decode there (the browser viewer's rule,
	# widened to 127/8).
	var h := host.to_lower()
	return h == "localhost" or h == "::1" or h.begins_with("127.")


static func frames_url(base: String, stream: String, format: String, token: String) -> String:
	var ws := (
		"wss://" + base.substr(8) if base.begins_with("https://") else "ws://" + base.substr(7)
	)
	var url := "%s/ws/frames/%s?format=%s" % [ws, stream.uri_encode(), format]
	if token != "":
		url += "&token=" + token.uri_encode()  # the browser's way; the same URL works everywhere
	return url
