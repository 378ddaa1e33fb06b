"""distiller: build a THA4 student for one character image from a teacher."""
