"""The DynamoDB store.

Table schema (the table is yours; create it with Terraform or CloudFormation):

* partition key ``id`` (S), no sort key; on-demand billing suits the bursty batch pattern;
* TTL enabled on ``expiration`` (N, epoch seconds) so old items delete themselves;
* attributes, written by streamkit: ``status`` (S, ``COMPLETED``/``INPROGRESS``),
  ``in_progress_expiration`` (N, epoch ms, locks only), ``payload_hash`` (S), ``result`` (S,
  JSON; only when results are stored). See ``streamkit.idempotency.items``.

IAM: ``dynamodb:BatchGetItem`` and ``dynamodb:BatchWriteItem`` for the stream mode, plus
``PutItem``, ``DeleteItem`` and ``GetItem`` for the per-record mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar, Unpack

from streamkit._aws import DefaultClient, error_code, full_jitter_backoff
from streamkit.idempotency.exceptions import IdempotencyStoreUnavailableError
from streamkit.idempotency.items import INPROGRESS, IdempotencyItem, Status
from streamkit.idempotency.store import IdempotencyStore, StoreOptions

__all__ = ["DynamoDBIdempotencyStore"]

# Request limits: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
# and https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
_GET_BATCH: Final = 100
_WRITE_BATCH: Final = 25
# Unprocessed keys/items mean throttling or a size cap; AWS asks for retries with exponential
# backoff (full jitter, streamkit._aws): 8 attempts, 7 waits of at most 0.05, 0.1, ... 0.8, 1,
# 1 s (3.6 s).
_UNPROCESSED_ATTEMPTS: Final = 8
_GAVE_UP: Final = f"{{}} still returned {{}} after {_UNPROCESSED_ATTEMPTS} attempts (throttled)"

# Every attribute name goes through a placeholder: ``status`` is a reserved word.
_NAMES: Final = {
    "#id": "id",
    "#st": "status",
    "#exp": "expiration",
    "#ipexp": "in_progress_expiration",
    "#ph": "payload_hash",
}
# The stream mode never needs the result, only whether (and for what payload) a key is done.
_PROJECTION: Final = "#id, #st, #exp, #ipexp, #ph"
# A lock may be taken when the id is absent, the item has expired (TTL deletes lazily), or it
# is a lock whose in-progress window has passed (the holder timed out or crashed).
_LOCK_CONDITION: Final = (
    "attribute_not_exists(#id) OR #exp <= :now "
    "OR (#st = :inprogress AND attribute_exists(#ipexp) AND #ipexp <= :now_ms)"
)

T = TypeVar("T")


class DynamoDBIdempotencyStore(IdempotencyStore):
    """Idempotency items in the DynamoDB table ``table_name`` (key ``id``, TTL ``expiration``).

    ``client`` is a boto3 DynamoDB client; by default one is created on first use with short
    timeouts, so an unreachable store fails the records in seconds rather than minutes.
    Create the store at module level so the client and the cache live across invocations.
    """

    def __init__(
        self, table_name: str, *, client: Any | None = None, **options: Unpack[StoreOptions]
    ) -> None:
        super().__init__(**options)
        self.table_name = table_name
        self._client = client

    @property
    def name(self) -> str:
        return f"DynamoDB table {self.table_name!r}"

    def __repr__(self) -> str:
        return f"DynamoDBIdempotencyStore(table_name={self.table_name!r})"

    # The client given at construction, or a default one with short timeouts, made on first use.
    client = DefaultClient()

    # --- stream mode ----------------------------------------------------------------------

    def get_many(self, ids: Sequence[str]) -> dict[str, IdempotencyItem]:
        found: dict[str, IdempotencyItem] = {}
        for chunk in _chunks(ids, _GET_BATCH):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"id": {"S": i}} for i in chunk],
                    "ConsistentRead": True,
                    "ProjectionExpression": _PROJECTION,
                    "ExpressionAttributeNames": _NAMES,
                }
            }
            for attempt in range(_UNPROCESSED_ATTEMPTS):
                if attempt:
                    full_jitter_backoff(attempt - 1)
                response = self._request(chunk, "batch_get_item", RequestItems=request)
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = _from_attributes(raw)
                    found[item.id] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                left = [key["id"]["S"] for key in request[self.table_name]["Keys"]]
                raise self._unavailable(left, _GAVE_UP.format("BatchGetItem", "UnprocessedKeys"))
        return found

    def put_many(self, items: Sequence[IdempotencyItem]) -> None:
        for chunk in _chunks(items, _WRITE_BATCH):
            ids = [item.id for item in chunk]
            request: dict[str, Any] = {
                self.table_name: [{"PutRequest": {"Item": _to_attributes(item)}} for item in chunk]
            }
            for attempt in range(_UNPROCESSED_ATTEMPTS):
                if attempt:
                    full_jitter_backoff(attempt - 1)
                response = self._request(ids, "batch_write_item", RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
            else:
                left = [r["PutRequest"]["Item"]["id"]["S"] for r in request[self.table_name]]
                raise self._unavailable(left, _GAVE_UP.format("BatchWriteItem", "UnprocessedItems"))

    # --- per-record mode ------------------------------------------------------------------

    def try_lock(self, item: IdempotencyItem, now: float) -> IdempotencyItem | None:
        from botocore.exceptions import ClientError

        # The blocking item may vanish between the failed put and the read below (deleted by
        # its holder's failure); then the put is simply tried again.
        for _ in range(3):
            try:
                self._request(
                    [item.id],
                    "put_item",
                    passthrough=("ConditionalCheckFailedException",),
                    TableName=self.table_name,
                    Item=_to_attributes(item),
                    ConditionExpression=_LOCK_CONDITION,
                    ExpressionAttributeNames={
                        k: _NAMES[k] for k in ("#id", "#st", "#exp", "#ipexp")
                    },
                    ExpressionAttributeValues={
                        ":now": {"N": str(int(now))},
                        ":now_ms": {"N": str(int(now * 1000))},
                        ":inprogress": {"S": INPROGRESS},
                    },
                    # The blocking item comes back with the error: no second read.
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                old = exc.response.get("Item")
                existing = _from_attributes(old) if old else self._get(item.id)
                if existing is not None:
                    return existing
            else:
                return None
        raise self._unavailable([item.id], "the conditional put kept failing on a vanishing item")

    def put(self, item: IdempotencyItem) -> None:
        self._request([item.id], "put_item", TableName=self.table_name, Item=_to_attributes(item))

    def release(self, lock: IdempotencyItem) -> None:
        from botocore.exceptions import ClientError

        condition = "#st = :inprogress AND #ipexp = :ipexp"
        # ConditionalCheckFailed: no longer our lock, another caller took it over after it
        # expired; theirs stays.
        with contextlib.suppress(ClientError):
            self._request(
                [lock.id],
                "delete_item",
                passthrough=("ConditionalCheckFailedException",),
                TableName=self.table_name,
                Key={"id": {"S": lock.id}},
                ConditionExpression=condition,
                ExpressionAttributeNames={"#st": "status", "#ipexp": "in_progress_expiration"},
                ExpressionAttributeValues={
                    ":inprogress": {"S": INPROGRESS},
                    ":ipexp": {"N": str(lock.in_progress_expiration)},
                },
            )

    # --- plumbing -------------------------------------------------------------------------

    def _get(self, item_id: str) -> IdempotencyItem | None:
        response = self._request(
            [item_id],
            "get_item",
            TableName=self.table_name,
            Key={"id": {"S": item_id}},
            ConsistentRead=True,
        )
        raw = response.get("Item")
        return _from_attributes(raw) if raw else None

    def _request(
        self, ids: Sequence[str], operation: str, passthrough: tuple[str, ...] = (), **params: Any
    ) -> dict[str, Any]:
        """Send one request; any failure becomes IdempotencyStoreUnavailableError naming the
        table and the keys, except the error codes in ``passthrough``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as exc:
            code = error_code(exc) or ""
            if code in passthrough:
                raise
            raise self._unavailable(ids, str(exc)) from exc
        except BotoCoreError as exc:
            raise self._unavailable(ids, f"{type(exc).__name__}: {exc}") from exc
        return response

    def _unavailable(self, ids: Sequence[str], reason: str) -> IdempotencyStoreUnavailableError:
        return IdempotencyStoreUnavailableError(self.name, ids, reason)


def _chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _to_attributes(item: IdempotencyItem) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "id": {"S": item.id},
        "status": {"S": item.status},
        "expiration": {"N": str(item.expiration)},
    }
    if item.in_progress_expiration is not None:
        attributes["in_progress_expiration"] = {"N": str(item.in_progress_expiration)}
    if item.payload_hash is not None:
        attributes["payload_hash"] = {"S": item.payload_hash}
    if item.result is not None:
        attributes["result"] = {"S": item.result}
    return attributes


def _from_attributes(raw: Mapping[str, Any]) -> IdempotencyItem:
    status: Status = "COMPLETED" if raw["status"]["S"] == "COMPLETED" else "INPROGRESS"
    in_progress = raw.get("in_progress_expiration")
    payload_hash = raw.get("payload_hash")
    result = raw.get("result")
    return IdempotencyItem(
        id=raw["id"]["S"],
        status=status,
        expiration=int(raw["expiration"]["N"]),
        in_progress_expiration=int(in_progress["N"]) if in_progress else None,
        payload_hash=payload_hash["S"] if payload_hash else None,
        result=result["S"] if result else None,
    )
