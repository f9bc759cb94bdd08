"""``streamkit dlq list|show|replay``: inspect and replay on-failure destinations.

- ``list``: every event source mapping with an OnFailure destination (mapping UUID, function,
  table -> destination, message count), then every SQS queue with its counts. With QUEUE: one
  line per failure record in it, read without consuming (see :mod:`streamkit.ops.queues`).
- ``show QUEUE``: the failure records, whole, as indented JSON. They hold only metadata
  (``DDBStreamBatchInfo``), never item images; messages that are not failure records are
  named but not printed (a queue may be shared, and their bodies may hold anything).
- ``replay QUEUE``: for each failure record, read its records back from the stream, invoke the
  function with the runner's event (:mod:`streamkit.ops.replay`), and delete the message only
  when the invoke succeeded. Messages whose replay failed, whose records have left the stream,
  or that are not failure records stay in the queue, visible again when the command ends.

Exit codes: 0 ok; 1 an error, or (replay) at least one failure record was not replayed; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from streamkit.ops import queues
from streamkit.ops.cli_support import EXIT_ERROR, EXIT_OK, EXIT_USAGE, configure_logging, error, run
from streamkit.ops.endpoint import Endpoint
from streamkit.ops.failure_records import FailureRecord, parse_failure_record
from streamkit.ops.invokers import LambdaApiInvoker, LocalInvoker, ReplayInvoker
from streamkit.ops.replay import Replayer, ReplayOutcome, ReplayStatus

__all__ = ["REPLAY_HOLD_S", "cli_main", "dlq_list", "dlq_replay", "dlq_show", "make_invoker"]

REPLAY_HOLD_S = 960
"""Seconds a message is hidden while its batch is replayed: Lambda's longest timeout (900 s)
plus a minute. If replay dies mid-way, the message reappears after this."""

# A synchronous Invoke can take as long as the function's timeout (at most 15 minutes).
_INVOKE_READ_TIMEOUT_S = 905.0


def _function_name(arn: str) -> str:
    """``arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`` -> name[:qualifier]."""
    _, sep, rest = arn.partition(":function:")
    return rest if sep else arn


def _table_of(event_source_arn: str) -> str:
    _, sep, rest = event_source_arn.partition(":table/")
    return f"table {rest.split('/', 1)[0]}" if sep else event_source_arn


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


# -- list -----------------------------------------------------------------------------------


def dlq_list(endpoint: Endpoint, queue: str | None, max_messages: int, out: TextIO) -> int:
    if queue is not None:
        return _list_queue(endpoint, queue, max_messages, out)
    sqs = endpoint.client("sqs")
    destinations = queues.failure_destinations(endpoint.client("lambda"))
    destination_of: dict[str, list[str]] = {}
    out.write("On-failure destinations of event source mappings:\n")
    if not destinations:
        out.write("  (none)\n")
    for found in destinations:
        count = "(not a queue)"
        if found.kind == "sqs":
            url = queues.queue_url_for_arn(sqs, found.destination_arn)
            if url is None:
                count = "(queue does not exist)"
            else:
                visible, in_flight = queues.queue_counts(sqs, url)
                count = f"{_plural(visible, 'message')} ({in_flight} in flight)"
                destination_of.setdefault(url, []).append(found.mapping_uuid)
        state = f"  [{found.state}]" if found.state and found.state != "Enabled" else ""
        out.write(
            f"  {found.mapping_uuid}  {_function_name(found.function_arn)}  "
            f"{_table_of(found.event_source_arn)}  -> {found.destination_arn}  {count}{state}\n"
        )
    out.write("Queues:\n")
    urls = queues.list_queue_urls(sqs)
    if not urls:
        out.write("  (none)\n")
    for url in urls:
        visible, in_flight = queues.queue_counts(sqs, url)
        line = f"  {queues.queue_name(url)}  {_plural(visible, 'message')} ({in_flight} in flight)"
        if url in destination_of:
            line += "  <- on failure of mapping " + ", ".join(destination_of[url])
        out.write(line + "\n")
    return EXIT_OK


def _list_queue(endpoint: Endpoint, queue: str, max_messages: int, out: TextIO) -> int:
    sqs = endpoint.client("sqs")
    url = queues.resolve_queue_url(sqs, queue, endpoint=endpoint.describe())
    visible, in_flight = queues.queue_counts(sqs, url)
    out.write(f"{url}: {_plural(visible, 'message')} visible, {in_flight} in flight\n")
    messages = queues.peek(sqs, url, max_messages)
    for message in messages:
        failure = parse_failure_record(message.body)
        if failure is None:
            out.write(
                f"  message {message.message_id}: not a DynamoDB stream on-failure record "
                f"({len(message.body)} bytes)\n"
            )
        else:
            out.write(f"  {failure.summary()}  message {message.message_id}\n")
    if visible > len(messages):
        out.write(f"  (showing {len(messages)} of about {visible}; use --max for more)\n")
    return EXIT_OK


# -- show -----------------------------------------------------------------------------------


def dlq_show(endpoint: Endpoint, queue: str, max_messages: int, out: TextIO) -> int:
    sqs = endpoint.client("sqs")
    url = queues.resolve_queue_url(sqs, queue, endpoint=endpoint.describe())
    messages = queues.peek(sqs, url, max_messages)
    if not messages:
        out.write(f"# {url}: no messages\n")
    for message in messages:
        header = f"# message {message.message_id}"
        if message.sent_at:
            header += f", sent {message.sent_at}"
        if message.receive_count is not None:
            header += f", received {_plural(message.receive_count, 'time')}"
        failure = parse_failure_record(message.body)
        if failure is None:
            out.write(
                f"{header}: not a DynamoDB stream on-failure record "
                f"({len(message.body)} bytes, not shown)\n"
            )
            continue
        out.write(header + "\n")
        out.write(json.dumps(failure.raw, indent=2) + "\n")
    return EXIT_OK


# -- replay ---------------------------------------------------------------------------------


def make_invoker(endpoint: Endpoint, choice: str, state_dir: str) -> ReplayInvoker:
    """``local`` / ``lambda`` as asked; ``auto``: local when an endpoint URL is set (an emulator
    cannot run Invoke, and ``streamkit run`` is what runs functions there), else Lambda."""
    if choice == "auto":
        choice = "local" if endpoint.is_custom else "lambda"
    if choice == "local":
        return LocalInvoker(
            endpoint.client("lambda"),
            endpoint_url=endpoint.url,
            region=endpoint.region or "us-east-1",
            state_dir=state_dir,
        )
    client = endpoint.client("lambda", read_timeout=_INVOKE_READ_TIMEOUT_S, max_attempts=1)
    return LambdaApiInvoker(client)


def _describe(outcome: ReplayOutcome, failure: FailureRecord) -> str:
    where = (
        f"shard {failure.shard_id} seq "
        f"{failure.start_sequence_number}..{failure.end_sequence_number}"
    )
    function = _function_name(outcome.function)
    count = _plural(len(outcome.plan.records), "record") if outcome.plan else "records"
    status = outcome.status
    if status is ReplayStatus.DRY_RUN:
        text = f"would replay {count} ({where}) to {function}"
        if outcome.detail:
            text += f" ({outcome.detail})"
        text += " (dry run: nothing changed)"
    elif status is ReplayStatus.REPLAYED:
        text = f"replayed {count} ({where}) to {function}"
        if outcome.detail:
            text += f" ({outcome.detail})"
        text += "; message deleted"
    elif status is ReplayStatus.GONE:
        text = f"cannot replay ({where}): records left the stream: {outcome.detail}; message kept"
    elif status is ReplayStatus.SKIPPED:
        text = f"not replayed ({where}): {outcome.detail}; message kept"
    else:
        text = f"replay of {count} ({where}) to {function} failed: {outcome.detail}; message kept"
    if outcome.request_id:
        text += f" [request {outcome.request_id}]"
    for note in outcome.notes:
        text += f" (note: {note})"
    return text


def dlq_replay(
    endpoint: Endpoint,
    queue: str,
    max_messages: int,
    out: TextIO,
    *,
    function: str | None = None,
    dry_run: bool = False,
    invoker_factory: Callable[[], ReplayInvoker] | None = None,
) -> int:
    sqs = endpoint.client("sqs")
    url = queues.resolve_queue_url(sqs, queue, endpoint=endpoint.describe())
    if dry_run:
        messages = queues.peek(sqs, url, max_messages)
    else:
        messages = queues.receive(sqs, url, max_messages, hold_s=REPLAY_HOLD_S)
    pending = {m.message_id: m for m in messages}
    parsed = [(m, parse_failure_record(m.body)) for m in messages]
    # Oldest first within a shard, as the mapping would have processed them.
    parsed.sort(
        key=lambda pair: (
            (0, pair[1].stream_arn, pair[1].shard_id, int(pair[1].start_sequence_number))
            if pair[1] is not None
            else (1, "", "", 0)
        )
    )
    invoker = None
    if not dry_run:
        invoker = (invoker_factory or (lambda: make_invoker(endpoint, "auto", ".streamkit")))()
    replayer = Replayer(
        endpoint.client("dynamodbstreams"),
        endpoint.client("lambda"),
        invoker,
        function_override=function,
    )
    replayed = not_replayed = 0
    try:
        for message, failure in parsed:
            label = f"message {message.message_id}"
            if failure is None:
                out.write(f"{label}: not a DynamoDB stream on-failure record; left as it is\n")
                continue
            if not dry_run:
                queues.hold(sqs, url, message, REPLAY_HOLD_S)  # a fresh hold for this invoke
            outcome = replayer.replay(failure, dry_run=dry_run)
            out.write(f"{label}: {_describe(outcome, failure)}\n")
            out.flush()
            if dry_run:
                not_replayed += outcome.status is not ReplayStatus.DRY_RUN
            elif outcome.succeeded:
                queues.delete(sqs, url, message)
                del pending[message.message_id]
                replayed += 1
            else:
                not_replayed += 1
    finally:
        if invoker is not None:
            invoker.close()
        if not dry_run:
            queues.release(sqs, url, pending.values())
    if not dry_run:
        out.write(
            f"{_plural(replayed, 'batch', 'batches')} replayed, {not_replayed} kept "
            f"(of {_plural(len(messages), 'message')} read from {queues.queue_name(url)})\n"
        )
    if not_replayed:
        error("dlq replay", f"{_plural(not_replayed, 'failure record')} not replayed (kept)")
        return EXIT_ERROR
    return EXIT_OK


def cli_main(args: argparse.Namespace) -> int:
    if args.max < 1:
        error(f"dlq {args.action}", "--max must be at least 1")
        return EXIT_USAGE
    configure_logging()
    endpoint = Endpoint.from_options(args.endpoint_url, args.region)
    out = sys.stdout

    def body() -> int:
        if args.action == "list":
            return dlq_list(endpoint, args.queue, args.max, out)
        if args.action == "show":
            return dlq_show(endpoint, args.queue, args.max, out)
        return dlq_replay(
            endpoint,
            args.queue,
            args.max,
            out,
            function=args.function,
            dry_run=args.dry_run,
            invoker_factory=lambda: make_invoker(endpoint, args.invoke, args.state_dir),
        )

    return run(f"dlq {args.action}", body)
