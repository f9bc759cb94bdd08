"""Shared by the tests/integration/test_runner_* modules: a function that reports what it was
given and what it did, and helpers to deploy it and read its reports.

The function sends one message per invoke to the scenario's recorder queue::

    {"kind": "invoke", "keys": [...], "seqs": [...], "versions": [...], "window": {...}?,
     "started": t0, "finished": t1, "request_id": ..., "outcome": "ok"|"raised"|"partial"}

``outcome`` says whether its side effects count: a record is *processed* when it was in an
invoke whose outcome is "ok", or before the reported item failure of a "partial" one.
Behaviour comes from environment variables:

- ``POISON``: comma-separated keys; an invoke that holds one raises (``MODE=raise``) or
  reports the first one as its item failure (``MODE=report``);
- ``SLEEP_S``: seconds each invoke takes;
- ``MODE=window``: tumbling-window aggregation: state ``{"count": n, "keys": [...]}``;
  ``FAIL_FINAL=n`` fails the first n final invokes, ``BIG_STATE=1`` returns a state over
  1 MB from the first invoke, ``NO_STATE=1`` returns no state from the first invoke;
- ``FULL=1``: the message also carries the whole event (keep it under SQS's 256 KB).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.helpers import create_function
from tests.helpers.fake_streams import FakeStreamsClient
from tests.helpers.runner_scenario import Scenario

__all__ = [
    "FUNCTION_CODE",
    "Call",
    "calls",
    "calls_covering",
    "deploy",
    "fake_stream_for",
    "processed_keys",
    "shard_id_of",
    "streams_from",
    "wait_until",
]

FUNCTION_CODE = r"""
import json, os, time
import boto3

_sqs = boto3.client("sqs")
_finals = [0]
_invokes = [0]


def _report(event, context, started, outcome, failed_at=None):
    records = event["Records"]
    body = {
        "kind": "final" if event.get("isFinalInvokeForWindow") else "invoke",
        "keys": [r["dynamodb"]["Keys"]["pk"]["S"] for r in records],
        "seqs": [r["dynamodb"]["SequenceNumber"] for r in records],
        "versions": [int(r["dynamodb"].get("NewImage", {}).get("v", {}).get("N", "0")) for r in records],
        "started": started,
        "finished": time.time(),
        "request_id": context.aws_request_id,
        "function": context.function_name,
        "outcome": outcome,
        "failed_at": failed_at,
    }
    if "window" in event:
        body["window"] = {k: v for k, v in event.items() if k != "Records"}
        if len(json.dumps(body["window"])) > 200_000:
            body["window"]["state"] = {"size": len(json.dumps(event["state"]))}
    if os.environ.get("FULL"):
        body["event"] = event
    _sqs.send_message(QueueUrl=os.environ["RECORD_QUEUE"], MessageBody=json.dumps(body))


def handler(event, context):
    started = time.time()
    _invokes[0] += 1
    time.sleep(float(os.environ.get("SLEEP_S", "0")))  # a slow handler, when a test asks
    mode = os.environ.get("MODE", "raise")
    poison = set(filter(None, os.environ.get("POISON", "").split(",")))
    records = event["Records"]
    if mode == "window":
        return _window(event, context, started)
    bad = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] in poison]
    if bad and mode == "raise":
        _report(event, context, started, "raised")
        raise RuntimeError("poison record " + bad[0]["dynamodb"]["Keys"]["pk"]["S"])
    if bad and mode == "report":
        seq = bad[0]["dynamodb"]["SequenceNumber"]
        _report(event, context, started, "partial", failed_at=seq)
        return {"batchItemFailures": [{"itemIdentifier": seq}]}
    _report(event, context, started, "ok")
    return None


def _window(event, context, started):
    if event["isFinalInvokeForWindow"]:
        _finals[0] += 1
        if _finals[0] <= int(os.environ.get("FAIL_FINAL", "0")):
            _report(event, context, started, "raised")
            raise RuntimeError("final invoke failed")
    if os.environ.get("NO_STATE") and _invokes[0] == 1:
        _report(event, context, started, "raised")
        return {"batchItemFailures": []}
    state = dict(event["state"])
    if os.environ.get("BIG_STATE") and _invokes[0] == 1:
        state["blob"] = "x" * (1024 * 1024)
    state["count"] = state.get("count", 0) + len(event["Records"])
    state["keys"] = state.get("keys", []) + [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    _report(event, context, started, "ok")
    return {"state": state}
"""


@dataclass
class Call:
    """One invoke, as the function reported it."""

    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def keys(self) -> list[str]:
        return list(self.body["keys"])

    @property
    def seqs(self) -> list[str]:
        return list(self.body["seqs"])

    @property
    def function(self) -> str:
        return str(self.body["function"])

    @property
    def outcome(self) -> str:
        return str(self.body["outcome"])

    @property
    def window(self) -> dict[str, Any]:
        return dict(self.body.get("window") or {})

    def processed(self) -> list[str]:
        """Keys whose side effects count (see the module doc)."""
        if self.outcome == "ok":
            return self.keys
        if self.outcome == "partial":
            return self.keys[: self.seqs.index(self.body["failed_at"])]
        return []


def deploy(s: Scenario, timeout: int = 10, **env: str) -> str:
    """Create the reporting function in ``s``'s account; returns its name."""
    name = s.unique_name("fn")
    create_function(
        s.aws.lambda_,
        name,
        {"app.py": FUNCTION_CODE},
        timeout=timeout,
        env={"RECORD_QUEUE": s.record_queue, **env},
    )
    return name


def calls(s: Scenario, count: int, timeout: float = 20.0) -> list[Call]:
    """At least ``count`` reports (all that arrived by then), in the order invokes started."""
    return [Call(b) for b in s.messages(s.record_queue, count, timeout)]


def calls_covering(s: Scenario, records: int, timeout: float = 30.0) -> list[Call]:
    """Reports until together they hold ``records`` records (or the timeout), in start order."""
    reported: list[Call] = []
    deadline = time.monotonic() + timeout
    while sum(len(c.keys) for c in reported) < records and time.monotonic() < deadline:
        reported += [Call(b) for b in s.messages(s.record_queue, 1, timeout=0.5)]
    reported.sort(key=lambda c: float(c.body["started"]))
    return reported


def processed_keys(reported: list[Call]) -> list[str]:
    return [key for call in reported for key in call.processed()]


def shard_id_of(s: Scenario) -> str:
    description = s.aws.dynamodbstreams.describe_stream(StreamArn=s.stream_arn)
    return str(description["StreamDescription"]["Shards"][0]["ShardId"])


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def fake_stream_for(s: Scenario, fake: FakeStreamsClient) -> str:
    """A stream in ``fake`` with the same ARN as ``s``'s real table stream (so mappings can
    be made on the emulator, which checks that the stream exists); returns the ARN."""
    table = s.stream_arn.split("/")[1]
    label = s.stream_arn.rsplit("/stream/", 1)[1]
    arn = fake.create_stream(table, label=label)
    assert arn == s.stream_arn, (arn, s.stream_arn)
    return arn


def streams_from(fake: FakeStreamsClient, s: Scenario) -> Callable[[str], Any]:
    """A Runner client_factory: DynamoDB Streams from ``fake``, the rest from the emulator."""
    return lambda service: fake if service == "dynamodbstreams" else s.aws.client(service)
