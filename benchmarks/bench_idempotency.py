"""Idempotency cost: DynamoDB requests per 100-record batch and latency added per record.

streamkit's batched stream mode (``process_batch(..., idempotency=DynamoDBIdempotencyStore)``)
against Powertools' recommended stream setup (``BatchProcessor`` over DynamoDB streams with an
``@idempotent_function`` record handler on ``DynamoDBPersistenceLayer``, keyed by eventID),
both on the same embedded emulator (or ``STREAMKIT_ENDPOINT_URL``), each with its own table
keyed by ``id``.

- Requests are counted at the HTTP layer with a botocore ``before-send`` hook, so they are what
  DynamoDB would bill (retries included, none happen here).
- Latency added per record = (median time of a 100-record batch with idempotency - median time
  without) / 100, every batch clean (fresh eventIDs), sides interleaved in one run. The emulator
  runs in this process over loopback HTTP, so absolute figures are far below a real network
  round trip (~3-10 ms in a Region) and mostly measure client work; the request count is what
  real latency scales with.

Target: a clean 100-record batch costs at most 6 requests (issue 4).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from tests.helpers import stream_data as _data
from tests.helpers.request_counter import RequestCounter

from streamkit.batch import process_batch
from streamkit.idempotency import DynamoDBIdempotencyStore, LocalCache, idempotent

BATCH = 100
REPEATS = 7
REQUEST_TARGET = 6


@contextmanager
def endpoint() -> Iterator[str]:
    external = os.environ.get("STREAMKIT_ENDPOINT_URL")
    if external:
        yield external
        return
    from streamkit.local.emulator import Emulator

    with Emulator(port=0) as emulator:
        yield emulator.endpoint_url


def make_client(url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=_data.REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def fresh_event(seed: int) -> dict[str, Any]:
    """100 realistic order records with eventIDs never seen before (a clean batch)."""
    return _data.orders_event(BATCH, seed=seed)


def noop(record: Any) -> None:
    return None


class LambdaContext:
    """Enough of a Lambda context for Powertools' in-progress expiry (as in a real function)."""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# --- the two sides ------------------------------------------------------------------------


def streamkit_batch(store: DynamoDBIdempotencyStore | None) -> Callable[[dict[str, Any]], Any]:
    def run(event: dict[str, Any]) -> Any:
        response = process_batch(
            event, noop, context=LambdaContext(), idempotency=store, idempotency_namespace="bench"
        )
        assert response == {"batchItemFailures": []}, response
        return response

    return run


def powertools_batch(client: Any | None, table: str) -> Callable[[dict[str, Any]], Any]:
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    handler: Callable[..., Any] = noop
    if client is not None:
        persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
        config = IdempotencyConfig(event_key_jmespath="eventID")
        config.register_lambda_context(LambdaContext())

        @idempotent_function(
            data_keyword_argument="record", persistence_store=persistence, config=config
        )
        def record_handler(record: Any) -> None:
            return None

        handler = record_handler

    def run(event: dict[str, Any]) -> Any:
        response = process_partial_response(
            event=event, record_handler=handler, processor=processor, context=None
        )
        assert response == {"batchItemFailures": []}, response
        return response

    return run


def timed(run: Callable[[dict[str, Any]], Any], event: dict[str, Any]) -> float:
    start = time.perf_counter()
    run(event)
    return time.perf_counter() - start


def main() -> bool:
    with endpoint() as url:
        ours_client, theirs_client = make_client(url), make_client(url)
        ours_requests, theirs_requests = RequestCounter(ours_client), RequestCounter(theirs_client)
        suffix = uuid.uuid4().hex[:8]
        ours_table, theirs_table = f"bench-sk-{suffix}", f"bench-pt-{suffix}"
        create_table(ours_client, ours_table)
        create_table(theirs_client, theirs_table)
        ours_requests.take()
        theirs_requests.take()

        store = DynamoDBIdempotencyStore(ours_table, client=ours_client)
        sides = {
            "streamkit": (streamkit_batch(store), streamkit_batch(None)),
            "powertools": (
                powertools_batch(theirs_client, theirs_table),
                powertools_batch(None, ""),
            ),
        }
        counts: dict[str, dict[str, int]] = {"streamkit": {}, "powertools": {}}
        requests = {"streamkit": ours_requests, "powertools": theirs_requests}

        # Request counts: a clean batch, then the same batch redelivered.
        event = fresh_event(seed=10_000)
        for side, (with_idempotency, _) in sides.items():
            with_idempotency(event)
            counts[side]["clean batch"] = requests[side].take()
            with_idempotency(event)
            counts[side]["redelivered batch"] = requests[side].take()

        # streamkit extras: a warm LocalCache, and the per-record mode.
        cached = DynamoDBIdempotencyStore(ours_table, client=ours_client, cache=LocalCache())
        streamkit_batch(cached)(event)
        ours_requests.take()
        streamkit_batch(cached)(event)
        counts["streamkit"]["redelivered, warm LocalCache"] = ours_requests.take()
        per_record = idempotent(store, namespace="bench-per-record")(noop)
        process_batch(fresh_event(seed=20_000), per_record)
        counts["streamkit"]["per-record mode, clean batch"] = ours_requests.take()

        # Latency: clean batches, the four variants interleaved, order rotating.
        times: dict[tuple[str, bool], list[float]] = {}
        for repeat in range(REPEATS):
            event = fresh_event(seed=repeat)
            variants = [(side, on) for side in sides for on in (True, False)]
            shift = repeat % len(variants)
            for side, on in variants[shift:] + variants[:shift]:
                run = sides[side][0 if on else 1]
                times.setdefault((side, on), []).append(timed(run, event))
            ours_requests.take()
            theirs_requests.take()

    added = {
        side: (statistics.median(times[side, True]) - statistics.median(times[side, False]))
        / BATCH
        * 1e3
        for side in sides
    }
    ok = counts["streamkit"]["clean batch"] <= REQUEST_TARGET
    print_report(counts, added, times, ok)
    return ok


def print_report(
    counts: dict[str, dict[str, int]],
    added_ms: dict[str, float],
    times: dict[tuple[str, bool], list[float]],
    ok: bool,
) -> None:
    print("\nidempotency: DynamoDB requests per 100-record batch (counted at HTTP, before-send)")
    header = f"{'scenario':<34} {'streamkit':>10} {'Powertools':>11} {'Powertools/streamkit':>21}"
    print(header + "\n" + "-" * len(header))
    for scenario, ours in counts["streamkit"].items():
        theirs = counts["powertools"].get(scenario)
        if theirs is None:
            print(f"{scenario:<34} {ours:>10} {'-':>11} {'-':>21}")
        else:
            ratio = f"{theirs / ours:.0f}x" if ours else "inf"
            print(f"{scenario:<34} {ours:>10} {theirs:>11} {ratio:>21}")
    verdict = "PASS" if ok else "FAIL"
    print(f"target: clean batch <= {REQUEST_TARGET} requests -> {verdict}")

    print("\nidempotency: latency added per record (clean 100-record batches, medians)")
    header = f"{'side':<12} {'with':>12} {'without':>12} {'added/record':>14}"
    print(header + "\n" + "-" * len(header))
    for side in ("streamkit", "powertools"):
        with_ms = statistics.median(times[side, True]) * 1e3
        without_ms = statistics.median(times[side, False]) * 1e3
        print(f"{side:<12} {with_ms:>9.1f} ms {without_ms:>9.1f} ms {added_ms[side]:>11.3f} ms")
    if added_ms["streamkit"] > 0:
        print(
            f"Powertools adds {added_ms['powertools'] / added_ms['streamkit']:.1f}x the latency "
            f"per record of streamkit ({REPEATS} interleaved repeats, local emulator)"
        )


if __name__ == "__main__":
    main()
