"""A small focused pipeline for the console's tests, run by a real Runner with its console.

Two stream tables and three mappings: ``orders`` -> ``work`` (fails on a record whose new image
has a ``poison`` attribute; MaximumRetryAttempts 0 and an SQS on-failure destination) and
``orders`` -> ``audit``, ``payments`` -> ``audit`` (always succeed). :meth:`ConsolePipeline.fix`
deploys a ``work`` that no longer fails (the runner restarts the mapping with the new code).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.aws_clients import AwsClients
from tests.helpers.lambda_zip import create_function, make_zip
from tests.helpers.queues import create_queue
from tests.helpers.streams import create_stream_table

__all__ = ["SECRET", "ConsolePipeline", "console_pipeline", "http_json"]

SECRET = "console-secret-address"  # in every item: must never show without images=1

WORK = """
import json

def handler(event, context):
    for record in event["Records"]:
        image = record["dynamodb"].get("NewImage") or {}
        if "poison" in image:
            raise ValueError("poison record " + json.dumps(record["dynamodb"]["Keys"]))
    return {"batchItemFailures": []}
"""

FIXED = """
def handler(event, context):
    return {"batchItemFailures": []}
"""


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def http_json(
    url: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON body, headers) of one request; HTTP errors are returned too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


@dataclass
class ConsolePipeline:
    aws: AwsClients
    runner: Any
    orders: str
    payments: str
    work_arn: str
    audit_arn: str
    dlq_url: str
    work_uuid: str
    mapping_uuids: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The console's base URL, without the trailing slash."""
        return str(self.runner.console_url).rstrip("/")

    def put(self, table: str, pk: str, **attributes: str) -> None:
        item = {"pk": {"S": pk}, "address": {"S": SECRET}}
        item.update({k: {"S": v} for k, v in attributes.items()})
        self.aws.dynamodb.put_item(TableName=table, Item=item)

    def fix(self) -> None:
        """Deploy a ``work`` that succeeds, and wait until the runner runs it."""
        self.aws.lambda_.update_function_code(
            FunctionName=self.work_arn, ZipFile=make_zip({"app.py": FIXED})
        )

    def dlq_visible(self) -> int:
        attributes = self.aws.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@contextmanager
def console_pipeline(
    aws: AwsClients, endpoint_url: str, state_dir: Path
) -> Iterator[ConsolePipeline]:
    from streamkit.local.esm.batcher import IdleBackoff
    from streamkit.local.esm.destinations import DeliveryPolicy
    from streamkit.local.esm.processor import RetryDelay
    from streamkit.local.esm.runner import Runner

    orders, payments = _name("orders"), _name("payments")
    orders_stream = create_stream_table(aws.dynamodb, orders)
    payments_stream = create_stream_table(aws.dynamodb, payments)
    dlq_url, dlq_arn = create_queue(aws.sqs, _name("console-dlq"))
    work = create_function(aws.lambda_, _name("work"), {"app.py": WORK})
    audit = create_function(aws.lambda_, _name("audit"), {"app.py": FIXED})
    common = {"StartingPosition": "LATEST", "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    uuids = [
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=orders_stream,
            FunctionName=work,
            BatchSize=10,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
            **common,
        )["UUID"],
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=orders_stream, FunctionName=audit, **common
        )["UUID"],
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=payments_stream, FunctionName=audit, **common
        )["UUID"],
    ]
    ours = set(uuids)
    runner = Runner(
        endpoint_url,
        state_dir,
        reconcile_interval=0.2,
        mapping_filter=lambda mapping: mapping["UUID"] in ours,
        retry_delay=RetryDelay(initial=0.05, maximum=0.2),
        delivery=DeliveryPolicy(initial_delay=0.05, max_delay=0.2),
        idle_backoff=lambda: IdleBackoff(min_delay=0.01, max_delay=0.05),
        console="127.0.0.1:0",
    )
    runner.start()
    try:
        runner.wait_until(
            lambda stats: all(stats[u]["state"] == "polling" for u in uuids), timeout=60
        )
        yield ConsolePipeline(
            aws=aws,
            runner=runner,
            orders=orders,
            payments=payments,
            work_arn=work,
            audit_arn=audit,
            dlq_url=dlq_url,
            work_uuid=uuids[0],
            mapping_uuids=uuids,
        )
    finally:
        runner.stop()
        for mapping_uuid in uuids:
            with contextlib.suppress(Exception):
                aws.lambda_.delete_event_source_mapping(UUID=mapping_uuid)
