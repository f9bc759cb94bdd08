"""Personal data never leaves through the side doors: logs, the audit archive, DLQ tooling.

Already proven elsewhere: the audit line redacts the configured fields at any depth
(tests/unit/test_platform_sinks.py), the platform's archive holds no phone, address or email
(tests/integration/test_platform_app.py, tests/e2e/test_platform.py), and the JSON logger
replaces item images (tests/unit for streamkit.observability). What was not: one pipeline
through the local runtime, where the items carry the fields the platform configures as PII
(``AUDIT_REDACT_FIELDS``: email, phone, address), and everything that pipeline writes down is
searched for their values:

- the runner's and the invoker's own log records (captured at DEBUG), including the warnings of
  a failing record and of a crashed invoke;
- the function's output as the runner ships it to CloudWatch Logs (``/aws/lambda/<name>``):
  the handler logs the record, its raw event and its image through streamkit's logger;
- the audit archive (``orderplatform.audit.AuditArchive``, the platform's sink) in S3;
- ``streamkit dlq list`` and ``streamkit dlq show`` (the real CLI) on the on-failure queue that
  received the poison record's failure.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import AwsClients, create_function
from tests.helpers.runner_scenario import Scenario
from tests.helpers.streamkit_zip import wait_for

REPO = Path(__file__).resolve().parents[2]
PLATFORM = REPO / "handlers" / "orderplatform"

FUNCTION = r"""
import os
import boto3
from orderplatform.audit import AuditArchive, redact_fields
from streamkit.observability import get_logger, observed_batch_handler

log = get_logger("pii-consumer", service="pii")
audit = AuditArchive(os.environ["AUDIT_BUCKET"], client=boto3.client("s3"),
                     redact=redact_fields(os.environ["AUDIT_REDACT_FIELDS"]))


@observed_batch_handler(service="pii")
def handler(record):
    # Fields, not message text (the logger's documented contract). Images under their own
    # names are redacted by name; the same image under another name ("image=") loses the
    # configured PII fields (STREAMKIT_LOG_REDACT_FIELDS, as the platform's Terraform sets it).
    log.info("archiving", record=record, raw=record.raw, new_image=record.new_image,
             image=record.new_image)
    audit(record)
    if record.keys["pk"] == os.environ["POISON"]:
        raise ValueError("poison order " + record.keys["pk"])
"""


def _streamkit(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "streamkit.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_no_configured_pii_field_reaches_logs_archive_or_dlq_tooling(
    scenario: Callable[..., Scenario],
    aws: AwsClients,
    endpoint_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s: Scenario = scenario()
    tag = s.unique_name("pii")
    secrets = {
        "email": f"{tag}@example.com",
        "phone": f"+1555{tag[-6:]}",
        "street": f"{tag} Secret Lane",
    }
    bucket = s.unique_name("audit")
    aws.s3.create_bucket(Bucket=bucket)
    dlq_url, dlq_arn = s.queue("pii-dlq")
    function = s.unique_name("pii-fn")
    files: dict[str, str | bytes] = {"app.py": FUNCTION}
    files.update({f"orderplatform/{p.name}": p.read_text() for p in PLATFORM.glob("*.py")})
    create_function(
        aws.lambda_,
        function,
        files,
        timeout=10,
        env={"AUDIT_BUCKET": bucket, "AUDIT_REDACT_FIELDS": "email,phone,address",
             "STREAMKIT_LOG_REDACT_FIELDS": "email,phone,address", "POISON": "order-2"},
    )  # fmt: skip
    s.map(
        FunctionName=function,
        BatchSize=10,
        MaximumRetryAttempts=0,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    caplog.set_level(logging.DEBUG, logger="streamkit")
    runner = s.runner()  # ships function output to CloudWatch Logs (the default)
    for n in range(4):
        s.put(
            f"order-{n}",
            customer={"S": f"customer {n}"},
            email={"S": secrets["email"]},
            phone={"S": secrets["phone"]},
            address={"M": {"street": {"S": secrets["street"]}}},
        )
    (uuid,) = s.mappings
    runner.wait_until(
        lambda st: st[uuid]["succeeded"] + st[uuid]["sent_to_destination"] >= 4, timeout=60
    )

    logs = aws.client("logs")
    group = f"/aws/lambda/{function}"

    def shipped() -> str:
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            return "\n".join(e["message"] for page in pages for e in page["events"])
        except logs.exceptions.ResourceNotFoundException:
            return ""

    # The handler's "archiving" lines and the failure of order-2 have been shipped.
    wait_for(lambda: shipped().count('"archiving"') >= 3 and "poison order" in shipped(),
             timeout=30, what="the function's log lines in CloudWatch Logs")  # fmt: skip
    cloudwatch = shipped()
    archive = "\n".join(
        aws.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode()
        for o in aws.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    )
    dlq_list = _streamkit("dlq", "list", "--endpoint-url", endpoint_url)
    dlq_queue = _streamkit("dlq", "list", dlq_url, "--endpoint-url", endpoint_url)
    dlq_show = _streamkit("dlq", "show", dlq_url, "--endpoint-url", endpoint_url)
    runner_logs = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("streamkit")
    )

    # Each output is really there and describes these records (else "no PII" proves nothing).
    assert cloudwatch.count('"archiving"') >= 3 and "order-1" in cloudwatch
    assert archive.count("\n") >= 3 and "customer 1" in archive
    assert dlq_url.rsplit("/", 1)[1] in dlq_list
    assert '"DDBStreamBatchInfo"' in dlq_show and "RetryAttemptsExhausted" in dlq_show
    assert "poison order" in runner_logs
    outputs = {
        "runner and invoker logs": runner_logs,
        "CloudWatch Logs": cloudwatch,
        "audit archive": archive,
        "dlq list": dlq_list + dlq_queue,
        "dlq show": dlq_show,
    }
    leaks = [
        (where, field) for where, text in outputs.items() for field, value in secrets.items()
        if value in text
    ]  # fmt: skip
    assert leaks == [], leaks
