"""Fault scenarios on a focused pipeline through the local runtime, each ending in an accounting.

Pipeline: a table with a stream -> ``streamkit run``'s Runner (in process) -> the reporting
function of tests/helpers/runner_support.py (one SQS report per invoke: keys,
sequence numbers, outcome) -> an SQS on-failure destination. Faults come from the emulator's
fault injection (``streamkit.local.faults``), so every part sees real AWS errors over HTTP.

Accounting (per scenario):

- written: stream records the scenario wrote (distinct sequence numbers);
- processed once / duplicates: records in invokes whose side effects count (outcome "ok", or
  before the reported failure of a "partial" one), counted per sequence number. A duplicate is
  *allowed* only in the case the docs allow it: a crash between a side effect and the marker
  that records it ("A crash, timeout or store outage after a handler's side effect and before
  the flush means no marker: the record runs again on redelivery", streamkit/idempotency/
  stream.py; for the runner the marker is its checkpoint, which it writes after the invoke).
  So a repeat of a record is allowed when the invoke that ran it before never wrote its marker:
  it crashed before its end report, its marker write failed, or it was the runner's last invoke
  before a ``kill -9``. Every other duplicate is unexpected;
- order violations: per item, a record processed for the first time after a later record of
  the same item was processed (a redelivery replays in order, and is counted as a duplicate);
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

__all__ = [
    "HEADER",
    "SCENARIOS",
    "Accounting",
    "Context",
    "Spec",
    "run_scenario",
    "scenario_factory",
]


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
    note: str = ""  # what else the scenario checked (e.g. the runner's reported gap)
    order_observable: bool = True  # False: the effects do not show per-item order ("n/a")

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
            f"{self.allowed_duplicates} | {self.unexpected_duplicates} | "
            f"{self.order_violations if self.order_observable else 'n/a'} | "
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
    kills: list[float] = field(default_factory=list)  # wall-clock times of runner kill -9s
    ended: dict[str, bool] = field(default_factory=dict)  # request id -> marker write failed
    runner: Any = None  # what stats come from (a Runner), when in process
    recovered_from: float | None = None  # monotonic: the fault ended (else: when it was armed)
    extra: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0

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
        for body in self.s.messages(self.s.record_queue, 1000, timeout=0.3):
            if body.get("kind") == "effect":
                self._effect(body)
            elif body.get("kind") == "end":
                self.ended[body["request_id"]] = bool(body["marker_write_failed"])
            else:
                self.reports.append(Call(body))
        self.dlq_bodies += self.s.messages(self.dlq_url, 1000, timeout=0.1)
        for rule in self.faults.list(include_expired=True):
            if rule["id"] in self.rule_ids:
                self.fired[rule["id"]] = int(rule["fired"])

    def _effect(self, body: dict[str, Any]) -> None:
        """An idempotent function's side effect: one per record run, grouped into its invoke."""
        for call in self.reports:
            if call.body["request_id"] == body["request_id"]:
                break
        else:
            call = Call({"kind": "invoke", "keys": [], "seqs": [], "order": [], "outcome": "ok",
                         "started": body["started"], "request_id": body["request_id"]})  # fmt: skip
            self.reports.append(call)
        # SQS does not promise order: the function numbers its effects.
        at = sum(1 for n in call.body["order"] if n < body["n"])
        call.body["order"].insert(at, body["n"])
        call.body["keys"].insert(at, body["key"])
        call.body["seqs"].insert(at, body["seq"])

    def marker_missing(self, call: Call) -> bool:
        """Did ``call`` end without the marker of what it did (the allowed-duplicate case)?"""
        request_id = call.body["request_id"]
        if "order" in call.body:  # an idempotent function's invoke
            return self.ended.get(request_id, True)  # no end report: it crashed
        for kill in self.kills:
            before = [c for c in self.reports if float(c.body["started"]) <= kill]
            if before and max(before, key=lambda c: float(c.body["started"])) is call:
                return True
        return False

    def account(self, name: str) -> Accounting:
        processed: Counter[str] = Counter()
        last_call: dict[str, Call] = {}
        allowed = unexpected = order_violations = 0
        last_by_key: dict[str, int] = {}
        for call in sorted(self.reports, key=lambda c: float(c.body["started"])):
            count = len(call.processed())
            for seq, key in zip(call.seqs[:count], call.keys[:count], strict=True):
                if processed[seq]:
                    if self.marker_missing(last_call[seq]):
                        allowed += 1
                    else:
                        unexpected += 1
                elif last_by_key.get(key, -1) > int(seq):
                    order_violations += 1
                processed[seq] += 1
                last_call[seq] = call
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
            allowed_duplicates=allowed,
            unexpected_duplicates=unexpected,
            order_violations=order_violations,
            in_dlq=len(in_dlq),
            missing=sorted(set(self.written) - accounted),
        )

    def wait_accounted(self, timeout: float) -> None:
        if not self.written:
            _retrying(self.collect_written)  # the scenario's own reads may meet its faults too
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            accounting = self.account("")
            if not accounting.missing and accounting.written:
                self.accounted_at = time.monotonic()
                return
            time.sleep(0.2)
        self.accounted_at = time.monotonic()

    def settle(self, timeout: float = 10.0) -> None:
        """Once everything is accounted for, read what is still on its way (a late duplicate)
        until a poll brings nothing new."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = (len(self.reports), sum(len(c.seqs) for c in self.reports), len(self.ended))
            self.poll()
            if (
                len(self.reports),
                sum(len(c.seqs) for c in self.reports),
                len(self.ended),
            ) == before:
                return


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


# An idempotent consumer: process_batch(idempotency=DynamoDBIdempotencyStore) over a table
# the scenario may fault. Its side effect is one SQS message per record it runs ("effect",
# numbered within the invoke); "end" says the invoke returned and whether its completion
# markers were written. CRASH_AFTER_EFFECT=<key> kills the worker (os._exit) right after that
# key's side effect, once, before any marker of the batch is written: the crash the docs name.
IDEMPOTENT_FUNCTION = r"""
import json, os, time
import boto3
from streamkit import DynamoDBIdempotencyStore, process_batch

_sqs = boto3.client("sqs")
_marker_failures = []


class _Store(DynamoDBIdempotencyStore):
    def put_many(self, items):
        try:
            super().put_many(items)
        except Exception:
            _marker_failures.append(len(items))
            raise


store = _Store(os.environ["IDEMPOTENCY_TABLE"])


def handler(event, context):
    started = time.time()
    del _marker_failures[:]
    count = [0]

    def effect(record):
        key = record.keys["pk"]
        _sqs.send_message(QueueUrl=os.environ["RECORD_QUEUE"], MessageBody=json.dumps({
            "kind": "effect", "key": key, "seq": record.sequence_number, "n": count[0],
            "request_id": context.aws_request_id, "started": started}))
        count[0] += 1
        if key == os.environ.get("CRASH_AFTER_EFFECT"):
            flag = os.path.join(os.environ["FLAG_DIR"], "crash-" + key)
            if not os.path.exists(flag):
                open(flag, "w").close()
                os._exit(1)

    response = process_batch(event, effect, context=context, idempotency=store)
    _sqs.send_message(QueueUrl=os.environ["RECORD_QUEUE"], MessageBody=json.dumps({
        "kind": "end", "request_id": context.aws_request_id,
        "marker_write_failed": bool(_marker_failures)}))
    return response
"""


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


def _wait_reports(run: _Run, more_than: int, timeout: float = 30.0) -> None:
    """Poll until more than ``more_than`` invokes have reported."""
    deadline = time.monotonic() + timeout
    while len(run.reports) <= more_than:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no invoke report after {more_than} within {timeout} s")
        run.poll()


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


def _idempotency_table(run: _Run) -> dict[str, str]:
    table = run.s.unique_name("idempotency")
    run.s.aws.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    run.extra["idempotency_table"] = table
    return {"IDEMPOTENCY_TABLE": table}


def _idempotency_store_faulted(run: _Run) -> None:
    table = run.extra["idempotency_table"]
    # The store's default client makes 3 attempts (standard retries): 3 faults in a row fail a
    # call. Reads failing fail their records (retried by Lambda, never run unprotected);
    # writes failing lose markers (the records' effects stand; logged). CI takes one failed
    # call of each kind (botocore's backoff between attempts is most of the time spent).
    quick = run.extra.get("quick", True)
    _add(run, "dynamodb", "BatchGetItem", resource=table, error="ThrottlingException",
         count=3 if quick else 4)  # fmt: skip
    _add(run, "dynamodb", "BatchGetItem", resource=table, error="InternalServerError",
         count=3 if quick else 4)  # fmt: skip
    _add(run, "dynamodb", "BatchWriteItem", resource=table, error="ServiceUnavailable",
         count=3 if quick else 4)  # fmt: skip
    if not quick:
        _add(run, "dynamodb", "BatchWriteItem", resource=table,
             error="ProvisionedThroughputExceededException", count=3)  # fmt: skip
    run.write([f"k{i % 5}" for i in range(20 if quick else 30)])


def _crash_before_marker(run: _Run) -> None:
    run.write([f"k{i}" for i in range(20)])


def _backlog_then_slow(run: _Run) -> None:
    # The backlog is written before the mapping starts polling (see Spec.before_runner).
    pass


def _write_backlog(run: _Run) -> None:
    run.write([f"k{i % 10}" for i in range(run.extra.get("backlog", 150))])


@dataclass(frozen=True)
class Spec:
    """One scenario: the function (its code and environment), the mapping settings, what to
    break and write once the pipeline runs (``arm``), and optionally a setup that makes
    resources before the function exists (returns more environment), a step before the runner
    starts, and its own way of running the runner (``kill -9``, endpoint outage, stream
    double)."""

    arm: Arm
    env: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, Any] = field(default_factory=dict)
    function: str = CHAOS_FUNCTION
    setup: Callable[[_Run], dict[str, str]] | None = None
    before_runner: Arm | None = None
    run: Callable[[_Run, Context], None] | None = None
    timeout: float = 60.0
    function_timeout: int = 2  # seconds (the timeout scenario sleeps past it)


@dataclass
class Context:
    """What a scenario may vary between CI (``quick``) and the full run of scripts/chaos.py."""

    quick: bool = True

    @property
    def kills(self) -> int:
        return 2 if self.quick else 5

    @property
    def kill_records(self) -> int:
        return 40 if self.quick else 100

    @property
    def outage_s(self) -> float:
        return 3.0 if self.quick else 10.0

    @property
    def backlog(self) -> int:
        return 100 if self.quick else 600


IDEMPOTENT_MAPPING: dict[str, Any] = {
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "MaximumRetryAttempts": 5,
}


def _kill9_runner(run: _Run, ctx: Context) -> None:
    """``streamkit run`` as a real subprocess (ParallelizationFactor 1), killed with SIGKILL
    while invokes are in flight, ``ctx.kills`` times, each time restarted on the same state
    directory; the last one runs until the records are accounted for."""
    import os
    import signal
    import subprocess
    import sys

    state = run.s.state_dir
    state.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamkit.cli", "run", "--endpoint-url", run.s.endpoint_url,
             "--state-dir", str(state), "--reconcile-interval", "0.2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its workers share its group: cleaned up by group below
        )  # fmt: skip
        started.append(process)
        return process

    try:
        process = start()
        run.write([f"k{i % 6}" for i in range(ctx.kill_records)])
        for _ in range(ctx.kills):
            # Mid-batch: an invoke just reported and the function (SLEEP_S) is in its next one.
            _wait_reports(run, len(run.reports))
            process.send_signal(signal.SIGKILL)
            run.kills.append(time.time())
            process.wait(timeout=10)
            process = start()
        run.recovered_from = time.monotonic()
        run.wait_accounted(run.timeout)
        process.terminate()
        process.wait(timeout=20)
    finally:
        for each in started:  # the runners this scenario started, and their worker groups
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(each.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                each.wait(timeout=5)
    run.extra["note"] = f"{ctx.kills} x kill -9, ParallelizationFactor 1"


def _endpoint_outage(run: _Run, ctx: Context) -> None:
    """The runner (and its functions) talk to a second endpoint of the same emulator state;
    that endpoint is stopped for ``ctx.outage_s`` seconds (connections refused) and restarted
    on the same port, while records keep being written through the main endpoint."""
    from streamkit.local.emulator import Emulator
    from streamkit.local.esm.runner import Runner
    from tests.helpers.runner_scenario import FAST

    side = Emulator().start()
    url, port = side.endpoint_url, side.port
    mappings = set(run.s.mappings)
    runner = Runner(url, run.s.state_dir, reconcile_interval=0.2,
                    mapping_filter=lambda m: m["UUID"] in mappings, **FAST)  # fmt: skip
    run.runner = runner
    try:
        runner.start()
        run.write([f"k{i % 5}" for i in range(10)])
        _wait_reports(run, 0)
        side.stop()
        down = time.monotonic()
        run.write([f"k{i % 5}" for i in range(10, 25)])
        while time.monotonic() - down < ctx.outage_s:  # the outage lasts this long by definition
            run.poll()
        side = Emulator(port=port).start()
        run.recovered_from = time.monotonic()
        run.wait_accounted(run.timeout)
    finally:
        runner.stop()
        side.stop()
    run.extra["note"] = f"{ctx.outage_s:g} s connection refused, same port after"


def _stream_double(run: _Run, ctx: Context) -> None:
    """The runner reads the stream double (tests/helpers/fake_streams.py): its iterators
    expire mid-stream (re-acquired from the checkpoint), then while the runner is stopped the
    oldest unread records are trimmed away (resume at TRIM_HORIZON, the gap reported)."""
    from tests.helpers.fake_streams import FakeStreamsClient
    from tests.helpers.runner_support import fake_stream_for, streams_from

    fake = FakeStreamsClient()
    arn = fake_stream_for(run.s, fake)
    shard = fake.shard_ids(arn)[0]
    uuid = run.s.mappings[0]

    def put(keys: list[str]) -> list[str]:
        seqs = [fake.put(arn, key, new_image={"n": {"N": str(i)}}) for i, key in enumerate(keys)]
        run.written.update(zip(seqs, keys, strict=True))
        return seqs

    first = run.s.runner(client_factory=streams_from(fake, run.s))
    put([f"k{i % 4}" for i in range(12)])
    first.wait_until(lambda st: st[uuid]["succeeded"] >= 12, timeout=run.timeout)
    fake.expire_iterators()  # 15 minutes pass
    put([f"k{i % 4}" for i in range(12, 24)])
    first.wait_until(lambda st: st[uuid]["succeeded"] >= 24, timeout=run.timeout)
    first.stop()
    lost = put([f"k{i % 4}" for i in range(24, 30)])
    kept = put([f"k{i % 4}" for i in range(30, 40)])
    fake.trim(arn, shard, keep_from=kept[0])  # more than 24 hours pass while stopped
    for seq in lost:  # gone before any reader saw them: not the consumer's to account for
        del run.written[seq]
    second = run.s.runner(client_factory=streams_from(fake, run.s))
    run.runner = second
    stats = second.wait_until(lambda st: st[uuid]["succeeded"] >= len(kept), timeout=run.timeout)
    run.wait_accounted(run.timeout)
    gaps = stats[uuid]["trimmed_gaps"]
    run.extra["trimmed"] = (len(lost), gaps)
    run.extra["note"] = f"{len(lost)} trimmed before any read, gap reported {gaps} x"


# name -> what to break; CI runs them all with Context(quick=True).
SCENARIOS: dict[str, Spec] = {
    "poison record": Spec(_poison, {"POISON": "k7"}),
    "stream reads: 5 x 500 + 5 x throttled": Spec(_stream_reads_fail),
    "on-failure destination: 4 x 503": Spec(_destination_down, {"POISON": "k3"}),
    "hot key": Spec(_hot_key),
    "Lambda API: 5 x throttled": Spec(_lambda_api_throttled),
    "worker crash (os._exit) once": Spec(_twenty, {"CRASH_ONCE": "k5"}),
    "handler timeout once": Spec(_twenty, {"TIMEOUT_ONCE": "k5"}),
    "kill -9 of the runner, repeatedly, mid-batch": Spec(
        _twenty, {"SLEEP_S": "0.3"}, run=_kill9_runner, timeout=90
    ),
    "idempotency store: throttled + 5xx": Spec(
        _idempotency_store_faulted,
        mapping=IDEMPOTENT_MAPPING,
        function=IDEMPOTENT_FUNCTION,
        setup=_idempotency_table,
        # botocore's backoff between the store's 3 attempts must not run into the timeout.
        function_timeout=10,
    ),
    "crash between side effect and idempotency marker": Spec(
        _crash_before_marker,
        {"CRASH_AFTER_EFFECT": "k5"},
        mapping=IDEMPOTENT_MAPPING,
        function=IDEMPOTENT_FUNCTION,
        setup=_idempotency_table,
        # botocore's backoff between the store's 3 attempts must not run into the timeout.
        function_timeout=10,
    ),
    "endpoint unreachable (emulator stopped, restarted)": Spec(_twenty, run=_endpoint_outage),
    "expired iterator + trimmed data (stream double)": Spec(_twenty, run=_stream_double),
    "slow consumer under a backlog": Spec(
        _backlog_then_slow, {"SLEEP_S": "0.05"}, before_runner=_write_backlog, timeout=120
    ),
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
    name: str,
    scenario: Callable[..., Scenario],
    faults: FaultsClient,
    timeout: float | None = None,
    context: Context | None = None,
) -> Accounting:
    ctx = context or Context()
    spec = SCENARIOS[name]
    s = scenario()
    dlq_url, dlq_arn = s.queue("chaos-dlq")
    run = _Run(s, faults, dlq_url)
    run.timeout = timeout or spec.timeout
    run.extra["backlog"] = ctx.backlog
    run.extra["quick"] = ctx.quick
    function = s.unique_name("chaos-fn")
    flags = s.state_dir.parent / s.unique_name("flags")
    flags.mkdir(parents=True, exist_ok=True)
    env = {"RECORD_QUEUE": s.record_queue, "MODE": "raise", "FLAG_DIR": str(flags), **spec.env}
    if spec.setup is not None:
        env.update(spec.setup(run))
    create_function(
        s.aws.lambda_, function, {"app.py": spec.function}, timeout=spec.function_timeout, env=env
    )
    settings: dict[str, Any] = {
        "BatchSize": 10,
        "MaximumRetryAttempts": 1,
        "BisectBatchOnFunctionError": True,
        "DestinationConfig": {"OnFailure": {"Destination": dlq_arn}},
    }
    s.map(FunctionName=function, **{**settings, **spec.mapping})
    if spec.before_runner is not None:
        spec.before_runner(run)
    armed = time.monotonic()
    try:
        if spec.run is not None:
            spec.run(run, ctx)
        else:
            run.runner = s.runner()
            # Faults start once the mapping is being polled, so they hit a running pipeline.
            run.runner.wait_until(lambda stats: bool(stats), timeout=30)
            armed = time.monotonic()
            spec.arm(run)
            run.wait_accounted(run.timeout)
        run.settle()
    finally:
        for rule_id in run.rule_ids:
            with contextlib.suppress(FaultAdminError):
                faults.clear(rule_id)
        for uuid_ in s.mappings:  # `streamkit run` elsewhere would pick it up again
            with contextlib.suppress(ClientError):
                s.aws.lambda_.update_event_source_mapping(UUID=uuid_, Enabled=False)
    accounting = run.account(name)
    accounting.recovery_s = max(0.0, run.accounted_at - (run.recovered_from or armed))
    accounting.faults_added = len(run.rule_ids)
    accounting.faults_fired = sum(run.fired.values())
    accounting.note = str(run.extra.get("note", ""))
    return accounting
