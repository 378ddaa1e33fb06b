# One message of the frame WebSocket (protocols/web.md): a u32 little-endian header length, the JSON
# header, then the payload. Pure functions, shared by the frame client and the tools.

static func parse(message: PackedByteArray) -> Dictionary:
	# {header: Dictionary, payload: PackedByteArray} or {error: one sentence}
	var size := message.size()
	if size < 4:
		return {
			"error": "a frame message of %d bytes is shorter than its 4-byte length prefix" % size
		}
	var n := message.decode_u32(0)
	if n == 0 or 4 + n > size:
		return {"error": "a frame message's header length %d does not fit its %d bytes" % [n, size]}
	var parsed = JSON.parse_string(message.slice(4, 4 + n).get_string_from_utf8())
	if typeof(parsed) != TYPE_DICTIONARY:
		return {"error": "a frame message's header is not a JSON object"}
	return {"header": parsed, "payload": message.slice(4 + n)}


static func decode_into(image: Image, header: Dictionary, payload: PackedByteArray) -> String:
	# Fills `image` in place with the frame's RGBA8 pixels; "" or the reason it could not.
	var encoding := str(header.get("encoding", ""))
	if encoding == "rgba":
		var w := int(header.get("width", 0))
		var h := int(header.get("height", 0))
		var stride := int(header.get("stride", w * 4))
		if w <= 0 or h <= 0 or stride != w * 4 or payload.size() != w * h * 4:
			return (
				"a raw frame's size does not match its header (%dx%d, %d bytes)"
				% [w, h, payload.size()]
			)
		image.set_data(w, h, false, Image.FORMAT_RGBA8, payload)
		return ""
	var err := OK
	if encoding == "png":
		err = image.load_png_from_buffer(payload)
	elif encoding == "webp":
		err = image.load_webp_from_buffer(payload)
	else:
		return "a frame's encoding %s is none of rgba, png, webp" % encoding
	if err != OK:
		return "a %s frame could not be decoded (error %d)" % [encoding, err]
	if image.get_format() != Image.FORMAT_RGBA8:
		image.convert(Image.FORMAT_RGBA8)  # an opaque frame may decode as RGB8
	return ""


static func to_straight(image: Image) -> void:
	# Premultiplied -> straight alpha, in place: c * 255 / a rounded half up, in integers so
	# that every engine gives the same bytes ((c * 510 + a) / (2 a)); no colour under alpha 0.
	# For files (PNG stores straight alpha); a live texture shows premultiplied frames with a
	# blend mode instead, at no cost.
	var data := image.get_data()
	var i := 3
	var size := data.size()
	while i < size:
		var a := data[i]
		if a == 0:
			data[i - 3] = 0
			data[i - 2] = 0
			data[i - 1] = 0
		elif a < 255:
			data[i - 3] = mini(255, (data[i - 3] * 510 + a) / (2 * a))
			data[i - 2] = mini(255, (data[i - 2] * 510 + a) / (2 * a))
			data[i - 1] = mini(255, (data[i - 1] * 510 + a) / (2 * a))
		i += 4
	image.set_data(image.get_width(), image.get_height(), false, Image.FORMAT_RGBA8, data)
