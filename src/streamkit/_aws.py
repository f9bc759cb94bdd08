"""AWS plumbing shared by the library's DynamoDB users (``routing/``, ``idempotency/``) and the
runtime: error codes, default clients, jittered backoff.

boto3 is imported lazily: the Lambda runtime provides it, and the library does not depend on
it. Nothing here imports the rest of streamkit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "DefaultClient",
    "default_client",
    "error_code",
    "full_jitter_backoff",
    "is_conditional_check_failed",
]

_BACKOFF_BASE_S: Final = 0.05
_BACKOFF_CAP_S: Final = 1.0


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (or a double's look-alike); None for
    anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, Mapping) else None
    return str(code) if code else None


def is_conditional_check_failed(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def default_client(service: str = "dynamodb") -> Any:
    """A client with short timeouts: a stuck call should fail the record in seconds, not hold
    the shard for the function's whole timeout."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )
    return boto3.client(service, config=config)


class DefaultClient:
    """A ``client`` attribute: the client given at construction (stored as ``_client``), or a
    :func:`default_client` made on first use and kept (so it lives across invocations)."""

    def __init__(self, service: str = "dynamodb") -> None:
        self.service = service

    def __get__(self, owner: Any, owner_type: type | None = None) -> Any:
        if owner is None:
            return self
        if owner._client is None:
            owner._client = default_client(self.service)
        return owner._client


def full_jitter_backoff(
    attempt: int, *, base: float = _BACKOFF_BASE_S, cap: float = _BACKOFF_CAP_S
) -> None:
    """Sleep before retry ``attempt + 1``: uniform in [0, min(cap, base * 2**attempt)] seconds,
    AWS's "full jitter" for throttling and transaction conflicts.
    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/"""
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))
