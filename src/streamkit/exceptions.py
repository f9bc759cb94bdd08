"""Errors raised by streamkit. Each carries the details a caller needs to act on it."""

from __future__ import annotations

__all__ = ["DeserializationError", "SerializationError", "StreamkitError"]


class StreamkitError(Exception):
    """Base class for every error streamkit raises on purpose."""


class DeserializationError(StreamkitError, ValueError):
    """A DynamoDB attribute value could not be converted to Python.

    ``path`` names the attribute, e.g. ``order.lines[2].qty``; ``reason`` says what was wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = path or "<root>"
        super().__init__(f"{where}: {reason}")


class SerializationError(StreamkitError, ValueError):
    """A Python value could not be converted to a DynamoDB attribute value."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = path or "<root>"
        super().__init__(f"{where}: {reason}")
