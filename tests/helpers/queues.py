"""SQS queues for tests: most need a queue's URL (to read it) and its ARN (to name it as a
destination or subscription)."""

from __future__ import annotations

from typing import Any

__all__ = ["create_queue"]


def create_queue(sqs_client: Any, name: str) -> tuple[str, str]:
    """Create the queue ``name``; returns its URL and ARN."""
    url: str = sqs_client.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = attributes["Attributes"]["QueueArn"]
    return url, arn
