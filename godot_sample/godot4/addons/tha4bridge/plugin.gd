@tool
extends EditorPlugin
# Adds the two nodes to the editor's "Create New Node" dialog. The scripts also work without the
# plugin enabled (class_name), so games that only use them from code need nothing here.


func _enter_tree() -> void:
	add_custom_type("Tha4FrameClient", "Node", preload("frame_client.gd"), null)
	add_custom_type("Tha4Control", "Node", preload("control.gd"), null)


func _exit_tree() -> void:
	remove_custom_type("Tha4FrameClient")
	remove_custom_type("Tha4Control")
