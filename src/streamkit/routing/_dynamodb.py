"""DynamoDB plumbing shared by the workflow and the aggregators (boto3 is imported lazily:
the Lambda runtime provides it, and streamkit does not depend on it)."""

from __future__ import annotations

import random
import time
from typing import Any, Final

_BACKOFF_BASE_S: Final = 0.05
_BACKOFF_CAP_S: Final = 1.0


def default_client() -> Any:
    """A DynamoDB client with short timeouts: a stuck call should fail the record in seconds,
    not hold the shard for the function's whole timeout."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )
    return boto3.client("dynamodb", config=config)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def is_conditional_check_failed(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def backoff(attempt: int) -> None:
    """Sleep with capped exponential backoff and full jitter (AWS's recommendation for
    throttling and transaction conflicts)."""
    time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))
