"""The reference app's stream consumers (handlers/audit, cache, notify), in-process: the real
handler modules over hand-built Lambda events, with recording fakes for the AWS clients and
``MemoryIdempotencyStore`` in place of the DynamoDB store."""

from __future__ import annotations

import importlib.util
import itertools
import json
import random
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.emf import batch_counts, emf_documents, printed_counts, tally
from tests.helpers.stream_data import make_event, stream_record

from streamkit import MemoryIdempotencyStore, deserialize

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
_ENV = {
    "AUDIT_TABLE": "audit",
    "IDEMPOTENCY_TABLE": "idempotency",
    "CACHE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:cache",
    "NOTIFY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/notify",
}


# The handlers' metrics namespace (METRICS_NAMESPACE) in these tests.
NAMESPACE = "OrderPlatform"


def load_handler(
    name: str, monkeypatch: pytest.MonkeyPatch, namespace: str | None = NAMESPACE, **env: str
) -> Any:
    """A fresh import of handlers/<name>/app.py (every handler module is called ``app``), with
    METRICS_NAMESPACE=``namespace`` (``None``: unset)."""
    if namespace is None:
        monkeypatch.delenv("METRICS_NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("METRICS_NAMESPACE", namespace)
    for key, value in {**_ENV, **env}.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(
        f"handler_{name}_{uuid.uuid4().hex}", HANDLERS / name / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    """A boto3 client stand-in: records every call of ``method``; ``fail`` decides, per call,
    whether it raises (a transient outage)."""

    def __init__(self, method: str, fail: Callable[[dict[str, Any]], bool] = lambda _: False):
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        setattr(self, method, self._call)

    def _call(self, **request: Any) -> dict[str, Any]:
        if self.fail(request):
            raise ConnectionError("service unavailable")
        self.calls.append(request)
        return {}


_index = itertools.count()


def change(
    event_name: str,
    pk: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    *,
    table: str = "orders",
    ttl_delete: bool = False,
) -> dict[str, Any]:
    """One Lambda stream record of ``table`` (NEW_AND_OLD_IMAGES); records made later have
    higher sequence numbers and creation times."""
    keys = {"pk": pk}
    return stream_record(
        event_name=event_name,
        keys=keys,
        new_item=None if new is None else {**keys, **new},
        old_item=None if old is None else {**keys, **old},
        index=next(_index),
        rng=random.Random(pk + event_name + str(new)),
        table=table,
        ttl_delete=ttl_delete,
    )


def order(status: str, version: int, **extra: Any) -> dict[str, Any]:
    return {"status": status, "version": version, "customer": "ada@example.com",
            "total": Decimal("25.50"), **extra}  # fmt: skip


def failures(response: Any) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def metrics(capsys: pytest.CaptureFixture[str], service: str) -> dict[str, float]:
    """The record counters of the one EMF document printed since the last look."""
    return printed_counts(capsys.readouterr().out, namespace=NAMESPACE, service=service)


# --- audit ----------------------------------------------------------------------------------


def test_audit_writes_one_item_per_change_with_changed_names_and_statuses_but_no_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_handler("audit", monkeypatch)
    app.dynamodb = Recorder("put_item")
    app.handler.idempotency = MemoryIdempotencyStore()
    records = [
        change("INSERT", "ORDER#1", new=order("PLACED", 1)),
        change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("VALIDATED", 2)),
        change(
            "INSERT",
            "PRODUCT#widget",
            new={"stock": 5, "price": 3, "name": "Widget"},
            table="products",
        ),
        change("REMOVE", "ORDER#1", old=order("VALIDATED", 2)),
    ]
    assert failures(app.handler(make_event(records), None)) == []

    items = [deserialize(call["Item"]) for call in app.dynamodb.calls]
    assert [call["TableName"] for call in app.dynamodb.calls] == ["audit"] * 4
    assert [(i["pk"], i["event"]) for i in items] == [
        ("orders#ORDER#1", "INSERT"),
        ("orders#ORDER#1", "MODIFY"),
        ("products#PRODUCT#widget", "INSERT"),
        ("orders#ORDER#1", "REMOVE"),
    ]
    modify = items[1]
    sequence = records[1]["dynamodb"]["SequenceNumber"]
    created = records[1]["dynamodb"]["ApproximateCreationDateTime"]
    assert modify["sk"] == f"{_iso(created)}#{sequence}"
    assert modify["changed"] == ["status", "version"]
    assert (modify["old_status"], modify["new_status"]) == ("PLACED", "VALIDATED")
    assert items[0]["changed"] == ["customer", "pk", "status", "total", "version"]
    assert "old_status" not in items[0] and items[3]["old_status"] == "VALIDATED"
    assert "new_status" not in items[2] and "old_status" not in items[2]
    assert all("new_image" not in i and "old_image" not in i for i in items)
    assert "ada@example.com" not in json.dumps([call["Item"] for call in app.dynamodb.calls])


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_audit_can_include_full_images_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_handler("audit", monkeypatch, AUDIT_INCLUDE_IMAGES="true")
    app.dynamodb = Recorder("put_item")
    app.handler.idempotency = MemoryIdempotencyStore()
    record = change("MODIFY", "ORDER#9", old=order("PLACED", 1), new=order("VALIDATED", 2))
    app.handler(make_event([record]), None)
    (item,) = [deserialize(call["Item"]) for call in app.dynamodb.calls]
    assert item["new_image"]["customer"] == "ada@example.com"
    assert item["old_image"]["status"] == "PLACED"


def test_audit_redelivery_writes_nothing_twice_and_a_failure_holds_back_only_its_item(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_handler("audit", monkeypatch)
    outage = {"on": True}
    app.dynamodb = Recorder(
        "put_item", fail=lambda request: outage["on"] and request["Item"]["pk"]["S"].endswith("#2")
    )
    app.handler.idempotency = MemoryIdempotencyStore()
    records = [
        change("INSERT", "ORDER#1", new=order("PLACED", 1)),
        change("INSERT", "ORDER#2", new=order("PLACED", 1)),
        change("INSERT", "ORDER#3", new=order("PLACED", 1)),
        change("MODIFY", "ORDER#2", old=order("PLACED", 1), new=order("VALIDATED", 2)),
        change("MODIFY", "ORDER#3", old=order("PLACED", 1), new=order("VALIDATED", 2)),
    ]
    event = make_event(records)
    sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
    # per_key: ORDER#2 fails and its later change is held back; ORDER#1 and #3 go on.
    assert failures(app.handler(event, None)) == [sequence[1], sequence[3]]
    written = [c["Item"]["pk"]["S"] for c in app.dynamodb.calls]
    assert written == ["orders#ORDER#1", "orders#ORDER#3", "orders#ORDER#3"]
    assert metrics(capsys, "audit") == tally(5, processed=3, failed=1, skipped=1)

    outage["on"] = False
    assert failures(app.handler(event, None)) == []  # Lambda redelivers the whole batch
    assert metrics(capsys, "audit") == tally(5, processed=2, already=3)
    assert failures(app.handler(event, None)) == []  # ... and once more, for good measure
    assert metrics(capsys, "audit") == tally(5, already=5)
    written = [(c["Item"]["pk"]["S"], c["Item"]["event"]["S"]) for c in app.dynamodb.calls]
    assert written == [
        ("orders#ORDER#1", "INSERT"),
        ("orders#ORDER#3", "INSERT"),
        ("orders#ORDER#3", "MODIFY"),
        ("orders#ORDER#2", "INSERT"),  # only the records that had failed ran again
        ("orders#ORDER#2", "MODIFY"),
    ]


# --- cache ----------------------------------------------------------------------------------


def test_cache_publishes_an_invalidation_for_each_modify_and_remove_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_handler("cache", monkeypatch)
    app.sns = Recorder("publish")
    app.router.idempotency = MemoryIdempotencyStore()
    records = [
        change("INSERT", "ORDER#1", new=order("PLACED", 1)),
        change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("VALIDATED", 2)),
        change("MODIFY", "PRODUCT#w", old={"stock": 5}, new={"stock": 4}, table="products"),
        change("REMOVE", "ORDER#7", old=order("SHIPPED", 5)),
        change("REMOVE", "ORDER#8", old=order("PLACED", 1), ttl_delete=True),
    ]
    assert failures(app.handler(make_event(records), None)) == []
    messages = [json.loads(call["Message"]) for call in app.sns.calls]
    assert messages == [
        {"table": "orders", "keys": {"pk": "ORDER#1"}, "reason": "MODIFY"},
        {"table": "products", "keys": {"pk": "PRODUCT#w"}, "reason": "MODIFY"},
        {"table": "orders", "keys": {"pk": "ORDER#7"}, "reason": "REMOVE"},
        {"table": "orders", "keys": {"pk": "ORDER#8"}, "reason": "TTL_EXPIRED"},
    ]
    assert {call["TopicArn"] for call in app.sns.calls} == {_ENV["CACHE_TOPIC_ARN"]}
    tables = [call["MessageAttributes"]["table"]["StringValue"] for call in app.sns.calls]
    assert tables == ["orders", "products", "orders", "orders"]


def test_cache_key_values_become_plain_json(monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_handler("cache", monkeypatch)
    assert json.dumps(
        {"n": Decimal("7"), "f": Decimal("1.5"), "b": b"\x01"}, default=app.plain
    ) == ('{"n": 7, "f": "1.5", "b": "AQ=="}')
    with pytest.raises(TypeError):
        app.plain(object())


def test_cache_redelivery_publishes_each_invalidation_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_handler("cache", monkeypatch)
    outage = {"left": 1}

    def fail_once(request: dict[str, Any]) -> bool:
        if "ORDER#2" in request["Message"] and outage["left"]:
            outage["left"] -= 1
            return True
        return False

    app.sns = Recorder("publish", fail=fail_once)
    app.router.idempotency = MemoryIdempotencyStore()
    records = [
        change("MODIFY", f"ORDER#{n}", old=order("PLACED", 1), new=order("VALIDATED", 2))
        for n in (1, 2, 3)
    ]
    event = make_event(records)
    first = failures(app.handler(event, None))
    assert first == [r["dynamodb"]["SequenceNumber"] for r in records[1:]]  # fail_fast
    assert metrics(capsys, "cache") == tally(3, processed=1, failed=1, skipped=1)
    assert failures(app.handler(event, None)) == []
    assert metrics(capsys, "cache") == tally(3, processed=2, already=1)
    assert failures(app.handler(event, None)) == []
    assert metrics(capsys, "cache") == tally(3, already=3)
    keys = [json.loads(call["Message"])["keys"]["pk"] for call in app.sns.calls]
    assert keys == ["ORDER#1", "ORDER#2", "ORDER#3"]


# --- notify ---------------------------------------------------------------------------------


def test_notify_sends_on_transitions_to_paid_and_shipped_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_handler("notify", monkeypatch)
    app.sqs = Recorder("send_message")
    app.router.idempotency = MemoryIdempotencyStore()
    records = [
        change("INSERT", "ORDER#1", new=order("PLACED", 1)),
        change("MODIFY", "ORDER#1", old=order("PLACED", 1), new=order("VALIDATED", 2)),
        change("MODIFY", "ORDER#1", old=order("VALIDATED", 2), new=order("PAID", 3)),
        # Still PAID, another attribute changed: no second receipt.
        change("MODIFY", "ORDER#1", old=order("PAID", 3), new=order("PAID", 3, note="gift")),
        change("MODIFY", "ORDER#1", old=order("PAID", 3), new=order("RESERVED", 4)),
        change("MODIFY", "ORDER#1", old=order("RESERVED", 4), new=order("SHIPPED", 5)),
        change("INSERT", "ORDER#2", new=order("PAID", 1)),  # not a MODIFY: the filter's rule
        change(
            "MODIFY", "PRODUCT#x", old={"status": "X"}, new={"status": "PAID"}, table="products"
        ),
    ]
    assert failures(app.handler(make_event(records), None)) == []
    # Records that match no route, or no longer match, are processed: nothing to send.
    assert metrics(capsys, "notify") == tally(8, processed=8)
    assert {call["QueueUrl"] for call in app.sqs.calls} == {_ENV["NOTIFY_QUEUE_URL"]}
    assert [json.loads(call["MessageBody"]) for call in app.sqs.calls] == [
        {"order_id": "1", "customer": "ada@example.com", "status": "PAID",
         "template": "payment-received"},
        {"order_id": "1", "customer": "ada@example.com", "status": "SHIPPED",
         "template": "order-shipped"},
    ]  # fmt: skip


def test_notify_redelivery_after_a_failed_send_sends_each_message_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_handler("notify", monkeypatch)
    outage = {"on": True}
    app.sqs = Recorder(
        "send_message", fail=lambda r: outage["on"] and '"order_id": "2"' in r["MessageBody"]
    )
    app.router.idempotency = MemoryIdempotencyStore()
    records = [
        change("MODIFY", f"ORDER#{n}", old=order("VALIDATED", 2), new=order("PAID", 3))
        for n in (1, 2, 3)
    ]
    event = make_event(records)
    assert failures(app.handler(event, None)) == [
        r["dynamodb"]["SequenceNumber"] for r in records[1:]
    ]
    assert metrics(capsys, "notify") == tally(3, processed=1, failed=1, skipped=1)
    outage["on"] = False
    assert failures(app.handler(event, None)) == []
    assert metrics(capsys, "notify") == tally(3, processed=2, already=1)
    assert failures(app.handler(event, None)) == []
    sent = [json.loads(call["MessageBody"])["order_id"] for call in app.sqs.calls]
    assert sent == ["1", "2", "3"]


# --- observability in the deployed shape ------------------------------------------------------


class LambdaContext:
    function_name = "orders-cache"
    aws_request_id = "req-1"


# Each consumer's AWS client (module attribute) and the call it makes.
_CLIENTS = {"audit": ("dynamodb", "put_item"), "cache": ("sns", "publish"),
            "notify": ("sqs", "send_message")}  # fmt: skip


@pytest.mark.parametrize("name", ["audit", "cache", "notify"])
def test_without_aws_xray_sdk_tracing_is_off_and_metrics_go_to_the_default_namespace(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As deployed: the zip bundles streamkit and the handler only, Lambda sets the trace
    header and no METRICS_NAMESPACE was configured."""
    for module in [m for m in sys.modules if m == "aws_xray_sdk" or m.startswith("aws_xray_sdk.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # import now raises ImportError
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "true")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(HANDLERS / name))
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    app = load_handler(name, monkeypatch, namespace=None)
    client, method = _CLIENTS[name]
    setattr(app, client, Recorder(method))
    store_owner = app.handler if name == "audit" else app.router
    store_owner.idempotency = MemoryIdempotencyStore()
    paid = change("MODIFY", "ORDER#1", old=order("VALIDATED", 2), new=order("PAID", 3))

    assert failures(app.handler(make_event([paid]), LambdaContext())) == []
    out = capsys.readouterr().out
    [document] = emf_documents(out)
    assert batch_counts(document, namespace="streamkit", service=name) == tally(1, processed=1)
    assert document["FunctionName"] == "orders-cache"
    assert sys.modules["aws_xray_sdk"] is None  # nothing imported it behind our back
    assert not [line for line in out.splitlines() if "X-Ray" in line or '"WARNING"' in line]
