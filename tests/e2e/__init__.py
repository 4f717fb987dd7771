"""End-to-end tests: the real agent process, real registries, the real broker."""
