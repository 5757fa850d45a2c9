"""The differential suite: generated paths through the engine and real backends (README.md)."""
