"""``streamkit dlq list|show|replay`` against the embedded emulator, on a real failure record.

The module's fixture produces one: a function that always raises consumes a stream through a
mapping (MaximumRetryAttempts 0, OnFailure -> SQS) run by the in-process runner, which gives up
on the batch and sends the record to the queue. Each test then puts that exact record in a
queue of its own (optionally pointed at another function) and runs the CLI in-process.
Replays go through the local invoker (``--invoke auto`` with an endpoint URL): the functions
report every event they get to a recorder queue, so a test can check what was replayed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamkit.cli import main
from tests.helpers import AwsClients, create_function, create_stream_table, make_zip
from tests.helpers.queues import create_queue
from tests.helpers.streamkit_zip import running_mapping, wait_for

SECRET = "top-secret-address"

RECORDING_HANDLER = r"""
import json, os
import boto3

_sqs = boto3.client("sqs")
OUTCOME = "{outcome}"


def handler(event, context):
    _sqs.send_message(
        QueueUrl=os.environ["RECORD_QUEUE"],
        MessageBody=json.dumps({{"function": context.function_name, "event": event}}),
    )
    if OUTCOME == "raise":
        raise RuntimeError("still broken")
    if OUTCOME == "partial":
        last = event["Records"][-1]["dynamodb"]["SequenceNumber"]
        return {{"batchItemFailures": [{{"itemIdentifier": last}}]}}
    return {{"batchItemFailures": []}}
"""


def handler_files(outcome: str) -> dict[str, str | bytes]:
    return {"app.py": RECORDING_HANDLER.format(outcome=outcome)}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _drain(aws: AwsClients, queue_url: str, count: int, timeout: float = 20.0) -> list[Any]:
    """Receive and delete up to ``count`` message bodies (JSON), waiting up to ``timeout``."""
    bodies: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        response = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        for message in response.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if len(bodies) < count:
            time.sleep(0.05)
    return bodies


def _counts(aws: AwsClients, queue_url: str) -> tuple[int, int]:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _queue(aws: AwsClients, prefix: str) -> tuple[str, str]:
    return create_queue(aws.sqs, _name(prefix))


@dataclass(frozen=True)
class FailedBatch:
    """A failure record the runner produced, and what the failing function was given."""

    table: str
    stream_arn: str
    function_arn: str
    body: str
    """The DLQ message body, exactly as the runner sent it."""
    original_records: list[dict[str, Any]]
    recorder_url: str

    @property
    def record(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def sequence_numbers(self) -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for r in self.original_records]


@pytest.fixture(scope="module")
def failed_batch(
    _session_clients: AwsClients, endpoint_url: str, tmp_path_factory: pytest.TempPathFactory
) -> FailedBatch:
    aws = _session_clients
    table = _name("orders")
    stream_arn = create_stream_table(aws.dynamodb, table)
    recorder_url, _ = _queue(aws, "recorder")
    dlq_url, dlq_arn = _queue(aws, "dlq")
    function_arn = create_function(
        aws.lambda_, _name("broken"), handler_files("raise"), env={"RECORD_QUEUE": recorder_url}
    )
    for i in range(3):
        item = {"pk": {"S": f"order-{i}"}, "address": {"S": SECRET}, "n": {"N": str(i)}}
        aws.dynamodb.put_item(TableName=table, Item=item)
    with running_mapping(
        aws,
        endpoint_url,
        tmp_path_factory.mktemp("runner"),
        function=function_arn,
        stream_arn=stream_arn,
        BatchSize=10,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    ) as (runner, mapping_uuid):
        runner.wait_until(lambda st: st[mapping_uuid]["sent_to_destination"] >= 1, timeout=60)
    (invoked,) = _drain(aws, recorder_url, 1)
    message = wait_for(
        lambda: aws.sqs.receive_message(QueueUrl=dlq_url).get("Messages"), what="DLQ message"
    )[0]
    return FailedBatch(
        table=table,
        stream_arn=stream_arn,
        function_arn=function_arn,
        body=message["Body"],
        original_records=invoked["event"]["Records"],
        recorder_url=recorder_url,
    )


@pytest.fixture
def dlq(aws: AwsClients) -> Callable[..., tuple[str, str]]:
    """``dlq(*bodies)``: a fresh queue holding those messages; returns (URL, ARN)."""

    def make(*bodies: str) -> tuple[str, str]:
        url, arn = _queue(aws, "dlq")
        for body in bodies:
            aws.sqs.send_message(QueueUrl=url, MessageBody=body)
        return url, arn

    return make


def _with(failed: FailedBatch, **request_context: str) -> str:
    """The failure record with ``requestContext`` fields replaced, as a message body."""
    record = failed.record
    record["requestContext"].update(request_context)
    return json.dumps(record)


@pytest.fixture
def deploy(aws: AwsClients) -> Iterator[Callable[[str], tuple[str, str]]]:
    """``deploy(outcome)``: a recording function ("ok", "raise", "partial"); (ARN, recorder)."""

    def make(outcome: str) -> tuple[str, str]:
        recorder_url, _ = _queue(aws, "recorder")
        arn = create_function(
            aws.lambda_, _name(outcome), handler_files(outcome), env={"RECORD_QUEUE": recorder_url}
        )
        return arn, recorder_url

    yield make


def _dlq_args(action: str, queue: str, endpoint_url: str, *more: str) -> list[str]:
    return ["dlq", action, queue, "--endpoint-url", endpoint_url, *more]


def test_the_fixture_produced_lambdas_failure_record(failed_batch: FailedBatch) -> None:
    record = failed_batch.record
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"] == failed_batch.function_arn
    info = record["DDBStreamBatchInfo"]
    assert info["streamArn"] == failed_batch.stream_arn
    assert info["batchSize"] == 3 == len(failed_batch.sequence_numbers)
    assert info["startSequenceNumber"] == failed_batch.sequence_numbers[0]
    assert info["endSequenceNumber"] == failed_batch.sequence_numbers[-1]


def test_list_shows_each_mappings_destination_with_its_message_count(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, arn = dlq(failed_batch.body)
    _, idle_arn = dlq()
    # Lambda refuses a second mapping of one function on one stream (409), so the idle
    # destination belongs to a mapping of a second function.
    idle_function_arn = create_function(aws.lambda_, _name("idle"), handler_files("raise"))
    # The fixture's own mapping of that function was deleted; Lambda lists it as Deleting
    # for a moment, and a new mapping of the same pair conflicts until it is gone.
    wait_for(
        lambda: (
            not aws.lambda_.list_event_source_mappings(FunctionName=failed_batch.function_arn)[
                "EventSourceMappings"
            ]
        ),
        what="the fixture's mapping to be deleted",
    )
    mappings = [
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=failed_batch.stream_arn,
            FunctionName=function,
            StartingPosition="TRIM_HORIZON",
            Enabled=False,  # only listed here, never run
            DestinationConfig={"OnFailure": {"Destination": destination}},
        )["UUID"]
        for function, destination in (
            (failed_batch.function_arn, arn),
            (idle_function_arn, idle_arn),
        )
    ]
    # Lambda lists a new mapping as Creating for a moment before it settles (Disabled here).
    for mapping in mappings:
        wait_for(
            lambda m=mapping: aws.lambda_.get_event_source_mapping(UUID=m)["State"] == "Disabled",
            what=f"mapping {mapping} to settle",
        )
    try:
        assert main(["dlq", "list", "--endpoint-url", endpoint_url]) == 0
    finally:
        for mapping in mappings:
            aws.lambda_.delete_event_source_mapping(UUID=mapping)
    out = capsys.readouterr().out
    lines = out.splitlines()
    function_name = failed_batch.function_arn.rsplit(":", 1)[-1]
    (busy,) = [line for line in lines if mappings[0] in line and "->" in line]
    assert busy.split() == [
        mappings[0],
        function_name,
        "table",
        failed_batch.table,
        "->",
        arn,
        "1",
        "message",
        "(0",
        "in",
        "flight)",
        "[Disabled]",
    ]
    (idle,) = [line for line in lines if mappings[1] in line and "->" in line]
    assert idle.endswith(f"-> {idle_arn}  0 messages (0 in flight)  [Disabled]")
    queue_line = f"  {url.rsplit('/', 1)[-1]}  1 message (0 in flight)  <- on failure of mapping "
    assert queue_line + mappings[0] in lines
    assert out.index("On-failure destinations") < out.index("Queues:") < out.index(queue_line)


def test_list_queue_summarizes_failure_records_without_consuming_them(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = dlq(failed_batch.body, "not a failure record")
    info = failed_batch.record["DDBStreamBatchInfo"]
    for _ in range(2):  # listing twice shows the same: nothing was consumed
        assert main(_dlq_args("list", url, endpoint_url)) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == f"{url}: 2 messages visible, 0 in flight"
        (summary,) = [line for line in lines if "RetryAttemptsExhausted" in line]
        parts = summary.strip().split("  ")
        assert parts[1:-1] == [
            "RetryAttemptsExhausted",
            failed_batch.function_arn,
            f"table {failed_batch.table}",
            f"shard {info['shardId']}",
            f"seq {info['startSequenceNumber']}..{info['endSequenceNumber']}",
            "batch 3",
            "invokes 1",
        ]
        assert parts[0] == failed_batch.record["timestamp"]
        assert parts[-1].startswith("message ")
        assert any("not a DynamoDB stream on-failure record (20 bytes)" in line for line in lines)
        assert _counts(aws, url) == (2, 0)


def test_show_prints_whole_failure_records_and_hides_other_messages(
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = dlq(failed_batch.body, json.dumps({"address": SECRET}))
    queue_name = url.rsplit("/", 1)[-1]
    assert main(_dlq_args("show", queue_name, endpoint_url)) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    blocks = [b for b in out.split("# message ") if b]
    (record_block,) = [b for b in blocks if "{" in b]
    header, _, document = record_block.partition("\n")
    assert ", received 1 time" in header
    assert json.loads(document) == failed_batch.record
    assert any("not a DynamoDB stream on-failure record" in b for b in blocks)


def _replay(endpoint_url: str, queue: str, tmp_path: Path, *more: str) -> int:
    return main(_dlq_args("replay", queue, endpoint_url, "--state-dir", str(tmp_path), *more))


def test_replay_keeps_the_message_while_the_function_fails_and_deletes_it_once_fixed(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    deploy: Callable[[str], tuple[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    function_arn, recorder = deploy("raise")
    url, _ = dlq(_with(failed_batch, functionArn=function_arn))

    assert _replay(endpoint_url, url, tmp_path) == 1
    out, err = capsys.readouterr()
    assert "failed: RuntimeError: still broken; message kept" in out
    assert "1 failure record not replayed (kept)" in err
    (seen,) = _drain(aws, recorder, 1)
    assert seen["event"] == {"Records": failed_batch.original_records}
    assert _counts(aws, url) == (1, 0)  # kept, and visible again at once

    aws.lambda_.update_function_code(
        FunctionName=function_arn, ZipFile=make_zip(handler_files("ok"))
    )
    assert _replay(endpoint_url, url, tmp_path) == 0
    out = capsys.readouterr().out
    assert "replayed 3 records" in out and "message deleted" in out
    (seen,) = _drain(aws, recorder, 1)
    assert [r["dynamodb"]["SequenceNumber"] for r in seen["event"]["Records"]] == (
        failed_batch.sequence_numbers
    )
    assert seen["event"] == {"Records": failed_batch.original_records}
    assert _counts(aws, url) == (0, 0)


def test_replay_to_another_function_invokes_it_with_the_original_records(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    deploy: Callable[[str], tuple[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixed_arn, recorder = deploy("ok")
    url, _ = dlq(failed_batch.body)
    fixed_name = fixed_arn.rsplit(":", 1)[-1]
    assert _replay(endpoint_url, url, tmp_path, "--function", fixed_name) == 0
    out = capsys.readouterr().out
    info = failed_batch.record["DDBStreamBatchInfo"]
    seqs = f"seq {info['startSequenceNumber']}..{info['endSequenceNumber']}"
    assert f"replayed 3 records (shard {info['shardId']} {seqs}) to {fixed_name}" in out
    (seen,) = _drain(aws, recorder, 1)
    assert seen["function"] == fixed_name
    assert seen["event"] == {"Records": failed_batch.original_records}
    assert _counts(aws, url) == (0, 0)
    assert _drain(aws, failed_batch.recorder_url, 1, timeout=0.3) == []  # not the original


def test_replay_keeps_the_message_when_the_function_reports_item_failures(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    deploy: Callable[[str], tuple[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    partial_arn, recorder = deploy("partial")
    url, _ = dlq(failed_batch.body)
    assert _replay(endpoint_url, url, tmp_path, "--function", partial_arn) == 1
    out = capsys.readouterr().out
    last = failed_batch.sequence_numbers[-1]
    assert f"reported 1 batchItemFailures: [{{'itemIdentifier': '{last}'}}]" in out
    assert "message kept" in out
    assert len(_drain(aws, recorder, 1)) == 1
    assert _counts(aws, url) == (1, 0)


def test_dry_run_invokes_nothing_and_keeps_the_message(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    deploy: Callable[[str], tuple[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixed_arn, recorder = deploy("ok")
    url, _ = dlq(failed_batch.body)
    assert _replay(endpoint_url, url, tmp_path, "--function", fixed_arn, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would replay 3 records" in out
    assert SECRET not in out
    assert _drain(aws, recorder, 1, timeout=1.0) == []
    assert _counts(aws, url) == (1, 0)


def test_replay_of_records_that_left_the_stream_keeps_the_message(
    aws: AwsClients,
    endpoint_url: str,
    failed_batch: FailedBatch,
    dlq: Callable[..., tuple[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The table was recreated since: its stream has a new label, the old one is gone.
    record = failed_batch.record
    old_stream = failed_batch.stream_arn.rsplit("/", 1)[0] + "/2020-01-01T00:00:00.000"
    record["DDBStreamBatchInfo"]["streamArn"] = old_stream
    url, _ = dlq(json.dumps(record))
    assert _replay(endpoint_url, url, tmp_path) == 1
    out = capsys.readouterr().out
    assert "records left the stream: the stream no longer exists" in out
    assert "message kept" in out
    assert _counts(aws, url) == (1, 0)
    assert _drain(aws, failed_batch.recorder_url, 1, timeout=0.3) == []


def test_dlq_commands_report_a_missing_queue(
    endpoint_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = _name("missing")
    for action in ("list", "show"):
        assert main(_dlq_args(action, missing, endpoint_url)) == 1
        assert f"streamkit dlq {action}: error: queue {missing} does not exist" in (
            capsys.readouterr().err
        )
    assert _replay(endpoint_url, missing, tmp_path) == 1
    assert f"queue {missing} does not exist" in capsys.readouterr().err
