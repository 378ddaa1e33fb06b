extends SceneTree
# Test script (Godot 3): the frame client's feed URL for the address forms users paste, one JSON line each.

const FrameClient = preload("res://addons/tha4bridge/frame_client.gd")
const Address = preload("res://addons/tha4bridge/address.gd")
const URLS = ["ws://127.0.0.1:8080", "http://localhost:8080/view/alice?token=abc", "192.168.1.20:8080",
	"wss://example.org/ws/frames/bob?format=png", "ftp://127.0.0.1:8080", "http://[::1]:9000/panel/x y", "8080"]


func _init() -> void:
	for url in URLS:
		var client = FrameClient.new()
		client.url = url
		client.token = "t/1" if url.begins_with("192.") else ""
		var where = Address.parse(url)
		print(to_json({"url": url, "feed": client.feed_url() if where.error == "" else "", "error": where.error}))
		client.free()
	quit(0)
