"""How ``streamkit tail`` prints a record: one line a person can follow, or one JSON object.

Item images are left out unless the caller asks for them: a stream record carries whole items
(customer data, tokens, addresses), and tail output ends up in terminals, CI logs and tickets.
What is always shown identifies the change without its content: time, event name, sequence
number, table, the item's keys and, for a MODIFY, the *names* of the attributes that changed.

Values are shown as plain JSON: numbers as numbers (integers exactly; a fraction as a float when
the float prints back to the same decimal, otherwise as its decimal text), binary as base64,
sets as sorted lists.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from streamkit.exceptions import StreamkitError
from streamkit.records import StreamRecord

__all__ = ["as_json", "compact_json", "format_line", "jsonable", "record_fields"]


def jsonable(value: Any) -> Any:
    """A deserialized DynamoDB value as something ``json.dumps`` writes faithfully."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=lambda v: (str(type(v)), v))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def compact_json(value: Any) -> str:
    return json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _changed(record: StreamRecord) -> list[str] | None:
    """Changed attribute names of a MODIFY that carries both images; None otherwise."""
    if record.event_name != "MODIFY":
        return None
    if record.raw_old_image is None or record.raw_new_image is None:
        return None  # KEYS_ONLY / NEW_IMAGE / OLD_IMAGE streams: nothing to compare
    return sorted(record.changed_attributes())


def record_fields(record: StreamRecord, *, shard_id: str, images: bool) -> dict[str, Any]:
    """The record as a JSON-ready dict; ``new_image``/``old_image`` only with ``images``."""
    fields: dict[str, Any] = {
        "approximate_creation_time": _iso(record.approximate_creation_time),
        "event_name": record.event_name,
        "sequence_number": record.sequence_number,
        "table_name": record.table_name,
        "shard_id": shard_id,
        "keys": jsonable(record.keys),
    }
    if record.is_ttl_delete:
        fields["ttl_delete"] = True
    changed = _changed(record)
    if changed is not None:
        fields["changed_attributes"] = changed
    if images:
        if record.raw_new_image is not None:
            fields["new_image"] = jsonable(record.new_image)
        if record.raw_old_image is not None:
            fields["old_image"] = jsonable(record.old_image)
    return fields


def as_json(record: StreamRecord, *, shard_id: str, images: bool) -> str:
    """One JSON object on one line (see :func:`record_fields`); a record that cannot be read
    gives ``{"sequence_number", "shard_id", "error"}``."""
    try:
        fields = record_fields(record, shard_id=shard_id, images=images)
    except (StreamkitError, ValueError, LookupError) as exc:
        fields = {"sequence_number": record.item_identifier or None, "shard_id": shard_id}
        fields["error"] = str(exc)
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def format_line(record: StreamRecord, *, images: bool) -> str:
    """``2024-05-01T12:00:03Z  MODIFY  <seq>  <table>  {"pk":"A"}  changed: status,total``

    With ``images``, ``  new: {...}  old: {...}`` follow. A record that cannot be read gives
    ``<seq>  unreadable record: <why>``. Without ``images`` only the keys are decoded, so no
    error message can quote an image's value either.
    """
    try:
        name = record.event_name
        parts = [
            _iso(record.approximate_creation_time),
            f"{name} (TTL)" if record.is_ttl_delete else f"{name:<6}",
            record.sequence_number,
            record.table_name or "?",
            compact_json(record.keys),
        ]
        changed = _changed(record)
        if changed is not None:
            parts.append("changed: " + (",".join(changed) if changed else "(nothing)"))
        if images:
            if record.raw_new_image is not None:
                parts.append("new: " + compact_json(record.new_image))
            if record.raw_old_image is not None:
                parts.append("old: " + compact_json(record.old_image))
    except (StreamkitError, ValueError, LookupError) as exc:
        return f"{record.item_identifier or '?'}  unreadable record: {exc}"
    return "  ".join(parts)
