"""``streamkit faults add|list|clear``: manage the emulator's fault-injection rules."""

from __future__ import annotations

import argparse
import json
import os
import sys

from streamkit.exceptions import FaultAdminError, InvalidFaultRuleError
from streamkit.local.faults import FaultsClient

__all__ = ["add_faults_parser", "cli_main"]


def add_faults_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    faults = sub.add_parser(
        "faults",
        help="inject AWS errors and latency into the embedded emulator",
        description="Add, list and clear fault-injection rules on a running streamkit emulator "
        "(its /_streamkit/faults endpoint). Matching requests get the AWS error in the "
        "service's own wire format, so clients see it as a real AWS error.",
    )
    actions = faults.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a rule; prints it as JSON (with its id)")
    add.add_argument("service", help="dynamodb, dynamodbstreams, lambda, sqs, sns, s3, ses, ...")
    add.add_argument("operation", nargs="?", default="*", help="e.g. PutItem (default: any)")
    add.add_argument("--resource", default=None, help="table, queue, topic, bucket, function...")
    add.add_argument(
        "--error",
        default=None,
        help="AWS error code, e.g. ProvisionedThroughputExceededException, ThrottlingException, "
        "InternalServerError, ServiceUnavailable, RequestLimitExceeded",
    )
    add.add_argument("--status", type=int, default=None, help="HTTP status (default: AWS's)")
    add.add_argument("--message", default=None, help="error message")
    add.add_argument("--probability", type=float, default=1.0, help="0..1 (default 1)")
    add.add_argument("--latency-ms", type=int, default=0, help="added latency (default 0)")
    add.add_argument("--count", type=int, default=None, help="fire at most N times")
    add.add_argument("--duration", type=float, default=None, help="expire after S seconds")
    actions.add_parser("list", help="print the rules in force as JSON")
    clear = actions.add_parser("clear", help="remove one rule (by id) or all")
    clear.add_argument("rule_id", nargs="?", default=None)
    for parser in (faults, *actions.choices.values()):
        parser.add_argument(
            "--endpoint-url",
            default=argparse.SUPPRESS if parser is not faults else None,
            help="emulator URL (default: AWS_ENDPOINT_URL)",
        )


def cli_main(args: argparse.Namespace) -> int:
    """Exit codes: 0 done, 1 the emulator refused or did not answer, 2 bad rule or no endpoint."""
    endpoint = getattr(args, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("streamkit faults: --endpoint-url (or AWS_ENDPOINT_URL) is required", file=sys.stderr)
        return 2
    client = FaultsClient(endpoint)
    try:
        if args.action == "add":
            rule = client.add(
                args.service,
                args.operation,
                resource=args.resource,
                error=args.error,
                status=args.status,
                message=args.message,
                probability=args.probability,
                latency_ms=args.latency_ms,
                count=args.count,
                duration_seconds=args.duration,
            )
            print(json.dumps(rule))
        elif args.action == "list":
            print(json.dumps(client.list(), indent=2))
        else:
            print(json.dumps({"removed": client.clear(args.rule_id)}))
    except InvalidFaultRuleError as exc:
        print(f"streamkit faults: {exc}", file=sys.stderr)
        return 2
    except FaultAdminError as exc:
        print(f"streamkit faults: {exc}", file=sys.stderr)
        return 1
    return 0
