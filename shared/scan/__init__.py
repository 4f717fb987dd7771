"""The scan engine: what software an image contains."""
