"""boto3 clients bound to one endpoint, created on first use and then reused."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["AwsClients"]

# Few, quick retries: against a local endpoint a failure is a bug to see, not a blip to ride out.
_CLIENT_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
)


class AwsClients:
    """``aws.dynamodb``, ``aws.dynamodbstreams``, ``aws.lambda_``, ``aws.sqs``, ``aws.sns``,
    ``aws.s3``, ``aws.iam``, or ``aws.client("kms")`` for any other service.

    Clients are cached: boto3 clients are thread-safe and take ~50 ms each to build.
    """

    def __init__(self, endpoint_url: str, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=_CLIENT_CONFIG,
                )
            return self._clients[service]

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def dynamodbstreams(self) -> Any:
        return self.client("dynamodbstreams")

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def sns(self) -> Any:
        return self.client("sns")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    def __repr__(self) -> str:
        return f"AwsClients({self.endpoint_url}, {self.region})"
