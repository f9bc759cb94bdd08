"""The ``context`` object a handler receives, shaped like the AWS Lambda Python runtime's.

It mirrors ``awslambdaric.lambda_context.LambdaContext`` (the runtime interface client that AWS's
python3.x runtimes use): the function's identity comes from the reserved environment variables
(so ``memory_limit_in_mb`` is a *string*, e.g. ``"128"``, exactly as in Lambda), the request's
identity from the invoke, and ``get_remaining_time_in_millis()`` from the invoke's deadline.
See https://docs.aws.amazon.com/lambda/latest/dg/python-context.html

This module imports only the standard library and nothing from ``streamkit``: the local worker
loads it by file path, so a copy of streamkit bundled in the function's zip stays the one the
handler imports (as in Lambda, where the runtime's modules are not the function's).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["Client", "ClientContext", "CognitoIdentity", "LambdaContext"]


class CognitoIdentity:
    """``context.identity``: always present; its fields are None unless the invoke carried one."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(
        self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None
    ) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    """``context.client_context.client`` (mobile SDK invokes only)."""

    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, fields: Mapping[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


class ClientContext:
    """``context.client_context``; None for invokes without one (event source mappings)."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, Mapping) else None
        self.custom = fields.get("custom")
        self.env = fields.get("env")


class LambdaContext:
    """What Lambda passes as the handler's second argument.

    ``deadline_epoch_ms`` is the invoke's deadline in epoch milliseconds, as the Runtime API's
    ``Lambda-Runtime-Deadline-Ms`` header carries it.
    """

    def __init__(
        self,
        *,
        aws_request_id: str,
        deadline_epoch_ms: int,
        invoked_function_arn: str,
        client_context: Mapping[str, Any] | None = None,
        cognito_identity: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        # Read from the environment, like awslambdaric: these are str (or None), never int.
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.client_context = ClientContext(client_context) if client_context else None
        identity = cognito_identity or {}
        self.identity = CognitoIdentity(
            identity.get("cognitoIdentityId"), identity.get("cognitoIdentityPoolId")
        )
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invoke times out; 0 once the deadline has passed."""
        remaining = self._deadline_epoch_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, message: str) -> None:
        """Write to the function's log, like ``context.log`` in Lambda (no newline added)."""
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},identity={self.identity}])"
        )
