"""streamkit: turn a DynamoDB table into a reactive, event-driven system.

Public names are re-exported here; everything else is internal.
"""

from __future__ import annotations

from streamkit.codec import deserialize, deserialize_value, serialize, serialize_value
from streamkit.exceptions import DeserializationError, SerializationError, StreamkitError

__version__ = "0.1.0"

__all__ = [
    "DeserializationError",
    "SerializationError",
    "StreamkitError",
    "__version__",
    "deserialize",
    "deserialize_value",
    "serialize",
    "serialize_value",
]
