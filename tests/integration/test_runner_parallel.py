"""ParallelizationFactor end to end: batches of one shard run at once in separate function
workers, each item's updates still reach the function in order, every update exactly once, and
the checkpoint ends at the shard's last record."""

from __future__ import annotations

import os
from collections.abc import Callable

from streamkit.local.esm.checkpoints import CheckpointStore
from tests.helpers.runner_scenario import Scenario
from tests.helpers.runner_support import Call, calls_covering, deploy

KEYS = 12
VERSIONS = 6


def most_at_once(reported: list[Call]) -> int:
    """The largest number of invokes whose [started, finished] intervals overlap."""
    edges = sorted(
        [(c.body["started"], 1) for c in reported] + [(c.body["finished"], -1) for c in reported]
    )
    active = peak = 0
    for _moment, change in edges:
        active += change
        peak = max(peak, active)
    return peak


def test_interleaved_updates_keep_each_items_order_across_parallel_lanes(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    # 0.4 s per invoke: each lane's four or five batches then outlast the other lanes' cold
    # starts, which a loaded machine spaces out (at 0.1 s, one lane finished before the next
    # worker was up: peak 1 in a parallel CI run).
    function = deploy(s, SLEEP_S="0.4")
    uuid = s.map(FunctionName=function, BatchSize=4, ParallelizationFactor=4)
    # Updates to many items, interleaved: v1 of every item, then v2 of every item, ... All are
    # in the stream before the runner starts (TRIM_HORIZON), so every lane has a backlog and
    # the lanes overlap however slowly a busy machine writes. Written while the runner polled,
    # a slow writer gave each poll a record or two, and on a loaded machine no two invokes
    # overlapped (peak 1).
    for version in range(1, VERSIONS + 1):
        for k in range(KEYS):
            s.put(f"item{k:02d}", v={"N": str(version)})
    total = KEYS * VERSIONS
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] == total, timeout=60)
    reported = calls_covering(s, total)
    assert sum(len(c.keys) for c in reported) == total
    # The handler's view, in the order invokes started (an item's batches run one after the
    # other in its lane, so start order is its processing order):
    seen: dict[str, list[int]] = {}
    for call in reported:
        for key, version in zip(call.keys, call.body["versions"], strict=True):
            seen.setdefault(key, []).append(version)
    assert seen == {f"item{k:02d}": list(range(1, VERSIONS + 1)) for k in range(KEYS)}
    peak = most_at_once(reported)
    assert 2 <= peak <= 4, peak  # lanes really overlapped, never more than the factor
    # Separate workers: Lambda runs concurrent batches in separate execution environments.
    assert len({c.body["request_id"] for c in reported}) == len(reported)
    stats = runner.stats()[uuid]
    assert (stats["invoked"], stats["failed"]) == (len(reported), 0)
    runner.stop()
    (checkpoint,) = CheckpointStore(s.state_dir).all()
    assert checkpoint.sequence_number == max((seq for c in reported for seq in c.seqs), key=int)
    assert os.path.exists(s.state_dir)
