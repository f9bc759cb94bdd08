"""Structured logs: one JSON object per line, correlation fields, level from the
environment, and the images policy (never logged unless asked for)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.observability import REDACTED, get_logger, level_from_env
from streamkit.observability._context import (
    InvocationInfo,
    reset_invocation,
    reset_record,
    set_invocation,
    set_record,
)
from streamkit.observability.logs import PII_REDACTED, redacted_fields
from streamkit.records import StreamRecord

SECRET = "s3cr3t-card-4111"


def raw_record(secret: str = SECRET) -> dict[str, Any]:
    keys = {"pk": {"S": "ORDER#1"}}
    return lambda_record(
        "4900000000000000000001",
        keys=keys,
        new_image={**keys, "card": {"S": secret}},
        old_image={**keys, "card": {"S": secret + "-old"}},
        event_id="ev-1",
        size_bytes=60,
        arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024",
    )


@pytest.fixture
def no_log_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "STREAMKIT_LOG_LEVEL",
        "AWS_LAMBDA_LOG_LEVEL",
        "STREAMKIT_LOG_IMAGES",
        "STREAMKIT_LOG_REDACT_FIELDS",
    ):
        monkeypatch.delenv(name, raising=False)


def capture(**kwargs: Any) -> tuple[Any, io.StringIO]:
    stream = io.StringIO()
    logger = get_logger(f"test.obs.{uuid.uuid4().hex}", stream=stream, **kwargs)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("no_log_env")
def test_a_line_is_one_json_object_with_fields() -> None:
    log, stream = capture(service="audit")
    log.info("order %s shipped", "o-1", order_id=7, tags={"a", "b"})
    [line] = lines(stream)
    assert line["message"] == "order o-1 shipped"
    assert line["level"] == "INFO"
    assert line["service"] == "audit"
    assert line["order_id"] == 7
    assert line["tags"] == ["a", "b"]
    assert line["timestamp"].endswith("Z")
    datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.usefixtures("no_log_env")
def test_values_json_lacks_are_rendered() -> None:
    log, stream = capture()
    log.info(
        "values",
        amount=Decimal("12.50"),
        count=Decimal("3"),
        blob=b"\x00\x01",
        at=datetime(2024, 1, 2, tzinfo=UTC),
        other=object,
    )
    [line] = lines(stream)
    assert line["amount"] == 12.5 and line["count"] == 3
    assert line["blob"] == "AAE="
    assert line["at"] == "2024-01-02T00:00:00+00:00"
    assert "object" in line["other"]


@pytest.mark.usefixtures("no_log_env")
def test_exceptions_are_logged_with_their_type_and_traceback() -> None:
    log, stream = capture()
    try:
        raise KeyError("missing")
    except KeyError:
        log.exception("lookup failed")
    [line] = lines(stream)
    assert line["level"] == "ERROR"
    assert line["exception_name"] == "KeyError"
    assert "Traceback" in line["exception"] and "missing" in line["exception"]


@pytest.mark.usefixtures("no_log_env")
def test_invocation_fields_are_added_and_cannot_be_overridden() -> None:
    log, stream = capture()
    info = InvocationInfo(
        function_name="audit-fn",
        function_version="$LATEST",
        function_arn=None,
        memory_limit_mb=256,
        request_id="req-1",
        cold_start=True,
    )
    token = set_invocation(info)
    try:
        log.info("inside", function_request_id="forged")
    finally:
        reset_invocation(token)
    log.info("outside")
    inside, outside = lines(stream)
    assert inside["function_name"] == "audit-fn"
    assert inside["function_request_id"] == "req-1"
    assert inside["function_memory_size"] == 256
    assert inside["cold_start"] is True
    assert "function_name" not in outside and "cold_start" not in outside


@pytest.mark.usefixtures("no_log_env")
def test_the_xray_trace_id_is_added_in_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    log, stream = capture()
    log.info("traced")
    assert lines(stream)[0]["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"


# --- images policy ---------------------------------------------------------------------------


def log_a_record_every_way(log: Any) -> None:
    raw = raw_record()
    record = StreamRecord(raw)
    log.info("the record", record=record)
    log.info("the raw record", raw=raw)
    log.info("a nested image", payload={"items": [{"NewImage": raw["dynamodb"]["NewImage"]}]})
    log.info("decoded images", new_image=record.new_image, old_image=record.old_image)


@pytest.mark.usefixtures("no_log_env")
def test_images_are_never_logged_by_default() -> None:
    log, stream = capture()
    log_a_record_every_way(log)
    text = stream.getvalue()
    assert SECRET not in text
    record_line, raw_line, nested_line, decoded_line = lines(stream)
    # What a record does show: its correlation fields.
    assert record_line["record"] == {
        "event_id": "ev-1",
        "event_name": "MODIFY",
        "sequence_number": "4900000000000000000001",
        "table_name": "orders",
        "item_key": {"pk": "ORDER#1"},
    }
    assert raw_line["raw"]["dynamodb"]["NewImage"] == REDACTED
    assert raw_line["raw"]["dynamodb"]["OldImage"] == REDACTED
    assert raw_line["raw"]["dynamodb"]["Keys"] == {"pk": {"S": "ORDER#1"}}
    assert nested_line["payload"]["items"][0]["NewImage"] == REDACTED
    assert decoded_line["new_image"] == REDACTED and decoded_line["old_image"] == REDACTED


@pytest.mark.usefixtures("no_log_env")
def test_images_are_logged_when_the_logger_is_asked_to() -> None:
    log, stream = capture(log_images=True)
    log_a_record_every_way(log)
    record_line, raw_line, nested_line, decoded_line = lines(stream)
    assert record_line["record"]["new_image"]["card"] == SECRET
    assert raw_line["raw"]["dynamodb"]["NewImage"]["card"] == {"S": SECRET}
    assert nested_line["payload"]["items"][0]["NewImage"]["card"] == {"S": SECRET}
    assert decoded_line["old_image"]["card"] == SECRET + "-old"


@pytest.mark.usefixtures("no_log_env")
def test_images_are_logged_when_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKIT_LOG_IMAGES", "true")
    log, stream = capture()
    log_a_record_every_way(log)
    assert SECRET in stream.getvalue()


@pytest.mark.usefixtures("no_log_env")
def test_an_explicit_no_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKIT_LOG_IMAGES", "true")
    log, stream = capture(log_images=False)
    log_a_record_every_way(log)
    assert SECRET not in stream.getvalue()


# --- configured PII fields --------------------------------------------------------------------


@pytest.mark.usefixtures("no_log_env")
def test_pii_fields_are_redacted_under_any_name_even_when_images_are_logged() -> None:
    log, stream = capture(log_images=True, redact_fields=["card", "email"])
    log_a_record_every_way(log)
    customer = {"name": "Ann", "contact": {"email": "ann@example.com", "tags": [{"card": "x"}]}}
    log.info("customer", image=customer, email="ann@example.com")
    text = stream.getvalue()
    assert SECRET not in text and "ann@example.com" not in text
    record_line, raw_line, nested_line, decoded_line, customer_line = lines(stream)
    # The shape stays: only the values of the named fields go.
    assert record_line["record"]["new_image"] == {"pk": "ORDER#1", "card": PII_REDACTED}
    assert raw_line["raw"]["dynamodb"]["NewImage"]["card"] == PII_REDACTED
    assert raw_line["raw"]["dynamodb"]["NewImage"]["pk"] == {"S": "ORDER#1"}
    assert nested_line["payload"]["items"][0]["NewImage"]["card"] == PII_REDACTED
    assert decoded_line["old_image"]["card"] == PII_REDACTED
    assert customer_line["email"] == PII_REDACTED
    assert customer_line["image"] == {
        "name": "Ann",
        "contact": {"email": PII_REDACTED, "tags": [{"card": PII_REDACTED}]},
    }


@pytest.mark.usefixtures("no_log_env")
def test_pii_fields_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKIT_LOG_REDACT_FIELDS", " phone , ,email")
    assert redacted_fields() == {"phone", "email"}
    log, stream = capture()
    log.info("sms", to={"phone": "+15550100"}, note="kept")
    (line,) = lines(stream)
    assert line["to"] == {"phone": PII_REDACTED} and line["note"] == "kept"
    assert "+15550100" not in stream.getvalue()


@pytest.mark.usefixtures("no_log_env")
def test_a_key_that_is_pii_is_redacted_in_the_record_correlation_fields() -> None:
    log, stream = capture(redact_fields=["pk"])
    token = set_record(StreamRecord(raw_record()))
    try:
        log.info("handled")
    finally:
        reset_record(token)
    (line,) = lines(stream)
    assert line["item_key"] == {"pk": PII_REDACTED}
    assert "ORDER#1" not in stream.getvalue()


@pytest.mark.usefixtures("no_log_env")
def test_without_configured_fields_nothing_else_is_redacted() -> None:
    log, stream = capture()
    log.info("customer", contact={"email": "ann@example.com"})
    (line,) = lines(stream)
    assert line["contact"] == {"email": "ann@example.com"}


# --- levels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("streamkit_level", "lambda_level", "expected"),
    [
        (None, None, logging.INFO),
        ("DEBUG", None, logging.DEBUG),
        ("debug", "ERROR", logging.DEBUG),  # ours wins over Lambda's
        (None, "WARN", logging.WARNING),
        (None, "TRACE", logging.DEBUG),
        (None, "FATAL", logging.CRITICAL),
        ("LOUD", None, logging.INFO),  # unknown: the default, not a crash at import
    ],
)
def test_level_from_env(
    monkeypatch: pytest.MonkeyPatch,
    streamkit_level: str | None,
    lambda_level: str | None,
    expected: int,
) -> None:
    for name, value in (
        ("STREAMKIT_LOG_LEVEL", streamkit_level),
        ("AWS_LAMBDA_LOG_LEVEL", lambda_level),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert level_from_env() == expected


@pytest.mark.usefixtures("no_log_env")
def test_the_logger_level_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "WARN")
    log, stream = capture()
    log.info("dropped")
    log.warning("kept")
    assert [line["message"] for line in lines(stream)] == ["kept"]


@pytest.mark.usefixtures("no_log_env")
def test_get_logger_twice_adds_one_handler_and_does_not_propagate() -> None:
    stream = io.StringIO()
    name = f"test.obs.{uuid.uuid4().hex}"
    get_logger(name, stream=stream)
    log = get_logger(name, stream=stream, service="s")
    log.info("once")
    assert len(lines(stream)) == 1
    assert logging.getLogger(name).propagate is False


@pytest.mark.usefixtures("no_log_env")
def test_append_and_remove_keys() -> None:
    log, stream = capture()
    log.append_keys(tenant="t-1")
    log.info("with")
    log.remove_keys("tenant")
    log.info("without")
    first, second = lines(stream)
    assert first["tenant"] == "t-1" and "tenant" not in second
