"""Fault scenarios on a focused pipeline through the local runtime, each ending in an accounting.

Pipeline: a table with a stream -> ``streamkit run``'s Runner (in process) -> the reporting
function of tests/helpers/runner_support.py (one SQS report per invoke: keys,
sequence numbers, outcome) -> an SQS on-failure destination. Faults come from the emulator's
fault injection (``streamkit.local.faults``), so every part sees real AWS errors over HTTP.

Accounting (per scenario):

- written: stream records the scenario wrote (distinct sequence numbers);
- processed once / duplicates: records in invokes whose side effects count (outcome "ok", or
  before the reported failure of a "partial" one), counted per sequence number. The function has
  no side effect between its work and its report, so every duplicate is unexpected here; a
  duplicate the docs allow (a crash between a side effect and its marker) cannot happen in it;
- order violations: per item, a processed sequence number lower than one processed before;
- in DLQ: records described by the on-failure records (``DDBStreamBatchInfo`` ranges);
- balanced: every written record is processed or in the DLQ, never both, never neither;
- recovery s: from the moment the faults are armed (and the records written) to the last
  record accounted for;
- faults fired: how many requests got an injected fault.

``run_scenario(name, env)`` is shared by tests/reliability (CI) and scripts/chaos.py.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from streamkit.exceptions import FaultAdminError
from streamkit.local.faults import FaultsClient
from tests.helpers import create_function
from tests.helpers.runner_scenario import HANDLER, Scenario
from tests.helpers.runner_support import FUNCTION_CODE, Call
from tests.helpers.streams import create_stream_table

__all__ = ["HEADER", "SCENARIOS", "Accounting", "run_scenario", "scenario_factory"]


@dataclass
class Accounting:
    scenario: str
    written: int = 0
    processed_once: int = 0
    allowed_duplicates: int = 0
    unexpected_duplicates: int = 0
    order_violations: int = 0
    in_dlq: int = 0
    missing: list[str] = field(default_factory=list)
    recovery_s: float = 0.0
    faults_fired: int = 0
    faults_added: int = 0

    @property
    def balanced(self) -> bool:
        return (
            not self.missing
            and self.processed_once + self.in_dlq == self.written
            and self.unexpected_duplicates == 0
            and self.order_violations == 0
        )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.written} | {self.processed_once} | "
            f"{self.allowed_duplicates} | {self.unexpected_duplicates} | {self.order_violations} | "
            f"{self.in_dlq} | {self.recovery_s:.1f} | {self.faults_fired} | "
            f"{'yes' if self.balanced else 'NO'} |"
        )


HEADER = (
    "| Scenario | Written | Processed once | Allowed duplicates | Unexpected duplicates | "
    "Order violations | In DLQ | Recovery s | Faults fired | Balanced |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


@dataclass
class _Run:
    s: Scenario
    faults: FaultsClient
    dlq_url: str
    written: dict[str, str] = field(default_factory=dict)  # seq -> key
    reports: list[Call] = field(default_factory=list)
    dlq_bodies: list[dict[str, Any]] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)
    fired: dict[str, int] = field(default_factory=dict)
    fault_seconds: float = 0.0
    accounted_at: float = 0.0

    def write(self, keys: list[str]) -> None:
        for i, key in enumerate(keys):
            self.s.put(key, n={"N": str(i)})

    def collect_written(self) -> None:
        streams = self.s.aws.dynamodbstreams
        shards = streams.describe_stream(StreamArn=self.s.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            iterator = streams.get_shard_iterator(
                StreamArn=self.s.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator, Limit=1000)
                for record in page["Records"]:
                    self.written[record["dynamodb"]["SequenceNumber"]] = record["dynamodb"]["Keys"][
                        "pk"
                    ]["S"]
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")

    def poll(self) -> None:
        self.reports += [Call(b) for b in self.s.messages(self.s.record_queue, 1000, timeout=0.3)]
        self.dlq_bodies += self.s.messages(self.dlq_url, 1000, timeout=0.1)
        for rule in self.faults.list(include_expired=True):
            if rule["id"] in self.rule_ids:
                self.fired[rule["id"]] = int(rule["fired"])

    def account(self, name: str) -> Accounting:
        processed: Counter[str] = Counter()
        order_violations = 0
        last_by_key: dict[str, int] = {}
        for call in sorted(self.reports, key=lambda c: float(c.body["started"])):
            count = len(call.processed())
            for seq, key in zip(call.seqs[:count], call.keys[:count], strict=True):
                processed[seq] += 1
                if last_by_key.get(key, -1) > int(seq):
                    order_violations += 1
                last_by_key[key] = max(last_by_key.get(key, -1), int(seq))
        in_dlq: set[str] = set()
        for body in self.dlq_bodies:
            info = body["DDBStreamBatchInfo"]
            low, high = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
            in_dlq.update(seq for seq in self.written if low <= int(seq) <= high)
        accounted = set(processed) | in_dlq
        return Accounting(
            scenario=name,
            written=len(self.written),
            processed_once=sum(
                1 for seq in self.written if processed[seq] >= 1 and seq not in in_dlq
            ),
            unexpected_duplicates=sum(n - 1 for n in processed.values() if n > 1),
            order_violations=order_violations,
            in_dlq=len(in_dlq),
            missing=sorted(set(self.written) - accounted),
        )

    def wait_accounted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            accounting = self.account("")
            if not accounting.missing and accounting.written:
                self.accounted_at = time.monotonic()
                return
            time.sleep(0.2)
        self.accounted_at = time.monotonic()


Arm = Callable[[_Run], None]

# The reporting function, plus two faults of its own that happen once per key (a flag file
# remembers them across invokes and worker restarts): CRASH_ONCE kills the worker process with
# os._exit before anything is reported, TIMEOUT_ONCE sleeps past the function's timeout.
CHAOS_FUNCTION = (
    FUNCTION_CODE
    + r"""

_reporting_handler = handler


def handler(event, context):
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    for kind in ("CRASH_ONCE", "TIMEOUT_ONCE"):
        key = os.environ.get(kind)
        if key and key in keys:
            flag = os.path.join(os.environ["FLAG_DIR"], kind + "-" + key)
            if not os.path.exists(flag):
                open(flag, "w").close()
                if kind == "CRASH_ONCE":
                    os._exit(1)
                time.sleep(float(os.environ.get("TIMEOUT_SLEEP_S", "5")))
    return _reporting_handler(event, context)
"""
)


def _retrying(action: Callable[[], None], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            action()
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _add(run: _Run, service: str, operation: str, **rule: Any) -> None:
    added = run.faults.add(service, operation, **rule)
    run.rule_ids.append(added["id"])
    run.fault_seconds = max(run.fault_seconds, float(rule.get("duration_seconds") or 0))


def _poison(run: _Run) -> None:
    run.write([f"k{i}" for i in range(20)])


def _stream_reads_fail(run: _Run) -> None:
    # Counts, not durations: on a loaded machine a 3 s window may close before the next poll.
    for error in ("InternalServerError", "ProvisionedThroughputExceededException"):
        _add(run, "dynamodbstreams", "GetRecords", resource=run.s.table, error=error, count=5)
    run.write([f"k{i}" for i in range(20)])


def _destination_down(run: _Run) -> None:
    queue = run.dlq_url.rsplit("/", 1)[1]
    _add(run, "sqs", "SendMessage", resource=queue, error="ServiceUnavailable", count=4)
    run.write([f"k{i}" for i in range(10)])


def _hot_key(run: _Run) -> None:
    run.write(["hot"] * 30 + [f"k{i}" for i in range(10)] + ["hot"] * 10)


def _twenty(run: _Run) -> None:
    run.write([f"k{i}" for i in range(20)])


def _lambda_api_throttled(run: _Run) -> None:
    # The runner runs the code locally; its reconciliation (ListEventSourceMappings) is
    # throttled while records arrive.
    _add(run, "lambda", "ListEventSourceMappings", error="TooManyRequestsException", count=5)
    run.write([f"k{i}" for i in range(15)])


# name -> (function environment, what to break and write once the pipeline is deployed)
SCENARIOS: dict[str, tuple[dict[str, str], Arm]] = {
    "poison record": ({"POISON": "k7"}, _poison),
    "stream reads: 5 x 500 + 5 x throttled": ({}, _stream_reads_fail),
    "on-failure destination: 4 x 503": ({"POISON": "k3"}, _destination_down),
    "hot key": ({}, _hot_key),
    "Lambda API: 5 x throttled": ({}, _lambda_api_throttled),
    "worker crash (os._exit) once": ({"CRASH_ONCE": "k5"}, _twenty),
    "handler timeout once": ({"TIMEOUT_ONCE": "k5"}, _twenty),
}


def scenario_factory(
    aws: Any, endpoint_url: str, state_dir: Path
) -> tuple[Callable[..., Scenario], list[Scenario]]:
    """What the ``scenario`` fixture (tests/integration/conftest.py) makes, for scripts:
    ``make(**env)`` builds a stream table, a recorder queue and a function; the list holds
    every scenario made (stop their runners when done)."""
    made: list[Scenario] = []

    def unique(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def make(**env: str) -> Scenario:
        table = unique("chaos")
        stream_arn = create_stream_table(aws.dynamodb, table, view_type="NEW_AND_OLD_IMAGES")
        queue = aws.sqs.create_queue(QueueName=unique("recorder"))["QueueUrl"]
        function = unique("consumer")
        create_function(aws.lambda_, function, {"app.py": HANDLER}, timeout=10,
                        env={"RECORD_QUEUE": queue, **env})  # fmt: skip
        made.append(Scenario(aws, endpoint_url, table, stream_arn, queue, function,
                             state_dir / unique("state"), unique))  # fmt: skip
        return made[-1]

    return make, made


def run_scenario(
    name: str, scenario: Callable[..., Scenario], faults: FaultsClient, timeout: float = 60
) -> Accounting:
    s = scenario()
    dlq_url, dlq_arn = s.queue("chaos-dlq")
    run = _Run(s, faults, dlq_url)
    env, arm = SCENARIOS[name]
    function = s.unique_name("chaos-fn")
    flags = s.state_dir.parent / s.unique_name("flags")
    flags.mkdir(parents=True, exist_ok=True)
    create_function(
        s.aws.lambda_,
        function,
        {"app.py": CHAOS_FUNCTION},
        timeout=2,
        env={"RECORD_QUEUE": s.record_queue, "MODE": "raise", "FLAG_DIR": str(flags), **env},
    )
    s.map(
        FunctionName=function,
        BatchSize=10,
        MaximumRetryAttempts=1,
        BisectBatchOnFunctionError=True,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    runner = s.runner()
    # Faults start once the mapping is being polled, so they hit a running pipeline.
    runner.wait_until(lambda stats: bool(stats), timeout=30)
    armed = time.monotonic()
    arm(run)
    _retrying(run.collect_written)  # the scenario's own reads may meet its faults too
    try:
        run.wait_accounted(timeout)
    finally:
        for rule_id in run.rule_ids:
            with contextlib.suppress(FaultAdminError):
                faults.clear(rule_id)
    accounting = run.account(name)
    accounting.recovery_s = max(0.0, run.accounted_at - armed)
    accounting.faults_added = len(run.rule_ids)
    accounting.faults_fired = sum(run.fired.values())
    return accounting
