"""``streamkit tail TABLE_OR_STREAM_ARN``: print a table's stream records as they arrive.

One line per record (``--json``: one JSON object per line) on stdout; notices and errors on
stderr, so stdout can be piped. Item images are printed only with ``--images`` (see
:mod:`streamkit.ops.tail_format`). Stops after ``--max-records`` records, or cleanly (exit 0)
on SIGINT/SIGTERM, or when the stream is disabled and every shard has been read.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from streamkit._aws import error_code
from streamkit.exceptions import StreamNotEnabledError, TableNotFoundError
from streamkit.ops.cli_support import EXIT_OK, EXIT_USAGE, configure_logging, error, run
from streamkit.ops.endpoint import Endpoint
from streamkit.ops.follow import StartFrom, StreamFollower
from streamkit.ops.tail_format import as_json, format_line
from streamkit.records import StreamRecord
from streamkit.streams.envelope import LambdaRecordConverter
from streamkit.streams.throttling import IdleBackoff

__all__ = ["StreamTarget", "TailOptions", "cli_main", "resolve_stream", "tail"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamTarget:
    stream_arn: str
    table_name: str


def _is_stream_arn(text: str) -> bool:
    return text.startswith("arn:") and ":table/" in text and "/stream/" in text


def resolve_stream(dynamodb: Any, table_or_stream_arn: str, *, endpoint: str) -> StreamTarget:
    """The stream to read: the ARN itself, or the table's LatestStreamArn (DescribeTable).

    Raises :class:`TableNotFoundError` for an unknown table and :class:`StreamNotEnabledError`
    when its stream is off. A table whose stream was disabled keeps its LatestStreamArn (the
    old stream stays readable for 24 hours), so StreamSpecification decides, not the ARN.
    """
    if _is_stream_arn(table_or_stream_arn):
        table = table_or_stream_arn.split(":table/", 1)[1].split("/", 1)[0]
        return StreamTarget(table_or_stream_arn, table)
    try:
        table = dynamodb.describe_table(TableName=table_or_stream_arn)["Table"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise TableNotFoundError(table_or_stream_arn, endpoint) from exc
        raise
    name = str(table.get("TableName") or table_or_stream_arn)
    specification = table.get("StreamSpecification") or {}
    arn = table.get("LatestStreamArn")
    if not specification.get("StreamEnabled") or not arn:
        raise StreamNotEnabledError(name)
    return StreamTarget(str(arn), name)


@dataclass(frozen=True)
class TailOptions:
    start: StartFrom = "latest"
    images: bool = False
    json: bool = False
    max_records: int | None = None


def tail(
    streams_client: Any,
    stream_arn: str,
    options: TailOptions,
    *,
    out: TextIO,
    stop: threading.Event | None = None,
    backoff: IdleBackoff | None = None,
) -> int:
    """Print records of ``stream_arn`` to ``out`` until ``stop`` is set, ``max_records`` were
    printed, or the stream ends; returns how many were printed."""
    stop = stop or threading.Event()
    convert = LambdaRecordConverter(stream_arn)
    follower = StreamFollower(
        streams_client, stream_arn, start=options.start, stop=stop, backoff=backoff
    )
    printed = 0
    if options.max_records is not None and options.max_records <= 0:
        return 0
    for followed in follower:
        # The Lambda shape (epoch seconds, base64 binary, eventSourceARN) is what StreamRecord
        # parses; the runner hands functions exactly this.
        record = StreamRecord(convert(followed.raw))
        if options.json:
            line = as_json(record, shard_id=followed.shard_id, images=options.images)
        else:
            line = format_line(record, images=options.images)
        out.write(line + "\n")
        out.flush()
        printed += 1
        if options.max_records is not None and printed >= options.max_records:
            break
    if follower.ended:
        LOG.warning("stream %s is disabled and every shard has been read", stream_arn)
    return printed


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the loop then ends and the command exits 0). Signal
    handlers can only be installed from the main thread; elsewhere (tests) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    previous: dict[int, Callable[..., Any] | int | None] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, request_stop)
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler if handler is not None else signal.SIG_DFL)


def cli_main(args: argparse.Namespace) -> int:
    """``streamkit tail``: 0 when stopped (signal, --max-records, stream ended), 1 on errors,
    2 on a bad argument."""
    if args.max_records is not None and args.max_records < 1:
        error("tail", "--max-records must be at least 1")
        return EXIT_USAGE
    configure_logging()
    endpoint = Endpoint.from_options(args.endpoint_url, args.region)
    options = TailOptions(
        start=args.start,
        images=args.images,
        json=getattr(args, "json", False),
        max_records=args.max_records,
    )

    def body() -> int:
        target = resolve_stream(
            endpoint.client("dynamodb"), args.table, endpoint=endpoint.describe()
        )
        print(
            f"tailing {target.stream_arn} (table {target.table_name}) from {options.start} "
            f"on {endpoint.describe()}; images {'shown' if options.images else 'hidden'}; "
            "Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        stop = threading.Event()
        with _stop_on_signals(stop):
            streams = endpoint.client("dynamodbstreams")
            tail(streams, target.stream_arn, options, out=sys.stdout, stop=stop)
        return EXIT_OK

    return run("tail", body)
