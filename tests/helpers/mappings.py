"""Waiting for an event source mapping to settle, as Terraform's AWS provider does."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

__all__ = ["TRANSITIONAL_STATES", "wait_for_mapping_gone", "wait_for_mapping_settled"]

TRANSITIONAL_STATES = frozenset({"Creating", "Enabling", "Disabling", "Updating", "Deleting"})


def wait_for_mapping_settled(lambda_client: Any, uuid: str, timeout: float = 60) -> dict[str, Any]:
    """GetEventSourceMapping until the state is Enabled or Disabled; returns that answer."""
    deadline = time.monotonic() + timeout
    while True:
        mapping: dict[str, Any] = lambda_client.get_event_source_mapping(UUID=uuid)
        if mapping["State"] not in TRANSITIONAL_STATES or time.monotonic() > deadline:
            return mapping
        time.sleep(0.05)


def wait_for_mapping_gone(lambda_client: Any, uuid: str, timeout: float = 60) -> bool:
    """True once GetEventSourceMapping answers ResourceNotFoundException."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            lambda_client.get_event_source_mapping(UUID=uuid)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return True
            raise
        time.sleep(0.05)
    return False
