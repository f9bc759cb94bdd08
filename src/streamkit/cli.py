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
    "run": "streamkit.local.runner:cli_main",
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

    tail = sub.add_parser("tail", help="follow a table's stream and print records")
    tail.add_argument("table", help="table name or stream ARN")
    tail.add_argument("--endpoint-url", default=None)
    tail.add_argument("--region", default=None)
    tail.add_argument("--from", dest="start", choices=["latest", "trim-horizon"], default="latest")
    tail.add_argument(
        "--images", action="store_true", help="print full item images (off by default)"
    )
    tail.add_argument("--max-records", type=int, default=None, help="stop after N records")

    dlq = sub.add_parser("dlq", help="inspect and replay on-failure destinations")
    dlq.add_argument("action", choices=["list", "show", "replay"])
    dlq.add_argument("queue", nargs="?", help="queue URL or name (list: optional)")
    dlq.add_argument("--endpoint-url", default=None)
    dlq.add_argument("--region", default=None)
    dlq.add_argument("--max", type=int, default=10, help="messages to show/replay")
    dlq.add_argument(
        "--function", default=None, help="replay: function to invoke (default: from record)"
    )
    return parser


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
