"""Helpers shared by the test suites (import as ``tests.helpers``)."""

from __future__ import annotations

from tests.helpers.aws_clients import AwsClients
from tests.helpers.lambda_zip import LAMBDA_ROLE_NAME, create_function, ensure_lambda_role, make_zip
from tests.helpers.mappings import wait_for_mapping_gone, wait_for_mapping_settled
from tests.helpers.queues import create_queue
from tests.helpers.streams import (
    create_plain_table,
    create_stream_table,
    lambda_records,
    read_stream,
)

__all__ = [
    "LAMBDA_ROLE_NAME",
    "AwsClients",
    "create_function",
    "create_plain_table",
    "create_queue",
    "create_stream_table",
    "ensure_lambda_role",
    "lambda_records",
    "make_zip",
    "read_stream",
    "wait_for_mapping_gone",
    "wait_for_mapping_settled",
]
