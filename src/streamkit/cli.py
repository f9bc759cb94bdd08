"""The ``streamkit`` command.

Each subcommand lives in its own module and is imported only when used, so
``streamkit --help`` stays fast and the library never imports moto or boto3 at load.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# subcommand -> "module:function"; the function takes the parsed Namespace and returns an exit code.
_COMMANDS: dict[str, str] = {
    "emulator": "streamkit.local.emulator:cli_main",
    "run": "streamkit.local.esm.runner:cli_main",
    "tail": "streamkit.ops.tail:cli_main",
    "dlq": "streamkit.ops.dlq:cli_main",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamkit",
        description="DynamoDB Streams + Lambda toolkit: local emulator, ESM runner, operations tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    emu = sub.add_parser("emulator", help="run the embedded AWS emulator in the foreground")
    emu.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=4566, help="port to bind; 0 picks a free one")

    run = sub.add_parser("run", help="run every enabled event source mapping on an endpoint")
    run.add_argument(
        "--endpoint-url", required=True, help="AWS endpoint, e.g. http://127.0.0.1:4566"
    )
    run.add_argument(
        "--state-dir",
        default=".streamkit",
        help="where checkpoints and unpacked function code live (default ./.streamkit)",
    )
    run.add_argument("--region", default=None, help="AWS region (default: AWS_REGION or us-east-1)")
    run.add_argument(
        "--reconcile-interval",
        type=float,
        default=2.0,
        help="seconds between ListEventSourceMappings reconciliations (default 2)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    tail = sub.add_parser(
        "tail",
        help="follow a table's stream and print records",
        description="Print a DynamoDB stream's records as they arrive: time, event, sequence "
        "number, table, keys and changed attribute names. Item images are never printed "
        "unless --images is given. Stops on Ctrl-C (exit 0) or after --max-records.",
    )
    tail.add_argument("table", metavar="TABLE_OR_STREAM_ARN", help="table name or stream ARN")
    _add_endpoint_options(tail)
    tail.add_argument(
        "--from",
        dest="start",
        choices=["latest", "trim-horizon"],
        default="latest",
        help="start at new records (latest, default) or the oldest kept (trim-horizon)",
    )
    tail.add_argument(
        "--images", action="store_true", help="print full item images (off by default)"
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per record")
    tail.add_argument("--max-records", type=int, default=None, help="stop after N records")

    dlq = sub.add_parser(
        "dlq",
        help="inspect and replay on-failure destinations",
        description="Inspect SQS on-failure destinations of event source mappings and replay "
        "the batches they describe. Messages are never deleted except by a successful replay.",
    )
    actions = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    dlq_list = actions.add_parser(
        "list",
        help="mappings' destinations and queues; with QUEUE, one line per failure record",
    )
    dlq_list.add_argument("queue", nargs="?", help="queue URL, ARN or name (optional)")
    dlq_show = actions.add_parser("show", help="print a queue's failure records as JSON")
    dlq_show.add_argument("queue", help="queue URL, ARN or name")
    dlq_replay = actions.add_parser(
        "replay",
        help="re-read each failed batch from the stream and invoke the function again",
        description="For each failure record: read the records it describes from the stream, "
        "build the event the runner builds, invoke the function, and delete the message only "
        "if the invoke succeeded (no function error, no batchItemFailures).",
    )
    dlq_replay.add_argument("queue", help="queue URL, ARN or name")
    dlq_replay.add_argument(
        "--function", default=None, help="function to invoke (default: the record's functionArn)"
    )
    dlq_replay.add_argument(
        "--dry-run", action="store_true", help="print what would be replayed; change nothing"
    )
    dlq_replay.add_argument(
        "--invoke",
        choices=["auto", "local", "lambda"],
        default="auto",
        help="local: run the deployed code with streamkit's local runtime; lambda: the Invoke "
        "API; auto (default): local when an endpoint URL is set, else lambda",
    )
    dlq_replay.add_argument(
        "--state-dir",
        default=".streamkit",
        help="--invoke local: where function code is unpacked (default ./.streamkit)",
    )
    for action_parser in (dlq_list, dlq_show, dlq_replay):
        _add_endpoint_options(action_parser)
        action_parser.add_argument(
            "--max", type=int, default=10, help="messages to read (default 10)"
        )
    return parser


def _add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="AWS endpoint (default: AWS_ENDPOINT_URL, else AWS itself)",
    )
    parser.add_argument("--region", default=None, help="AWS region (default: AWS_REGION)")


def _resolve(spec: str) -> Callable[[argparse.Namespace], int]:
    module_name, func_name = spec.split(":")
    module = importlib.import_module(module_name)
    func: Callable[[argparse.Namespace], int] = getattr(module, func_name)
    return func


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _resolve(_COMMANDS[args.command])(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
