"""tha4bridge: Talking Head Anime 4 students as a real-time character for games and streaming tools."""

__version__ = "0.1.0"
