"""Where the operations commands send their requests, and the boto3 clients for it.

The endpoint is ``--endpoint-url``, else the ``AWS_ENDPOINT_URL`` environment variable (which
boto3 also honours), else AWS itself through boto3's default chain. A custom endpoint (the
embedded emulator, LocalStack) gets a default region (us-east-1) and dummy credentials when
none are configured, as ``streamkit run`` does: emulators accept any.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Endpoint"]

_LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
_DEFAULT_LOCAL_REGION = "us-east-1"


@dataclass
class Endpoint:
    """An AWS endpoint (``url`` None: AWS itself) and cached boto3 clients for it."""

    url: str | None
    region: str | None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_options(cls, endpoint_url: str | None, region: str | None) -> Endpoint:
        url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if url is not None and region is None:
            region = _DEFAULT_LOCAL_REGION
        return cls(url=url.rstrip("/") if url else None, region=region)

    @property
    def is_custom(self) -> bool:
        """True for an emulator or any endpoint other than AWS's own."""
        return self.url is not None

    def describe(self) -> str:
        if self.url is not None:
            return self.url
        return f"AWS ({self.region or 'default region'})"

    def client(self, service: str, *, read_timeout: float = 60.0, max_attempts: int = 3) -> Any:
        """A boto3 client for ``service`` (cached; boto3 clients are thread-safe).

        ``read_timeout`` must outlast the slowest call (a synchronous Invoke waits for the
        function, up to its 15-minute timeout); ``max_attempts=1`` turns botocore's retries
        off, for calls that must not be repeated behind the caller's back (Invoke)."""
        key = f"{service}/{read_timeout}/{max_attempts}"
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make_client(service, read_timeout, max_attempts)
            return self._clients[key]

    def _make_client(self, service: str, read_timeout: float, max_attempts: int) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=self.region)
        credentials: dict[str, str] = {}
        if self.is_custom and session.get_credentials() is None:
            credentials = _LOCAL_CREDENTIALS
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=read_timeout,
        )
        return session.client(service, endpoint_url=self.url, config=config, **credentials)
