"""Typed, lazily decoded DynamoDB stream records.

``parse_event(event)`` turns a Lambda DynamoDB Streams event into ``StreamRecord`` objects.
The envelope is described at
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-dynamodb-event-example
and the record body at
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html.

Cost model (why the class looks the way it does):

- Constructing a record reads nothing from it: every field, the ``SequenceNumber``
  included, is read from ``raw``, and checked, when first asked for. A batch whose handler
  looks at nothing pays for nothing but an object per record, which matters because that
  is what Powertools' BatchProcessor costs (reading even one field of each of 1,000 freshly
  parsed records costs more than the rest of a no-op batch, in cache misses).
- ``keys``, ``new_image`` and ``old_image`` are deserialized on first access and cached,
  so a handler (and the router, filters, idempotency) can read them many times for the
  price of one decode.
- The raw DynamoDB-JSON maps (``raw_keys``, ``raw_new_image``, ``raw_old_image``) are
  exposed as-is for pattern matching, which works on the typed form.

Malformed records: ``parse_event`` never raises because of one bad record.

- A record that cannot even be identified (not an object, no ``dynamodb`` body, no
  non-empty string ``SequenceNumber``) has ``record.error``, an ``InvalidRecordError``,
  ``item_identifier == ""``, and every field raises that error.
- Any other field is checked when read: an unknown ``eventName``, missing ``Keys``, a bad
  creation time or size raise ``InvalidRecordError`` naming the field; a bad image value
  raises ``DeserializationError``. Inside ``process_batch`` the handler's read raises, so
  it is a failure of that record alone. ``record.validate()`` checks everything at once.

``parse_event`` raises ``InvalidEventError`` only when the event is not a stream event at
all (not a mapping, or ``Records`` missing or not a list).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from json.encoder import encode_basestring as _json_string
from typing import Any, Final, Literal

from streamkit.codec import deserialize
from streamkit.exceptions import ImageNotAvailableError, InvalidEventError, InvalidRecordError

__all__ = ["MISSING", "EventName", "NumberMode", "StreamRecord", "parse_event"]

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
NumberMode = Literal["decimal", "native"]

_NUMBER_MODES: Final = ("decimal", "native")
_KEY_TAGS: Final = ("S", "N", "B")
# userIdentity of a delete made by DynamoDB's TTL process:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html
_TTL_PRINCIPAL: Final = "dynamodb.amazonaws.com"


class _Unread(Enum):
    """``StreamRecord._seq`` before the record was looked at."""

    TOKEN = 0


class _Missing:
    """The "attribute absent" side of a change (distinct from a NULL attribute, ``None``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def parse_event(event: Any, *, numbers: NumberMode = "decimal") -> list[StreamRecord]:
    """Parse a Lambda DynamoDB Streams event into records, in stream order.

    ``numbers`` is passed to ``streamkit.codec.deserialize`` when images are read:
    ``"decimal"`` (exact, the default) or ``"native"`` (int/float).

    Never raises because of one malformed record (see ``StreamRecord.error``); raises
    ``InvalidEventError`` if the event is not a mapping with a ``Records`` list.
    """
    if numbers not in _NUMBER_MODES:
        raise ValueError(f"numbers must be 'decimal' or 'native', not {numbers!r}")
    if not isinstance(event, Mapping):
        raise InvalidEventError(
            f"expected a mapping with a 'Records' list, got {type(event).__name__}"
        )
    raw_records = event.get("Records")
    if not isinstance(raw_records, list):
        found = "missing" if raw_records is None else type(raw_records).__name__
        raise InvalidEventError(f"'Records' must be a list, got {found}")
    return [StreamRecord(raw, numbers=numbers) for raw in raw_records]


class StreamRecord:
    """One DynamoDB stream record. Read-only; decoded lazily; cheap to construct.

    The dicts returned by ``keys``, ``new_image`` and ``old_image`` are cached and shared by
    every reader of the record: treat them as read-only.
    """

    # Unset slots raise AttributeError; the lazy properties use that as "not computed yet",
    # which keeps __init__ to a handful of stores.
    __slots__ = (
        "_body",
        "_error",
        "_item_key",
        "_keys",
        "_new_image",
        "_numbers",
        "_old_image",
        "_raw",
        "_seq",
    )

    _raw: Any
    _numbers: NumberMode
    _body: Mapping[str, Any]
    _seq: str | _Unread | None
    _error: InvalidRecordError | None
    _keys: dict[str, Any]
    _new_image: dict[str, Any] | None
    _old_image: dict[str, Any] | None
    _item_key: str

    def __init__(self, raw: Any, *, numbers: NumberMode = "decimal") -> None:
        # Nothing is read here: even the SequenceNumber is looked up on first use. A batch's
        # records are a few MB of freshly parsed JSON; touching each record's dicts costs
        # cache misses that dwarf the rest of a no-op handler's per-record work.
        self._raw = raw
        self._numbers = numbers
        # A sentinel rather than an unset slot: an AttributeError costs more than the store.
        self._seq = _Unread.TOKEN

    def _identify(self) -> None:
        """Find the body and SequenceNumber (once), or why they cannot be found."""
        raw = self._raw
        try:
            body = raw["dynamodb"]
            seq = body["SequenceNumber"]
        except Exception:  # diagnosed precisely by _diagnose, off the fast path
            seq = None
        if type(seq) is str and seq:
            self._body = body
            self._seq = seq
            self._error = None
        else:
            self._seq = None
            self._error = _diagnose(raw)

    # --- identity and validity --------------------------------------------------------------

    @property
    def raw(self) -> Any:
        """The record exactly as it appeared in the event."""
        return self._raw

    @property
    def error(self) -> InvalidRecordError | None:
        """Why this record cannot be identified (no readable SequenceNumber), or ``None``."""
        if self._seq is _Unread.TOKEN:
            self._identify()
        return self._error

    @property
    def sequence_number(self) -> str:
        """``dynamodb.SequenceNumber``: the record's position in its shard, and the
        ``itemIdentifier`` of partial batch responses."""
        seq = self._sequence_number_or_none()
        if seq is None:
            raise self._broken()
        return seq

    @property
    def item_identifier(self) -> str:
        """What a partial batch response reports for this record: the SequenceNumber, or
        ``""`` when even that cannot be read. Lambda treats an empty ``itemIdentifier`` as a
        failure of the whole batch, the only safe answer for a record it cannot name:
        https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html"""
        return self._sequence_number_or_none() or ""

    def validate(self) -> None:
        """Check every field now, raising the first ``InvalidRecordError`` (otherwise each
        is checked when first read). Images are checked for shape, not decoded."""
        _ = (
            self.event_id,
            self.event_name,
            self.item_key,
            self.approximate_creation_time,
            self.size_bytes,
            self.stream_view_type,
            self.raw_new_image,
            self.raw_old_image,
            self.table_name,
        )

    @property
    def event_name(self) -> EventName:
        """``INSERT``, ``MODIFY`` or ``REMOVE``."""
        name = _lookup(self._checked_raw(), "eventName")
        if name == "MODIFY" or name == "INSERT" or name == "REMOVE":
            return name  # type: ignore[no-any-return]
        raise InvalidRecordError(
            "eventName",
            f"expected INSERT, MODIFY or REMOVE, got {name!r}",
            self._sequence_number_or_none(),
        )

    @property
    def event_id(self) -> str:
        return self._str_field(self._checked_raw(), "eventID")

    @property
    def event_source_arn(self) -> str | None:
        """The stream ARN (``eventSourceARN``); ``None`` if the event does not carry it."""
        return self._optional_str(self._checked_raw(), "eventSourceARN")

    @property
    def aws_region(self) -> str | None:
        return self._optional_str(self._checked_raw(), "awsRegion")

    @property
    def table_name(self) -> str | None:
        """The table name, taken from the stream ARN
        (``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``)."""
        arn = self.event_source_arn
        if arn is None:
            return None
        _, sep, rest = arn.partition(":table/")
        if not sep or not rest:
            raise InvalidRecordError(
                "eventSourceARN",
                f"not a DynamoDB stream ARN: {arn!r}",
                self._sequence_number_or_none(),
            )
        return rest.split("/", 1)[0]

    @property
    def is_ttl_delete(self) -> bool:
        """True for a REMOVE made by DynamoDB's TTL process (``userIdentity`` is the
        ``dynamodb.amazonaws.com`` service principal), False for any other change."""
        if self.event_name != "REMOVE":
            return False
        identity = _lookup(self._raw, "userIdentity")
        return (
            isinstance(identity, dict)
            and identity.get("type") == "Service"
            and identity.get("principalId") == _TTL_PRINCIPAL
        )

    # --- dynamodb body --------------------------------------------------------------------

    @property
    def approximate_creation_time(self) -> datetime:
        """When the change was made, as an aware UTC datetime (the event carries epoch
        seconds)."""
        value = self._body_field("ApproximateCreationDateTime")
        if isinstance(value, datetime):  # already decoded, e.g. by botocore
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(float(value), tz=UTC)
            except (OverflowError, OSError, ValueError) as exc:
                reason = f"epoch seconds out of range: {value!r} ({exc})"
        else:
            reason = f"expected epoch seconds, got {type(value).__name__}"
        raise InvalidRecordError(
            "dynamodb.ApproximateCreationDateTime", reason, self._sequence_number_or_none()
        )

    @property
    def size_bytes(self) -> int:
        value = self._body_field("SizeBytes")
        if type(value) is not int:
            raise InvalidRecordError(
                "dynamodb.SizeBytes",
                f"expected an integer, got {type(value).__name__}",
                self._sequence_number_or_none(),
            )
        return value

    @property
    def stream_view_type(self) -> str:
        """``KEYS_ONLY``, ``NEW_IMAGE``, ``OLD_IMAGE`` or ``NEW_AND_OLD_IMAGES``."""
        return self._str_field(self._checked_body(), "StreamViewType", "dynamodb.")

    @property
    def raw_keys(self) -> dict[str, Any]:
        """``dynamodb.Keys`` in DynamoDB JSON."""
        keys = _lookup(self._checked_body(), "Keys")
        if type(keys) is dict and keys:
            return keys
        found = "missing" if keys is None else "expected a non-empty map"
        raise InvalidRecordError("dynamodb.Keys", found, self._sequence_number_or_none())

    @property
    def raw_new_image(self) -> dict[str, Any] | None:
        """``dynamodb.NewImage`` in DynamoDB JSON, or ``None`` if the record has none."""
        return self._raw_image("NewImage")

    @property
    def raw_old_image(self) -> dict[str, Any] | None:
        """``dynamodb.OldImage`` in DynamoDB JSON, or ``None`` if the record has none."""
        return self._raw_image("OldImage")

    @property
    def keys(self) -> dict[str, Any]:
        """The item's key attributes as Python values (decoded once)."""
        try:
            return self._keys
        except AttributeError:
            self._keys = deserialize(self.raw_keys, numbers=self._numbers)
            return self._keys

    @property
    def new_image(self) -> dict[str, Any] | None:
        """The item after the change as Python values (decoded once), or ``None``."""
        try:
            return self._new_image
        except AttributeError:
            raw = self.raw_new_image
            self._new_image = None if raw is None else deserialize(raw, numbers=self._numbers)
            return self._new_image

    @property
    def old_image(self) -> dict[str, Any] | None:
        """The item before the change as Python values (decoded once), or ``None``."""
        try:
            return self._old_image
        except AttributeError:
            raw = self.raw_old_image
            self._old_image = None if raw is None else deserialize(raw, numbers=self._numbers)
            return self._old_image

    @property
    def item_key(self) -> str:
        """A canonical, process-independent identity of the item, from ``Keys``.

        Canonical JSON text of the sorted ``[name, type, value]`` triples, e.g.
        ``[["pk","S","ORDER#1"],["sk","N","5"]]``. Numbers are normalized (``"1.0"`` and
        ``"1"`` name the same item, as in DynamoDB); binary is base64. Equal for every
        record of the same item, in any process: hash it with ``zlib.crc32`` or
        ``hashlib`` (never ``hash()``, which is randomized per process) to pick a lane.
        """
        key: str | None = getattr(self, "_item_key", None)  # cheaper than catching on a miss
        if key is None:
            key = self._item_key = _canonical_key(self.raw_keys, self._sequence_number_or_none())
        return key

    # --- change helpers ---------------------------------------------------------------------

    def changed_attributes(self) -> frozenset[str]:
        """Names of the top-level attributes that differ between OldImage and NewImage.

        Added and removed attributes count. Values are compared by meaning, not spelling:
        ``{"N": "1.0"}`` equals ``{"N": "1"}`` and set order does not matter, but a change of
        type (``N`` 1 to ``BOOL`` true) is a change. An INSERT has every new attribute
        changed; a REMOVE every old one. Raises ``ImageNotAvailableError`` when the stream
        view type does not carry an image the comparison needs.
        """
        old, new = self._images_for_diff()
        changed = {
            name for name, av in new.items() if name not in old or not _av_equal(old[name], av)
        }
        changed.update(name for name in old if name not in new)
        return frozenset(changed)

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """``{name: (old_value, new_value)}`` for each changed attribute, decoded; an absent
        side is ``MISSING`` (a NULL attribute is ``None``)."""
        names = self.changed_attributes()
        old = self.old_image or {}
        new = self.new_image or {}
        return {name: (old.get(name, MISSING), new.get(name, MISSING)) for name in sorted(names)}

    def __repr__(self) -> str:
        # Deliberately no images or keys: records end up in logs.
        error = self.error
        if error is not None:
            return f"StreamRecord(sequence_number=None, error={str(error)!r})"
        name = _lookup(self._raw, "eventName")
        return f"StreamRecord(event_name={name!r}, sequence_number={self._seq!r})"

    # --- internals ------------------------------------------------------------------------

    def _sequence_number_or_none(self) -> str | None:
        seq = self._seq
        if seq is _Unread.TOKEN:
            self._identify()
            seq = self._seq
            assert not isinstance(seq, _Unread)
        return seq

    def _broken(self) -> InvalidRecordError:
        error = self.error
        assert error is not None  # the SequenceNumber is unreadable only for broken records
        return error

    def _checked_raw(self) -> Any:
        error = self.error
        if error is not None:
            raise error
        return self._raw

    def _checked_body(self) -> Mapping[str, Any]:
        error = self.error  # identifies the record on first use, setting _body
        if error is not None:
            raise error
        return self._body

    def _body_field(self, name: str) -> Any:
        value = _lookup(self._checked_body(), name)
        if value is None:
            raise InvalidRecordError(f"dynamodb.{name}", "missing", self._sequence_number_or_none())
        return value

    def _str_field(self, container: Any, name: str, prefix: str = "") -> str:
        value = _lookup(container, name)
        if type(value) is not str:
            found = "missing" if value is None else f"expected a string, got {type(value).__name__}"
            raise InvalidRecordError(prefix + name, found, self._sequence_number_or_none())
        return value

    def _optional_str(self, container: Any, name: str) -> str | None:
        value = _lookup(container, name)
        if value is not None and type(value) is not str:
            raise InvalidRecordError(
                name,
                f"expected a string, got {type(value).__name__}",
                self._sequence_number_or_none(),
            )
        return value

    def _raw_image(self, name: str) -> dict[str, Any] | None:
        image = _lookup(self._checked_body(), name)
        if image is not None and type(image) is not dict:
            raise InvalidRecordError(
                f"dynamodb.{name}",
                f"expected a map, got {type(image).__name__}",
                self._sequence_number_or_none(),
            )
        return image

    def _images_for_diff(self) -> tuple[dict[str, Any], dict[str, Any]]:
        old = self.raw_old_image
        new = self.raw_new_image
        name = self.event_name
        # An INSERT has no old item and a REMOVE no new one, by definition; any other
        # absence means the stream view type left the image out.
        view = _lookup(self._body, "StreamViewType")
        if old is None and name != "INSERT":
            raise ImageNotAvailableError("OldImage", view, self.sequence_number)
        if new is None and name != "REMOVE":
            raise ImageNotAvailableError("NewImage", view, self.sequence_number)
        return old or {}, new or {}


def _lookup(container: Any, name: str) -> Any:
    """``container[name]``, or None when absent or when ``container`` is not a mapping."""
    try:
        return container[name]
    except (KeyError, TypeError, IndexError):
        return None


def _diagnose(raw: Any) -> InvalidRecordError:
    """Say precisely why a record failed the constructor's check."""
    if not isinstance(raw, Mapping):
        return InvalidRecordError("<record>", f"expected an object, got {type(raw).__name__}")
    body = raw.get("dynamodb")
    if not isinstance(body, Mapping):
        found = "missing" if body is None else f"expected an object, got {type(body).__name__}"
        return InvalidRecordError("dynamodb", found)
    value = body.get("SequenceNumber")
    found = "missing" if value is None else f"expected a non-empty string, got {value!r}"
    return InvalidRecordError("dynamodb.SequenceNumber", found)


def _canonical_key(raw_keys: dict[str, Any], seq: str | None) -> str:
    # Same text as json.dumps(triples, ensure_ascii=False, separators=(",", ":")) at a
    # fraction of the cost: per_key ordering computes it for every record.
    parts = []
    for name in sorted(raw_keys) if len(raw_keys) > 1 else raw_keys:
        av = raw_keys[name]
        value = av.get("S") if type(av) is dict and len(av) == 1 else None
        if type(value) is str:  # the common case, a string key, without further ado
            parts.append(f'[{_json_string(name)},"S",{_json_string(value)}]')
        else:
            parts.append(_canonical_attribute(name, av, seq))
    return "[" + ",".join(parts) + "]"


def _canonical_attribute(name: str, av: Any, seq: str | None) -> str:
    field = f"dynamodb.Keys.{name}"
    if type(av) is not dict or len(av) != 1:
        raise InvalidRecordError(field, "expected a single-type attribute value", seq)
    ((tag, value),) = av.items()
    if tag not in _KEY_TAGS:
        raise InvalidRecordError(field, f"key attributes are S, N or B, not {tag}", seq)
    try:
        canonical = _canonical_scalar(tag, value)
    except (TypeError, ValueError, InvalidOperation, binascii.Error) as exc:
        raise InvalidRecordError(field, f"bad {tag} value: {exc}", seq) from exc
    return f'[{_json_string(name)},"{tag}",{_json_string(canonical)}]'


def _canonical_scalar(tag: str, value: Any) -> str:
    if tag == "S":
        if type(value) is not str:
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    if tag == "N":
        if type(value) is not str:
            raise TypeError(f"expected a number string, got {type(value).__name__}")
        if value.isdigit() and (value[0] != "0" or value == "0"):  # common case: plain integer
            return value
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return "0" if number.is_zero() else format(number.normalize(), "f")
    # B: Lambda delivers base64 text; bytes appear when a caller built the event in Python.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if type(value) is not str:
        raise TypeError(f"expected base64 text, got {type(value).__name__}")
    return base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii")


def _av_equal(a: Any, b: Any) -> bool:
    """Whether two DynamoDB-JSON attribute values mean the same value."""
    if a == b:
        return True
    if type(a) is not dict or type(b) is not dict or len(a) != 1 or len(b) != 1:
        return False
    ((tag, x),) = a.items()
    ((other_tag, y),) = b.items()
    if tag != other_tag:
        return False
    try:
        if tag == "N":
            return Decimal(x) == Decimal(y)
        if tag == "NS":
            return {Decimal(v) for v in x} == {Decimal(v) for v in y}
        if tag == "SS":
            return set(x) == set(y)
        if tag == "B":
            return _as_bytes(x) == _as_bytes(y)
        if tag == "BS":
            return {_as_bytes(v) for v in x} == {_as_bytes(v) for v in y}
        if tag == "L":
            return len(x) == len(y) and all(_av_equal(u, v) for u, v in zip(x, y, strict=True))
        if tag == "M":
            return x.keys() == y.keys() and all(_av_equal(x[k], y[k]) for k in x)
    except (TypeError, ValueError, AttributeError, InvalidOperation, binascii.Error):
        return False  # malformed values: unequal unless spelled identically (checked above)
    return False  # S, BOOL, NULL: equal only if identical, and they were not


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return base64.b64decode(value, validate=True)
