"""Audit trail in S3: one JSON Lines object per change, exactly once, PII redacted.

Object key (Hive-style partitions, so Athena can prune by table, day and hour)::

    <prefix>/table=<table>/dt=YYYY-MM-DD/hour=HH/<SequenceNumber>.jsonl

The partition comes from the record's ApproximateCreationDateTime and the name from its
SequenceNumber (unique within a stream), so every delivery of one change names the same
object, however Lambda retries, bisects or re-cuts the batch. The put is conditional
(``If-None-Match: *``, S3 conditional writes: https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html):
a redelivery finds the object there (HTTP 412) and writes nothing, so even the versioned
bucket holds one version per change. The router's per-target completion markers skip most
redeliveries before they reach S3; the conditional put closes the window they leave (a crash
between the put and the marker). One small object per change trades request cost for that
guarantee; Athena reads them all the same (see docs/reference-app.md for the table DDL).

Line: ``event_id``, ``table``, ``keys``, ``event``, ``sequence_number``,
``approximate_creation_time`` (ISO 8601), ``changed`` (attribute names), ``old_status`` /
``new_status``, ``ttl_delete``, and the ``old_image`` / ``new_image`` with every attribute
named in ``redact`` (at any depth) replaced by ``"[REDACTED]"``: the archive keeps what
changed without keeping personal data.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from orderplatform.changes import is_noop
from streamkit import StreamRecord

__all__ = [
    "DEFAULT_REDACTED_FIELDS",
    "REDACTED",
    "AuditArchive",
    "audit_line",
    "object_key",
    "redact_fields",
]

DEFAULT_REDACTED_FIELDS = frozenset({"email", "phone", "address"})
REDACTED = "[REDACTED]"
# S3's answers to a conditional put that found the object (412) or raced another one (409).
_ALREADY_WRITTEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def redact_fields(setting: str | None) -> frozenset[str]:
    """The fields to redact from a comma-separated setting; the defaults when it is unset."""
    if setting is None:
        return DEFAULT_REDACTED_FIELDS
    return frozenset(f.strip() for f in setting.split(",") if f.strip())


def redacted(value: Any, fields: frozenset[str]) -> Any:
    """``value`` with every mapping entry named in ``fields`` replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if k in fields else redacted(v, fields) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v, fields) for v in value]
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Exact: integral numbers as JSON numbers, others as their decimal text.
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted(_json_value(v) for v in value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def audit_line(
    record: StreamRecord, *, redact: Iterable[str] = DEFAULT_REDACTED_FIELDS
) -> dict[str, Any]:
    """The audit line of one change (plain values)."""
    fields = frozenset(redact)
    line: dict[str, Any] = {
        "event_id": record.event_id,
        "table": record.table_name or "unknown",
        "keys": record.keys,
        "event": record.event_name,
        "sequence_number": record.sequence_number,
        "approximate_creation_time": record.approximate_creation_time.isoformat(),
        "changed": sorted(record.changed_attributes()),
    }
    if record.is_ttl_delete:
        line["ttl_delete"] = True
    for side, image in (("old", record.old_image), ("new", record.new_image)):
        if image is None:
            continue
        status = image.get("status")
        if status is not None:
            line[f"{side}_status"] = status
        line[f"{side}_image"] = redacted(image, fields)
    return line


def object_key(record: StreamRecord, prefix: str = "audit") -> str:
    at = record.approximate_creation_time
    table = record.table_name or "unknown"
    return f"{prefix}/table={table}/dt={at:%Y-%m-%d}/hour={at:%H}/{record.sequence_number}.jsonl"


class AuditArchive:
    """The audit fan-out target: ``archive(record)`` writes the record's line to S3 once.

    Returns ``"archived"``, ``"already archived"`` (a redelivery) or ``"unchanged"`` (a no-op
    MODIFY, not audited). Any other S3 error raises: the target fails and is retried.
    """

    def __init__(
        self,
        bucket: str,
        *,
        client: Any,
        prefix: str = "audit",
        redact: Iterable[str] = DEFAULT_REDACTED_FIELDS,
    ) -> None:
        if not bucket:
            raise ValueError("AuditArchive needs a bucket name")
        self.bucket = bucket
        self.client = client
        self.prefix = prefix.strip("/")
        self.redact = frozenset(redact)

    def __call__(self, record: StreamRecord) -> str:
        if is_noop(record):
            return "unchanged"
        body = json.dumps(
            audit_line(record, redact=self.redact),
            default=_json_value,
            separators=(",", ":"),
            sort_keys=True,
        )
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=object_key(record, self.prefix),
                Body=(body + "\n").encode(),
                ContentType="application/x-ndjson",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _ALREADY_WRITTEN:
                return "already archived"
            raise
        return "archived"
