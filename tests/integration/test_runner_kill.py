"""``kill -9`` of ``streamkit run`` during steady writes, several times in a row, with parallel
lanes (ParallelizationFactor 4), with bisect over lanes, and with tumbling windows: after every
restart only the batches in flight run again, every record is processed or described to the
on-failure destination, a poison record is described exactly once, no record ever runs twice
at the same time, and the killed runner's workers are gone (a new runner waits for them).

The function records each record's start and end (with its worker's and runner's pids) in a
file (``tests.helpers.kill_runs``); one emulator subprocess serves the module.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.local.emulator.process import spawn_emulator
from streamkit.local.esm.lanes import lane_of
from tests.helpers import AwsClients, create_function, read_stream
from tests.helpers.kill_runs import (
    RECORDING_HANDLER,
    Recording,
    children_of,
    kill_9,
    streamkit_run,
    wait_until_gone,
)
from tests.helpers.streams import create_stream_table

POISON_AT = 12  # the writer's 12th write is a poison record

# (mapping settings, how many kills)
CASES: dict[str, tuple[dict[str, Any], int]] = {
    "pf4": ({"ParallelizationFactor": 4, "BatchSize": 5, "MaximumRetryAttempts": 1}, 3),
    "bisect": (
        {
            "ParallelizationFactor": 3,
            "BatchSize": 6,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 0,
        },
        2,
    ),
    "window": ({"TumblingWindowInSeconds": 2, "BatchSize": 5}, 2),
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An emulator of its own: ``streamkit run`` runs every mapping of its endpoint."""
    with spawn_emulator() as url:
        yield url


class Writer(threading.Thread):
    """Steady writes over 30 items (one poison record among them) until stopped."""

    def __init__(self, aws: AwsClients, table: str, poison: bool) -> None:
        super().__init__(daemon=True)
        self.aws, self.table, self.poison = aws, table, poison
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.count += 1
            item = {"pk": {"S": f"k{self.count % 30:02d}"}, "v": {"N": str(self.count)}}
            if self.poison and self.count == POISON_AT:
                item = {"pk": {"S": "poison"}, "poison": {"BOOL": True}}
            self.aws.dynamodb.put_item(TableName=self.table, Item=item)


def wait_for(condition: Callable[[], bool], timeout: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(0.05)


def described(aws: AwsClients, bucket: str) -> list[str]:
    """Sequence numbers in the on-failure records' payloads, one entry per description."""
    seqs = []
    for item in aws.s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = json.loads(aws.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        seqs += [r["dynamodb"]["SequenceNumber"] for r in body["payload"]["Records"]]
    return seqs


@pytest.mark.parametrize("case", list(CASES))
def test_kill_9_again_and_again_during_steady_writes(
    endpoint: str, tmp_path: Path, unique_name: Callable[[str], str], case: str
) -> None:
    settings, kills = CASES[case]
    windowed = "TumblingWindowInSeconds" in settings
    lanes = settings.get("ParallelizationFactor", 1)
    aws = AwsClients(endpoint)
    table = unique_name("kill")
    stream_arn = create_stream_table(aws.dynamodb, table)
    bucket = unique_name("failures")
    aws.s3.create_bucket(Bucket=bucket)
    record_file = tmp_path / "records.jsonl"
    function = unique_name("recorder")
    create_function(
        aws.lambda_,
        function,
        {"app.py": RECORDING_HANDLER},
        # With lanes, one slow item: its lane lags, and the other lanes finish records above
        # the watermark, which a restart must not run again.
        env={
            "RECORD_FILE": str(record_file),
            "SLEEP_S": "0.005",
            "SLOW_KEY": "k01" if lanes > 1 else "",
            "SLOW_S": "0.2",
        },
    )
    uuid = aws.lambda_.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        DestinationConfig={"OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}},
        **settings,
    )["UUID"]
    state_dir, log = tmp_path / "state", tmp_path / "run.log"
    writer = Writer(aws, table, poison=not windowed)
    runner = streamkit_run(endpoint, state_dir, log)
    runners = [runner.pid]
    worker_runner: dict[int, int] = {}  # worker pid -> its runner's pid
    writer.start()
    try:
        for kill in range(kills):
            pid = runner.pid

            def worked(pid: int = pid, kill: int = kill) -> bool:
                ends = Recording.read(record_file).of("end")
                if sum(line["ppid"] == pid for line in ends) < 20:
                    return False
                # The first kill comes after the poison record was described and its batch
                # checkpointed (the runner logs "sent to" between the two): the restarted
                # runner must not describe it again, although it is above the watermark.
                return windowed or kill > 0 or "sent to arn:aws:s3" in log.read_text()

            wait_for(
                worked,
                timeout=60,
                message=lambda: f"a runner did too little:\n{log.read_text()[-3000:]}",
            )
            workers = children_of(pid)
            assert workers, "a runner that invoked its function has workers"
            worker_runner.update(dict.fromkeys(workers, pid))
            kill_9(runner)
            # At once: the new runner must wait for the old workers itself.
            runner = streamkit_run(endpoint, state_dir, log)
            runners.append(runner.pid)
            assert not wait_until_gone(workers, timeout=10), "workers outlived their runner"
        writer.stop.set()
        writer.join(10)
        written = {
            r["dynamodb"]["SequenceNumber"]
            for r in read_stream(aws.dynamodbstreams, stream_arn, max_calls=1000)
        }
        assert len(written) == writer.count

        def accounted() -> set[str]:
            recording = Recording.read(record_file)
            if windowed:
                return {seq for line in recording.of("window") for seq in line["seqs"]}
            return recording.succeeded() | set(described(aws, bucket))

        wait_for(
            lambda: accounted() >= written,
            timeout=60,
            message=lambda: (
                f"missing {sorted(written - accounted())[:10]}:\n{log.read_text()[-3000:]}"
            ),
        )
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=20) == 0
    finally:
        writer.stop.set()
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        aws.lambda_.delete_event_source_mapping(UUID=uuid)
    recording = Recording.read(record_file)
    # Which runner's a line is: its worker's parent, or, for the few milliseconds between a
    # kill and its workers noticing it (they are init's children then), the worker's runner.
    for line in recording.lines:
        if line["ppid"] not in runners:
            line["ppid"] = worker_runner[line["pid"]]
    generation = {pid: n for n, pid in enumerate(runners)}
    lines = sorted(recording.lines, key=lambda line: line["t"])

    # A new runner starts nothing while a killed runner's worker still runs.
    for older, newer in itertools.pairwise(runners):
        last_old = max(line["t"] for line in lines if line["ppid"] == older)
        first_new = min(line["t"] for line in lines if line["ppid"] == newer)
        assert last_old < first_new, f"runner {older}'s workers ran on after {newer} started"

    # No record runs twice at the same time.
    for seq, runs in recording.intervals().items():
        for (_, end, ppid), (next_start, _, next_ppid) in itertools.pairwise(runs):
            if end is None:  # killed mid-record: the next run is a later runner's
                assert generation[next_ppid] > generation[ppid], (seq, runs)
            else:
                assert end <= next_start, (seq, runs)

    # Order per item key holds across kills: each key's records first start in stream order
    # (a re-run batch repeats records already started, never one ahead of an earlier one).
    if not windowed:
        first_start: dict[str, tuple[float, str]] = {}
        for line in recording.of("start"):
            first_start.setdefault(line["seq"], (line["t"], line["key"]))
        per_key: dict[str, list[tuple[float, int]]] = {}
        for seq, (t, key) in first_start.items():
            per_key.setdefault(key, []).append((t, int(seq)))
        for key, starts in per_key.items():
            in_time = [seq for _, seq in sorted(starts)]
            assert in_time == sorted(in_time), f"key {key} ran out of order: {in_time}"

    # After each kill, only the batches in flight run again: per lane, the one batch it was
    # processing (its handler may have returned already: the runner had not seen the result).
    started_by: dict[int, set[str]] = {n: set() for n in range(len(runners))}
    lane = {}
    for line in recording.of("start"):
        started_by[generation[line["ppid"]]].add(line["seq"])
        lane[line["seq"]] = lane_of({"dynamodb": {"Keys": {"pk": {"S": line["key"]}}}}, lanes)
    batch = settings["BatchSize"]
    for n in range(kills):
        again = started_by[n] & started_by[n + 1]
        if windowed:  # the open window's records: one window's worth
            windows = {
                line["start"] for line in recording.of("window") if again & set(line["seqs"])
            }
            assert len(windows) <= 1, (n, windows)
        else:
            for index in range(lanes):
                in_lane = sorted(seq for seq in again if lane[seq] == index)
                assert len(in_lane) <= batch, (n, index, in_lane)

    if windowed:
        finals: dict[str, set[str]] = {}
        for line in recording.of("window"):
            counted = set(line["seqs"])
            assert len(counted) == len(line["seqs"]), "a record counted twice in a window"
            # A window settled again (its final invoke was in flight) holds the same records.
            assert finals.setdefault(line["start"], counted) == counted
            # Order per item holds across kills: a window holds its records in stream order
            # (a restarted window resumes from its checkpointed state, never ahead of it).
            in_order = [int(seq) for seq in line["seqs"]]
            assert in_order == sorted(in_order), f"window {line['start']} out of order"
        assert sorted(seq for seqs in finals.values() for seq in seqs) == sorted(written)
        # And windows follow each other in stream order (one shard: creation time order).
        by_start = [sorted(int(seq) for seq in finals[start]) for start in sorted(finals)]
        for earlier, later in itertools.pairwise(by_start):
            assert earlier[-1] < later[0], "a later window holds an earlier record"
    else:
        poison = {
            r["dynamodb"]["SequenceNumber"]
            for r in read_stream(aws.dynamodbstreams, stream_arn, max_calls=1000)
            if "poison" in r["dynamodb"].get("NewImage", {})
        }
        assert len(poison) == 1
        assert described(aws, bucket).count(poison.pop()) == 1  # exactly once in the DLQ
