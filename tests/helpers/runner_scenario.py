"""The runner end-to-end scenario shared by tests/integration/test_runner*.py: a table with a
stream, a function that reports every event it gets to an SQS "recorder" queue, and
in-process runners with fast pacing (``scenarios``; the ``scenario`` fixture lives in
tests/integration/conftest.py)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from streamkit.local.esm.destinations import DeliveryPolicy
from streamkit.local.esm.processor import RetryDelay
from streamkit.local.esm.runner import Runner
from streamkit.streams.throttling import IdleBackoff
from tests.helpers import AwsClients, create_function
from tests.helpers.queues import create_queue
from tests.helpers.streams import create_stream_table

HANDLER = r"""
import json, os, time
import boto3

_sqs = boto3.client("sqs")
_failures_so_far = {}


def handler(event, context):
    _sqs.send_message(
        QueueUrl=os.environ["RECORD_QUEUE"],
        MessageBody=json.dumps({"event": event, "started": time.time(), "request_id": context.aws_request_id}),
    )
    mode = os.environ.get("MODE", "ok")
    records = event["Records"]
    if mode == "sleep":
        time.sleep(float(os.environ["SLEEP_S"]))  # the scenario: a slow handler
    elif mode == "raise_on_poison":
        if any("poison" in r["dynamodb"].get("NewImage", {}) for r in records):
            raise RuntimeError("poison record")
    elif mode == "report":
        # Items with fail_times=N are reported failed the first N times they are seen.
        failed = []
        for r in records:
            image = r["dynamodb"].get("NewImage", {})
            seq = r["dynamodb"]["SequenceNumber"]
            if "fail_times" in image:
                _failures_so_far[seq] = _failures_so_far.get(seq, 0) + 1
                if _failures_so_far[seq] <= int(image["fail_times"]["N"]):
                    failed.append({"itemIdentifier": seq})
        return {"batchItemFailures": failed}
    elif mode == "respond":
        return json.loads(os.environ["RESPONSE"])
    return None
"""

# Fast enough for tests; AWS's own pacing is slower.
FAST = {
    "retry_delay": RetryDelay(initial=0.05, maximum=0.2),
    "delivery": DeliveryPolicy(initial_delay=0.05, max_delay=0.2),
    "idle_backoff": lambda: IdleBackoff(min_delay=0.01, max_delay=0.05),
}


@dataclass
class Invocation:
    records: list[dict[str, Any]]
    started: float
    request_id: str

    @property
    def keys(self) -> list[str]:
        return [r["dynamodb"]["Keys"]["pk"]["S"] for r in self.records]


@dataclass
class Scenario:
    """One table + recorder queue + function; mappings made through the Lambda API."""

    aws: AwsClients
    endpoint_url: str
    table: str
    stream_arn: str
    record_queue: str
    function: str
    state_dir: Path
    unique_name: Callable[[str], str]
    mappings: list[str] = field(default_factory=list)
    runners: list[Runner] = field(default_factory=list)

    def put(self, key: str, **attributes: Any) -> None:
        item = {"pk": {"S": key}, **attributes}
        self.aws.dynamodb.put_item(TableName=self.table, Item=item)

    def map(self, **settings: Any) -> str:
        settings.setdefault("StartingPosition", "TRIM_HORIZON")
        settings.setdefault("FunctionName", self.function)
        response = self.aws.lambda_.create_event_source_mapping(
            EventSourceArn=self.stream_arn, **settings
        )
        uuid: str = response["UUID"]
        self.mappings.append(uuid)
        return uuid

    def queue(self, prefix: str = "dlq") -> tuple[str, str]:
        return create_queue(self.aws.sqs, self.unique_name(prefix))

    def runner(self, **options: Any) -> Runner:
        for key, value in FAST.items():
            options.setdefault(key, value)
        runner = Runner(
            self.endpoint_url,
            self.state_dir,
            reconcile_interval=options.pop("reconcile_interval", 0.2),
            mapping_filter=lambda m: m["UUID"] in self.mappings,
            **options,
        )
        self.runners.append(runner)
        return runner.start()

    def invocations(self, count: int, timeout: float = 15.0) -> list[Invocation]:
        return [
            Invocation(m["event"]["Records"], m["started"], m["request_id"])
            for m in self._drain(self.record_queue, count, timeout)
        ]

    def messages(self, queue_url: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        return self._drain(queue_url, count, timeout)

    def _drain(self, queue_url: str, count: int, timeout: float) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(bodies) < count and time.monotonic() < deadline:
            response = self.aws.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            for message in response.get("Messages", []):
                bodies.append(json.loads(message["Body"]))
                self.aws.sqs.delete_message(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            if len(bodies) < count:
                time.sleep(0.05)
        bodies.sort(key=lambda b: b.get("started", 0))
        return bodies

    def assert_no_more(self, queue_url: str | None = None, wait: float = 0.6) -> None:
        """Nothing more arrives within ``wait`` seconds. An absence has no event to wait
        for: the window is the check (callers first wait for what precedes it)."""
        time.sleep(wait)
        response = self.aws.sqs.receive_message(
            QueueUrl=queue_url or self.record_queue, MaxNumberOfMessages=10
        )
        assert response.get("Messages", []) == []


@contextlib.contextmanager
def scenarios(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., Scenario]]:
    made: list[Scenario] = []

    def make(view_type: str = "NEW_AND_OLD_IMAGES", timeout: int = 10, **env: str) -> Scenario:
        table = unique_name("esm")
        stream_arn = create_stream_table(aws.dynamodb, table, view_type=view_type)
        record_queue = aws.sqs.create_queue(QueueName=unique_name("recorder"))["QueueUrl"]
        function = unique_name("consumer")
        create_function(
            aws.lambda_,
            function,
            {"app.py": HANDLER},
            timeout=timeout,
            env={"RECORD_QUEUE": record_queue, **env},
        )
        made.append(
            Scenario(
                aws,
                endpoint_url,
                table,
                stream_arn,
                record_queue,
                function,
                tmp_path / "state",
                unique_name,
            )
        )
        return made[-1]

    yield make
    for each in made:
        for runner in each.runners:
            runner.stop()
        for uuid in each.mappings:
            with contextlib.suppress(ClientError):
                aws.lambda_.delete_event_source_mapping(UUID=uuid)
