"""The order platform's sink logic (handlers/orderplatform) on hand-built stream records: what
each target decides from a change, with recording clients where the decision is the point
(the real services are exercised in tests/integration/test_platform_app.py and tests/e2e)."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from orderplatform.audit import REDACTED, AuditArchive, audit_line, object_key, redact_fields
from orderplatform.changes import is_noop, item_id
from orderplatform.fulfilment import Fulfilment, execution_name
from orderplatform.notify import Notifier, template_for
from tests.helpers.stream_data import make_event, stream_record

from streamkit import StreamRecord, parse_event

_index = itertools.count()


def change(
    event_name: str,
    pk: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    *,
    table: str = "orders",
) -> StreamRecord:
    keys = {"pk": pk}
    raw = stream_record(
        event_name=event_name,
        keys=keys,
        new_item=None if new is None else {**keys, **new},
        old_item=None if old is None else {**keys, **old},
        index=next(_index),
        rng=random.Random(pk + event_name + str(new)),
        table=table,
    )
    return parse_event(make_event([raw]))[0]


def order(status: str, version: int, **extra: Any) -> dict[str, Any]:
    return {"status": status, "version": version, "customer": "Ada", "email": "ada@example.com",
            "phone": "+15555550123", "address": {"street": "1 Secret Lane"},
            "total": Decimal("25.50"), **extra}  # fmt: skip


class Recorder:
    """A boto3 client stand-in recording the calls of ``methods``."""

    def __init__(self, *methods: str) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for method in methods:
            setattr(self, method, self._recorder(method))

    def _recorder(self, method: str) -> Any:
        def call(**request: Any) -> dict[str, Any]:
            self.calls.append((method, request))
            return {}

        return call


class ConditionalS3:
    """put_object with S3's If-None-Match: * semantics (HTTP 412 when the key exists)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.puts += 1
        assert request["IfNoneMatch"] == "*"
        if request["Key"] in self.objects:
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
        self.objects[request["Key"]] = request["Body"]
        return {}


# --- changes ---------------------------------------------------------------------------------


def test_a_modify_with_equal_images_is_no_change() -> None:
    assert is_noop(change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("PLACED", 1)))
    assert not is_noop(change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("PAID", 2)))
    assert not is_noop(change("INSERT", "ORDER#1", new=order("PLACED", 1)))
    assert item_id(change("INSERT", "PRODUCT#w", new={"stock": 1}, table="products")) == (
        "product",
        "w",
    )
    assert item_id(change("INSERT", "OTHER#1", new={})) is None


# --- audit -----------------------------------------------------------------------------------


def test_audit_lines_keep_what_changed_and_redact_personal_data_at_any_depth() -> None:
    record = change(
        "MODIFY", "ORDER#1", old=order("PLACED", 1),
        new=order("VALIDATED", 2, lines=[{"sku": "w", "qty": 1, "email": "x@y.z"}]),
    )  # fmt: skip
    line = audit_line(record)
    assert line["changed"] == ["lines", "status", "version"]
    assert (line["old_status"], line["new_status"]) == ("PLACED", "VALIDATED")
    assert line["new_image"]["email"] == line["new_image"]["phone"] == REDACTED
    assert line["new_image"]["address"] == REDACTED
    assert line["new_image"]["lines"][0]["email"] == REDACTED
    assert line["new_image"]["customer"] == "Ada"  # not configured: kept
    text = json.dumps(line, default=str)
    for secret in ("ada@example.com", "+15555550123", "Secret Lane", "x@y.z"):
        assert secret not in text
    assert redact_fields(None) == {"email", "phone", "address"}
    assert redact_fields("email, ssn,") == {"email", "ssn"}
    assert audit_line(record, redact={"customer"})["new_image"]["customer"] == REDACTED


def test_audit_writes_each_change_once_whatever_the_redeliveries() -> None:
    s3 = ConditionalS3()
    archive = AuditArchive("bucket", client=s3)
    records = [
        change("INSERT", "ORDER#1", new=order("PLACED", 1)),
        change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("PLACED", 1)),  # no-op
        change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("VALIDATED", 2)),
    ]
    assert [archive(r) for r in records] == ["archived", "unchanged", "archived"]
    # A redelivery, e.g. after completion markers were lost: S3 refuses the second write.
    assert [archive(r) for r in records] == ["already archived", "unchanged", "already archived"]
    assert len(s3.objects) == 2 and s3.puts == 4
    key = object_key(records[0])
    at = records[0].approximate_creation_time
    assert key == (
        f"audit/table=orders/dt={at:%Y-%m-%d}/hour={at:%H}/{records[0].sequence_number}.jsonl"
    )
    body = s3.objects[key].decode()
    assert body.endswith("\n") and body.count("\n") == 1
    assert json.loads(body)["new_image"]["total"] == "25.50"


def test_audit_raises_other_s3_errors_so_the_target_is_retried() -> None:
    class Down:
        def put_object(self, **request: Any) -> None:
            raise ClientError({"Error": {"Code": "SlowDown"}}, "PutObject")

    with pytest.raises(ClientError):
        AuditArchive("bucket", client=Down())(change("INSERT", "ORDER#1", new=order("PLACED", 1)))


# --- notify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "old", "new", "expected"),
    [
        ("INSERT", None, order("PLACED", 1), "placed"),
        ("MODIFY", order("PLACED", 1), order("PLACED", 1), None),  # duplicate producer write
        ("MODIFY", order("PLACED", 1), order("VALIDATED", 2), None),
        ("MODIFY", order("RESERVED", 4), order("SHIPPED", 5), "shipped"),
        ("MODIFY", order("SHIPPED", 5), order("SHIPPED", 5, note="gift"), None),
        ("MODIFY", order("VALIDATED", 2), order("CANCELLED", 3), "cancelled"),
        ("MODIFY", order("OUT_OF_STOCK", 4), order("CANCELLED", 5), "cancelled"),
        ("MODIFY", order("PAID", 3), order("PAYMENT_FAILED", 4), None),
        ("REMOVE", order("SHIPPED", 5), None, None),
    ],
)
def test_notifications_follow_the_changes_that_matter_to_the_customer(
    event: str, old: dict[str, Any] | None, new: dict[str, Any] | None, expected: str | None
) -> None:
    template = template_for(change(event, "ORDER#7", old=old, new=new))
    assert (template.name if template else None) == expected


def test_a_notification_is_an_email_and_an_sms_when_there_is_a_phone() -> None:
    ses, sns = Recorder("send_email"), Recorder("publish")
    notifier = Notifier(ses=ses, sns=sns, sender="orders@shop.example")
    shipped = change("MODIFY", "ORDER#7", old=order("RESERVED", 4), new=order("SHIPPED", 5))
    assert notifier(shipped) == "shipped"
    [(_, email)] = ses.calls
    assert email["Source"] == "orders@shop.example"
    assert email["Destination"] == {"ToAddresses": ["ada@example.com"]}
    assert email["Message"]["Subject"]["Data"] == "Order 7 shipped"
    assert "Ada" in email["Message"]["Body"]["Text"]["Data"]
    [(_, sms)] = sns.calls
    assert (sms["PhoneNumber"], sms["Message"]) == ("+15555550123", "Order 7 shipped.")
    no_phone = order("PLACED", 1)
    del no_phone["phone"]
    assert notifier(change("INSERT", "ORDER#8", new=no_phone)) == "placed"
    assert len(ses.calls) == 2 and len(sns.calls) == 1


# --- fulfilment ------------------------------------------------------------------------------


def test_fulfilment_starts_one_named_execution_when_an_order_is_reserved() -> None:
    sfn = Recorder("start_execution")
    fulfilment = Fulfilment(client=sfn, state_machine_arn="arn:sm", pickup_wait_seconds=30,
                            clock=lambda: 1000.0)  # fmt: skip
    assert (
        fulfilment(change("MODIFY", "ORDER#9", old=order("PAID", 3), new=order("PAID", 3))) is None
    )
    reserved = change("MODIFY", "ORDER#9", old=order("PAID", 3), new=order("RESERVED", 4))
    assert fulfilment(reserved) == "9-v4"
    [(_, request)] = sfn.calls
    assert request["name"] == "9-v4" and request["stateMachineArn"] == "arn:sm"
    assert json.loads(request["input"]) == {
        "pk": "ORDER#9", "version": "4", "next_version": "5",
        "pickup_wait_seconds": 30, "shipped_at": "1030000",
    }  # fmt: skip


def test_an_existing_execution_means_already_started() -> None:
    class Started:
        def start_execution(self, **request: Any) -> None:
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists"}}, "StartExecution")

    reserved = change("MODIFY", "ORDER#9", old=order("PAID", 3), new=order("RESERVED", 4))
    assert Fulfilment(client=Started(), state_machine_arn="arn:sm")(reserved) == "9-v4"


def test_execution_names_are_valid_and_unique_per_order_version() -> None:
    assert execution_name("a b/c#d", 3) == "a_b_c_d-v3"
    long = execution_name("x" * 200, 12)
    assert len(long) == 80 and long.endswith("-v12")


def test_a_lazy_client_is_made_on_first_use_and_then_kept() -> None:
    from orderplatform.consumer import LazyClient

    made: list[int] = []

    class Client:
        def put_object(self, **kwargs: Any) -> dict[str, Any]:
            return kwargs

    def factory() -> Client:
        made.append(1)
        return Client()

    client = LazyClient(factory)
    assert made == []  # nothing parsed at import (init) time
    assert client.put_object(Key="a") == {"Key": "a"}
    assert client.put_object(Key="b") == {"Key": "b"}
    assert made == [1]
    with pytest.raises(AttributeError):
        _ = client.no_such_operation
